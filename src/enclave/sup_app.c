/* The parent's end of init's report of how the app ended (nectl/app_report.h):
 * the supervisor stands between the enclave's parent-side vsock (s->pv: the
 * emulated device or AF_VSOCK) and the port forwarder, takes the first
 * connection to APP_REPORT_PORT for itself and hands every other event to
 * the forwarder. Runs inside the transport's callbacks (under its lock, on
 * vCPU or I/O threads): it stores the result with atomics for the
 * supervisor's thread and never blocks. */
#include <string.h>

#include "enclave/forward.h"
#include "enclave/sup.h"
#include "nectl/app_report.h"
#include "nectl/pvsock.h"

/* Strict: "exit N\n" with N in 0..255 or "signal N\n" with N in 1..64, no
 * sign, no leading zeros, nothing else. */
int sup_app_parse(const char *line, size_t len, enum sup_app_end *end, int *value)
{
	const char *p;
	size_t digits;
	int v = 0, max;

	if (len >= 5 && memcmp(line, "exit ", 5) == 0)
		*end = SUP_APP_EXITED, p = line + 5, max = 255;
	else if (len >= 7 && memcmp(line, "signal ", 7) == 0)
		*end = SUP_APP_KILLED, p = line + 7, max = 64;
	else
		return -1;
	digits = (size_t)(line + len - p) - 1;
	if (digits < 1 || digits > 3 || p[digits] != '\n' || (p[0] == '0' && digits > 1))
		return -1;
	for (size_t i = 0; i < digits; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	if (v > max || (*end == SUP_APP_KILLED && v == 0))
		return -1;
	*value = v;
	return 0;
}

static bool sup_app_is(const struct sup *s, uint64_t conn_id)
{
	return s->app.open && s->app.conn == conn_id;
}

static void sup_app_close(struct sup *s)
{
	s->app.open = false;
	pvsock_close(&s->pv, s->app.conn);
}

static int sup_vs_connect(void *ctx, uint32_t port, uint64_t conn_id)
{
	struct sup *s = ctx;

	if (port != APP_REPORT_PORT)
		return fwd_ops()->connect(s->fwd, port, conn_id);
	/* First come: init connects before it starts the app. */
	if (s->app.taken)
		return -1;
	s->app.taken = s->app.open = true;
	s->app.conn = conn_id;
	return pvsock_connected(&s->pv, conn_id) == 0 ? 0 : -1;
}

static void sup_vs_connected(void *ctx, uint64_t conn_id)
{
	struct sup *s = ctx;

	fwd_ops()->connected(s->fwd, conn_id);
}

static void sup_app_data(struct sup *s, const uint8_t *buf, size_t len)
{
	enum sup_app_end end;
	int value;

	pvsock_credit(&s->pv, s->app.conn, (uint32_t)len);
	for (size_t i = 0; i < len && s->app.open; i++) {
		if (s->app.len == sizeof(s->app.line)) {
			sup_app_close(s); /* no line this long is a report */
			return;
		}
		s->app.line[s->app.len++] = (char)buf[i];
		if (buf[i] != '\n')
			continue;
		if (sup_app_parse(s->app.line, s->app.len, &end, &value) == 0) {
			atomic_store(&s->app.value, value);
			atomic_store(&s->app.end, end);
			sup_wake(s);
		}
		/* One line, right or wrong: closing is init's acknowledgement. */
		sup_app_close(s);
	}
}

static void sup_vs_data(void *ctx, uint64_t conn_id, const void *buf, size_t len)
{
	struct sup *s = ctx;

	if (sup_app_is(s, conn_id))
		sup_app_data(s, buf, len);
	else if (s->app.taken && s->app.conn == conn_id)
		pvsock_credit(&s->pv, conn_id, (uint32_t)len);
	else
		fwd_ops()->data(s->fwd, conn_id, buf, len);
}

static void sup_vs_writable(void *ctx, uint64_t conn_id)
{
	struct sup *s = ctx;

	if (!(s->app.taken && s->app.conn == conn_id))
		fwd_ops()->writable(s->fwd, conn_id);
}

static void sup_vs_shutdown(void *ctx, uint64_t conn_id, uint32_t flags)
{
	struct sup *s = ctx;

	if (sup_app_is(s, conn_id)) {
		if (flags & VSOCK_SHUTDOWN_SEND)
			sup_app_close(s);
	} else if (!(s->app.taken && s->app.conn == conn_id)) {
		fwd_ops()->shutdown(s->fwd, conn_id, flags);
	}
}

static void sup_vs_closed(void *ctx, uint64_t conn_id)
{
	struct sup *s = ctx;

	if (s->app.taken && s->app.conn == conn_id) {
		s->app.open = false;
		s->app.conn = UINT64_MAX; /* ids are never reused by then */
	} else {
		fwd_ops()->closed(s->fwd, conn_id);
	}
}

static void sup_vs_heartbeat(void *ctx)
{
	struct sup *s = ctx;

	fwd_ops()->heartbeat(s->fwd);
}

static const struct vsock_host_ops sup_vsock_ops = {
    .connect = sup_vs_connect,
    .connected = sup_vs_connected,
    .data = sup_vs_data,
    .writable = sup_vs_writable,
    .shutdown = sup_vs_shutdown,
    .closed = sup_vs_closed,
    .heartbeat = sup_vs_heartbeat,
};

const struct vsock_host_ops *sup_vsock_ops_get(void)
{
	return &sup_vsock_ops;
}
