/* fuzz_guest_text.c: what the guest writes that the supervisor reads as
 * text: console bytes (kept as a ring, a log and, for people, the first
 * panic-looking line) and init's exit-report line. The input's first byte
 * picks the console chunk size; the bytes are fed to the console in chunks,
 * then every '\n'-terminated piece of them is parsed as a report line.
 *
 * Besides crashes it traps on broken promises: the hint is a bounded string
 * that starts with the panic text or is empty, and a report that parses has
 * a value in its range and is exactly the canonical text for that value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/sup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_console(const uint8_t *data, size_t size)
{
	static struct console c;
	size_t chunk, hint_len;

	if (console_init(&c, false, NULL, NULL, NULL, NULL) < 0)
		abort();
	chunk = size ? (size_t)data[0] % 64 + 1 : 1;
	for (size_t off = 0; off < size; off += chunk)
		console_feed(&c, data + off, size - off < chunk ? size - off : chunk);
	hint_len = strnlen(c.panic_hint, sizeof(c.panic_hint));
	if (hint_len == sizeof(c.panic_hint))
		abort();
	if (hint_len && strncmp(c.panic_hint, "Kernel panic - not syncing",
				hint_len < 26 ? hint_len : 26) != 0)
		abort();
	console_fini(&c);
}

static void check_report(const char *line, size_t len)
{
	enum sup_app_end end;
	int value;
	char canon[32];

	if (sup_app_parse(line, len, &end, &value) < 0)
		return;
	if (end == SUP_APP_EXITED && (value < 0 || value > 255))
		abort();
	if (end == SUP_APP_KILLED && (value < 1 || value > 64))
		abort();
	if (end != SUP_APP_EXITED && end != SUP_APP_KILLED)
		abort();
	snprintf(canon, sizeof(canon), "%s %d\n", end == SUP_APP_EXITED ? "exit" : "signal",
		 value);
	if (strlen(canon) != len || memcmp(canon, line, len) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t start = 0;

	check_console(data, size);
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n') {
			check_report((const char *)data + start, i + 1 - start);
			start = i + 1;
		}
	check_report((const char *)data + start, size - start);
	return 0;
}
