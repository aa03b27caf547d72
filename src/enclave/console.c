/* Console capture: every byte the guest writes to its UART goes to the log
 * file (debug mode) and a ring the supervisor streams to console clients,
 * and the first line that looks like a kernel panic is kept as a hint for
 * people. Nothing here decides how the enclave ended: any process in the
 * enclave can print anything (the machine and init's report over vsock do,
 * see sup_record.c). Fed from vCPU threads: never blocks on
 * anything but a short mutex and a write to a file in the run directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enclave/enclave_int.h"

int console_init(struct console *c, bool keep, const char *log_path, void (*notify)(void *),
		 void *ctx, struct nectl_err *err)
{
	memset(c, 0, sizeof(*c));
	c->log_fd = -1;
	c->notify = notify;
	c->ctx = ctx;
	pthread_mutex_init(&c->mu, NULL);
	if (!keep)
		return 0;
	c->ring = malloc(CONSOLE_RING);
	if (!c->ring)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory for the console ring");
	c->log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
	if (c->log_fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno,
				     "%s: cannot create the console log", log_path);
	return 0;
}

static void console_scan_line(struct console *c, const char *line)
{
	const char *p;

	if (!c->panic_hint[0] && (p = strstr(line, "Kernel panic - not syncing")))
		snprintf(c->panic_hint, sizeof(c->panic_hint), "%s", p);
}

static void console_scan(struct console *c, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char ch = (char)buf[i];

		if (ch == '\n' || ch == '\r') {
			c->line[c->line_len] = 0;
			if (c->line_len) {
				console_scan_line(c, c->line);
				snprintf(c->last_line, sizeof(c->last_line), "%s", c->line);
			}
			c->line_len = 0;
		} else if (c->line_len < sizeof(c->line) - 1) {
			/* NULs would hide the rest of the line from strstr. */
			c->line[c->line_len++] = ch ? ch : ' ';
		}
	}
}

static void console_log(struct console *c, const uint8_t *buf, size_t len)
{
	static const char cut[] = "\n[nectl: console log limit reached; the rest is not logged]\n";

	if (c->log_fd < 0 || c->logged >= CONSOLE_LOG_MAX)
		return;
	if (c->logged + len > CONSOLE_LOG_MAX)
		len = CONSOLE_LOG_MAX - c->logged;
	if (write(c->log_fd, buf, len) != (ssize_t)len) {
		/* A full run directory stops the log, never the guest. */
		close(c->log_fd);
		c->log_fd = -1;
		return;
	}
	c->logged += len;
	if (c->logged == CONSOLE_LOG_MAX && write(c->log_fd, cut, sizeof(cut) - 1) < 0)
		c->logged = CONSOLE_LOG_MAX;
}

void console_feed(struct console *c, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&c->mu);
	console_scan(c, buf, len);
	console_log(c, buf, len);
	if (c->ring)
		for (size_t i = 0; i < len; i++)
			c->ring[(c->total + i) % CONSOLE_RING] = buf[i];
	c->total += len;
	pthread_mutex_unlock(&c->mu);
	if (c->notify)
		c->notify(c->ctx);
}

size_t console_read(struct console *c, uint64_t *pos, void *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&c->mu);
	if (c->ring) {
		if (c->total - *pos > CONSOLE_RING)
			*pos = c->total - CONSOLE_RING;
		while (n < max && *pos < c->total)
			((uint8_t *)out)[n++] = c->ring[(*pos)++ % CONSOLE_RING];
	}
	pthread_mutex_unlock(&c->mu);
	return n;
}

void console_fini(struct console *c)
{
	if (c->log_fd >= 0)
		close(c->log_fd);
	free(c->ring);
	pthread_mutex_destroy(&c->mu);
	c->ring = NULL;
	c->log_fd = -1;
}
