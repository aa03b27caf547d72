/* fuzz_forward_rule.c: the --forward-to-host and --forward-into-enclave rule
 * syntax (src/enclave/forward_rule.c), which comes from the command line and
 * from --config files. The input is split at NUL bytes into up to eight
 * rules; the first byte of each picks its direction (bit 0) and the rest is
 * the rule's text. Every parsed rule then goes through fwd_rules_check.
 *
 * Besides crashes it traps on broken promises: a parsed rule has a vsock
 * port in 1..2^32-1 (never 9000 to the host) and NUL-terminated fields; a
 * Unix rule a non-empty path without NULs, a TCP rule a non-empty host and
 * a decimal port in 1..65535 without leading zeros; a refused rule gets a
 * one-line message that names its option. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/forward_int.h"

#define MAX_RULES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_terminated(const char *field, size_t size)
{
	if (!memchr(field, '\0', size))
		abort();
}

static void check_parsed(const struct fwd_rule *r, enum fwd_dir dir)
{
	unsigned long port;
	char *end;

	check_terminated(r->path, sizeof(r->path));
	check_terminated(r->host, sizeof(r->host));
	check_terminated(r->service, sizeof(r->service));
	check_terminated(r->text, sizeof(r->text));
	if (r->dir != dir || r->port == 0 ||
	    (dir == FWD_TO_HOST && r->port == VSOCK_HEARTBEAT_PORT))
		abort();
	if (r->is_unix) {
		if (!r->path[0])
			abort();
		return;
	}
	port = strtoul(r->service, &end, 10);
	if (!r->host[0] || *end || port < 1 || port > 65535 || r->service[0] == '0')
		abort();
}

static void check_refused(const struct nectl_err *err, enum fwd_dir dir)
{
	if (err->kind != NECTL_ERR_INVALID_ARG || strchr(err->msg, '\n') ||
	    strncmp(err->msg, fwd_rule_option(dir), strlen(fwd_rule_option(dir))) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fwd_rule rules[MAX_RULES];
	size_t n = 0, at = 0;

	while (at < size && n < MAX_RULES) {
		const uint8_t *nul = memchr(data + at, '\0', size - at);
		size_t len = nul ? (size_t)(nul - (data + at)) : size - at;
		enum fwd_dir dir = len && (data[at] & 1) ? FWD_INTO_ENCLAVE : FWD_TO_HOST;
		struct nectl_err err = {0};
		char *spec = malloc(len ? len : 1);

		if (!spec)
			return 0;
		/* The rule's text: what follows the direction byte, NUL-terminated. */
		if (len)
			memcpy(spec, data + at + 1, len - 1);
		spec[len ? len - 1 : 0] = '\0';
		if (fwd_rule_parse(dir, spec, &rules[n], &err) == 0)
			check_parsed(&rules[n++], dir);
		else
			check_refused(&err, dir);
		free(spec);
		at += len + 1;
	}
	if (n) {
		struct nectl_err err = {0};

		if (fwd_rules_check(rules, n, &err) < 0 && err.kind != NECTL_ERR_INVALID_ARG)
			abort();
	}
	return 0;
}
