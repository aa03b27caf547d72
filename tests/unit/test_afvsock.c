/* The AF_VSOCK transport (nectl/afvsock.h) against real vsock sockets over
 * the kernel's loopback (CID 1, vsock_loopback): the test's own threads play
 * the enclave (cfg.enclave_cid = 1) and the console's server, and a fake
 * host records every callback. Tests that need loopback are skipped where
 * it is missing (a connect to CID 1 then never completes); the shell-VM
 * test afvsock-loopback runs them all (tests/shellvm/test_afvsock.sh). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/vm_sockets.h>

#include "nectl/afvsock.h"

#define LOCAL_CID 1 /* VMADDR_CID_LOCAL: the loopback */
#define BIG	  (4u << 20)
#define WAIT_MS	  10000

static bool have_loopback;
static uint32_t port_base; /* this run's ports, away from other runs' */

/* --- the host ------------------------------------------------------------ */

struct host {
	struct afvsock *a;
	struct pvsock pv;
	bool refuse, hold_credit, keep_text;
	unsigned connects, connected, closed, heartbeats, writables;
	uint32_t shut_flags, last_port;
	uint64_t id, connected_id, closed_id;
	uint64_t got, uncredited; /* bytes from the enclave; not credited */
	uint8_t seed;		  /* their pattern, unless keep_text */
	bool bad;		  /* a byte out of pattern */
	char text[256];
	size_t text_len;
	char cons[256];
	size_t cons_len;
};

static uint8_t pattern(uint64_t i, uint8_t seed)
{
	return (uint8_t)(i * 131 + (i >> 13) * 7 + seed);
}

static int h_connect(void *ctx, uint32_t port, uint64_t id)
{
	struct host *h = ctx;

	h->connects++;
	h->last_port = port;
	h->id = id;
	if (h->refuse)
		return -1;
	assert_int_equal(pvsock_connected(&h->pv, id), 0);
	return 0;
}

static void h_connected(void *ctx, uint64_t id)
{
	struct host *h = ctx;

	h->connected++;
	h->connected_id = id;
}

static void h_data(void *ctx, uint64_t id, const void *buf, size_t len)
{
	struct host *h = ctx;
	const uint8_t *p = buf;

	for (size_t i = 0; i < len && !h->keep_text; i++)
		if (p[i] != pattern(h->got + i, h->seed))
			h->bad = true;
	if (h->keep_text && h->text_len + len < sizeof(h->text)) {
		memcpy(h->text + h->text_len, buf, len);
		h->text_len += len;
	}
	h->got += len;
	if (h->hold_credit)
		h->uncredited += len;
	else
		assert_int_equal(pvsock_credit(&h->pv, id, (uint32_t)len), 0);
}

static void h_writable(void *ctx, uint64_t id)
{
	((struct host *)ctx)->writables++;
}

static void h_shutdown(void *ctx, uint64_t id, uint32_t flags)
{
	((struct host *)ctx)->shut_flags |= flags;
}

static void h_closed(void *ctx, uint64_t id)
{
	struct host *h = ctx;

	h->closed++;
	h->closed_id = id;
}

static void h_heartbeat(void *ctx)
{
	((struct host *)ctx)->heartbeats++;
}

static void h_console(void *ctx, const void *buf, size_t len)
{
	struct host *h = ctx;

	if (h->cons_len + len < sizeof(h->cons)) {
		memcpy(h->cons + h->cons_len, buf, len);
		h->cons_len += len;
	}
}

static const struct vsock_host_ops host_ops = {
    .connect = h_connect,
    .connected = h_connected,
    .data = h_data,
    .writable = h_writable,
    .shutdown = h_shutdown,
    .closed = h_closed,
    .heartbeat = h_heartbeat,
};

static void host_start(struct host *h, uint32_t enclave_cid, uint32_t console_port)
{
	struct afvsock_cfg cfg = {.enclave_cid = enclave_cid,
				  .console_cid = LOCAL_CID,
				  .console_port = console_port,
				  .console = h_console,
				  .console_ctx = h};
	struct nectl_err err = {0};

	memset(h, 0, sizeof(*h));
	assert_int_equal(afvsock_new(&h->a, &cfg, &host_ops, h, &err), 0);
	afvsock_pvsock(h->a, &h->pv);
	assert_int_equal(afvsock_start(h->a, &err), 0);
}

static void host_listen(struct host *h, uint32_t port)
{
	struct nectl_err err = {0};

	if (afvsock_listen(h->a, port, &err) < 0)
		fail_msg("listen %u: %s", port, err.msg);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits (the transport's lock taken to look) until `pred` holds. */
static bool host_wait(struct host *h, bool (*pred)(const struct host *))
{
	uint64_t end = now_ms() + WAIT_MS;
	bool ok;

	do {
		pvsock_lock(&h->pv);
		ok = pred(h);
		pvsock_unlock(&h->pv);
		if (!ok)
			usleep(2000);
	} while (!ok && now_ms() < end);
	return ok;
}

/* Forgets what the last connection did (the transport runs on). */
static void host_reset(struct host *h)
{
	pvsock_lock(&h->pv);
	h->closed = h->connected = h->connects = 0;
	h->shut_flags = 0;
	h->text_len = 0;
	pvsock_unlock(&h->pv);
}

static unsigned host_writables(struct host *h)
{
	unsigned w;

	pvsock_lock(&h->pv);
	w = h->writables;
	pvsock_unlock(&h->pv);
	return w;
}

/* --- the enclave ----------------------------------------------------------- */

static void sock_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = WAIT_MS / 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A blocking connection to (CID 1, port), as the enclave to the parent. */
static int enclave_connect(uint32_t port)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = LOCAL_CID, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sock_timeouts(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail_msg("connect to port %u: %s", port, strerror(errno));
	return fd;
}

static int vsock_listener(uint32_t port)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		fail_msg("listen on port %u: %s", port, strerror(errno));
	return fd;
}

static int accept_one(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	assert_true(fd >= 0);
	sock_timeouts(fd);
	return fd;
}

/* What a peer thread sends (n bytes of seed's pattern, then SHUT_WR) or
 * receives (until EOF, checked against seed's pattern). */
struct peer {
	pthread_t th;
	int fd;
	uint64_t n;
	uint8_t seed;
	uint64_t got;
	bool bad, eof;
};

static void *peer_send_main(void *arg)
{
	struct peer *p = arg;
	uint8_t buf[8192];

	while (p->got < p->n) {
		size_t k = p->n - p->got < sizeof(buf) ? p->n - p->got : sizeof(buf);
		ssize_t r;

		for (size_t i = 0; i < k; i++)
			buf[i] = pattern(p->got + i, p->seed);
		r = send(p->fd, buf, k, MSG_NOSIGNAL);
		if (r <= 0) {
			p->bad = true;
			return NULL;
		}
		p->got += (uint64_t)r;
	}
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

static void *peer_recv_main(void *arg)
{
	struct peer *p = arg;
	uint8_t buf[8192];
	ssize_t r;

	while ((r = recv(p->fd, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pattern(p->got + (uint64_t)i, p->seed))
				p->bad = true;
		p->got += (uint64_t)r;
	}
	p->eof = r == 0;
	return NULL;
}

static void peer_start(struct peer *p, void *(*fn)(void *), int fd, uint64_t n, uint8_t seed)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->n = n;
	p->seed = seed;
	assert_int_equal(pthread_create(&p->th, NULL, fn, p), 0);
}

/* The host sends n bytes of seed's pattern on `id`, waiting for `writable`
 * after each short send, then shuts its sending side. */
static void host_send_all(struct host *h, uint64_t id, uint64_t n, uint8_t seed)
{
	static uint8_t buf[65536];
	uint64_t sent = 0, end = now_ms() + WAIT_MS;

	while (sent < n && now_ms() < end) {
		size_t k = n - sent < sizeof(buf) ? n - sent : sizeof(buf), took;
		unsigned w;

		for (size_t i = 0; i < k; i++)
			buf[i] = pattern(sent + i, seed);
		pvsock_lock(&h->pv);
		w = h->writables;
		took = pvsock_send(&h->pv, id, buf, k);
		pvsock_unlock(&h->pv);
		sent += took;
		if (took < k)
			while (now_ms() < end && host_writables(h) == w)
				usleep(500);
	}
	assert_int_equal(sent, n);
	pvsock_lock(&h->pv);
	assert_int_equal(pvsock_shutdown(&h->pv, id, VSOCK_SHUTDOWN_SEND), 0);
	pvsock_unlock(&h->pv);
}

/* --- predicates for host_wait --------------------------------------------- */

static bool got_heartbeat(const struct host *h)
{
	return h->heartbeats > 0;
}

static bool got_closed(const struct host *h)
{
	return h->closed > 0;
}

static bool got_connect(const struct host *h)
{
	return h->connects > 0;
}

static bool got_connected(const struct host *h)
{
	return h->connected > 0;
}

static bool got_eof(const struct host *h)
{
	return (h->shut_flags & VSOCK_SHUTDOWN_SEND) != 0;
}

static bool got_window(const struct host *h)
{
	return h->got >= VSOCK_CONN_BUF;
}

static bool got_text(const struct host *h)
{
	return h->text_len >= 3;
}

static bool got_console(const struct host *h)
{
	return h->cons_len >= 8;
}

#define NEED_LOOPBACK()                                                                            \
	do {                                                                                       \
		if (!have_loopback)                                                                \
			skip();                                                                    \
	} while (0)

/* --- tests ----------------------------------------------------------------- */

/* The heartbeat is answered and reported; a wrong byte is not; then port
 * 9000 is given up. */
static void test_heartbeat(void **state)
{
	struct host h;
	uint8_t b = 0;
	int fd;

	NEED_LOOPBACK();
	host_start(&h, LOCAL_CID, 0);
	host_listen(&h, VSOCK_HEARTBEAT_PORT);
	fd = enclave_connect(VSOCK_HEARTBEAT_PORT);
	assert_int_equal(send(fd, "\x42", 1, 0), 1);
	assert_true(recv(fd, &b, 1, 0) <= 0); /* closed, no echo */
	close(fd);
	assert_int_equal(h.heartbeats, 0);
	fd = enclave_connect(VSOCK_HEARTBEAT_PORT);
	b = VSOCK_HEARTBEAT_BYTE;
	assert_int_equal(send(fd, &b, 1, 0), 1);
	b = 0;
	assert_int_equal(recv(fd, &b, 1, 0), 1);
	assert_int_equal(b, VSOCK_HEARTBEAT_BYTE);
	assert_int_equal(recv(fd, &b, 1, 0), 0);
	close(fd);
	assert_true(host_wait(&h, got_heartbeat));
	assert_int_equal(h.connects, 0);
	assert_int_equal(h.closed, 0);
	/* The port is free again, for the next enclave's boot. */
	assert_int_equal(afvsock_unlisten(h.a, VSOCK_HEARTBEAT_PORT), -ENOENT);
	close(vsock_listener(VSOCK_HEARTBEAT_PORT));
	afvsock_free(h.a);
}

/* Several MiB each way at once, checked byte by byte; the enclave's EOF
 * and the host's shutdown make `closed`. */
static void test_data_both_ways(void **state)
{
	uint32_t port = port_base + 1;
	struct peer tx, rx;
	struct host h;
	int fd;

	NEED_LOOPBACK();
	host_start(&h, LOCAL_CID, 0);
	h.seed = 11;
	host_listen(&h, port);
	fd = enclave_connect(port);
	assert_true(host_wait(&h, got_connect));
	assert_int_equal(h.last_port, port);
	peer_start(&tx, peer_send_main, fd, BIG, 11);
	peer_start(&rx, peer_recv_main, fd, 0, 22);
	host_send_all(&h, h.id, BIG, 22);
	pthread_join(tx.th, NULL);
	pthread_join(rx.th, NULL);
	assert_false(tx.bad);
	assert_int_equal(rx.got, BIG);
	assert_true(rx.eof);
	assert_false(rx.bad);
	assert_true(host_wait(&h, got_closed));
	assert_int_equal(h.got, BIG);
	assert_false(h.bad);
	assert_int_equal(h.closed_id, h.id);
	assert_true(h.shut_flags & VSOCK_SHUTDOWN_SEND);
	close(fd);
	afvsock_free(h.a);
	assert_true(h.writables > 0); /* the socket filled: short sends happened */
}

/* A host that gives no credit stops the reading at VSOCK_CONN_BUF; credit
 * lets the rest through. */
static void test_credit_bound(void **state)
{
	uint32_t port = port_base + 2;
	struct host h;
	struct peer tx;
	uint64_t held;

	NEED_LOOPBACK();
	host_start(&h, LOCAL_CID, 0);
	h.seed = 33;
	h.hold_credit = true;
	host_listen(&h, port);
	peer_start(&tx, peer_send_main, enclave_connect(port), 2 * VSOCK_CONN_BUF + 12345, 33);
	assert_true(host_wait(&h, got_window));
	usleep(300000);
	pvsock_lock(&h.pv);
	assert_int_equal(h.got, VSOCK_CONN_BUF);
	assert_int_equal(pvsock_credit(&h.pv, h.id, VSOCK_CONN_BUF + 1), -EINVAL);
	held = h.uncredited;
	h.hold_credit = false;
	assert_int_equal(pvsock_credit(&h.pv, h.id, (uint32_t)held), 0);
	pvsock_unlock(&h.pv);
	assert_true(host_wait(&h, got_eof));
	pthread_join(tx.th, NULL);
	assert_int_equal(h.got, 2 * VSOCK_CONN_BUF + 12345);
	assert_false(h.bad);
	close(tx.fd);
	afvsock_free(h.a);
}

/* Half-closes, each side first: the other direction keeps working. */
static void test_half_close(void **state)
{
	uint32_t port = port_base + 3;
	struct host h;
	char buf[8] = {0};
	int fd;

	NEED_LOOPBACK();
	host_start(&h, LOCAL_CID, 0);
	h.keep_text = true;
	host_listen(&h, port);
	/* The enclave stops sending, then still receives. */
	fd = enclave_connect(port);
	assert_int_equal(send(fd, "abc", 3, 0), 3);
	shutdown(fd, SHUT_WR);
	assert_true(host_wait(&h, got_eof));
	pvsock_lock(&h.pv);
	assert_memory_equal(h.text, "abc", 3);
	assert_int_equal(h.closed, 0);
	assert_int_equal(pvsock_send(&h.pv, h.id, "xyz", 3), 3);
	assert_int_equal(pvsock_shutdown(&h.pv, h.id, VSOCK_SHUTDOWN_SEND), 0);
	pvsock_unlock(&h.pv);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_WAITALL), 3);
	assert_memory_equal(buf, "xyz", 3);
	assert_true(host_wait(&h, got_closed));
	close(fd);
	/* The host stops sending, then still receives. */
	host_reset(&h);
	fd = enclave_connect(port);
	assert_true(host_wait(&h, got_connect));
	pvsock_lock(&h.pv);
	assert_int_equal(pvsock_shutdown(&h.pv, h.id, VSOCK_SHUTDOWN_SEND), 0);
	pvsock_unlock(&h.pv);
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	assert_int_equal(send(fd, "late", 4, 0), 4);
	assert_true(host_wait(&h, got_text));
	assert_int_equal(h.closed, 0);
	close(fd);
	assert_true(host_wait(&h, got_closed));
	assert_memory_equal(h.text, "late", 4);
	afvsock_free(h.a);
}

static bool got_connected_or_closed(const struct host *h)
{
	return h->connected || h->closed;
}

/* The host connects into the enclave; a port nobody listens on gives
 * `closed` (a reset, or the connect's timeout where there is no loopback). */
static void test_host_connect(void **state)
{
	uint32_t port = port_base + 4;
	struct host h;
	uint64_t id;
	char buf[8] = {0};
	int lfd = -1, fd;

	host_start(&h, LOCAL_CID, 0);
	pvsock_lock(&h.pv);
	assert_int_equal(pvsock_connect(&h.pv, port_base + 5, 0, &id), 0);
	assert_int_equal(pvsock_send(&h.pv, id, "x", 1), 0); /* not yet */
	pvsock_unlock(&h.pv);
	assert_true(host_wait(&h, got_connected_or_closed));
	assert_int_equal(h.connected, 0);
	assert_int_equal(h.closed_id, id);
	if (!have_loopback) {
		afvsock_free(h.a);
		return;
	}
	host_reset(&h);
	pvsock_lock(&h.pv);
	h.keep_text = true;
	pvsock_unlock(&h.pv);
	lfd = vsock_listener(port);
	pvsock_lock(&h.pv);
	assert_int_equal(pvsock_connect(&h.pv, port, 0, &id), 0);
	pvsock_unlock(&h.pv);
	fd = accept_one(lfd);
	assert_true(host_wait(&h, got_connected));
	assert_int_equal(h.connected_id, id);
	pvsock_lock(&h.pv);
	assert_int_equal(pvsock_send(&h.pv, id, "ping", 4), 4);
	pvsock_unlock(&h.pv);
	assert_int_equal(recv(fd, buf, 4, MSG_WAITALL), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(send(fd, "pong", 4, 0), 4);
	close(fd);
	assert_true(host_wait(&h, got_closed));
	assert_memory_equal(h.text, "pong", 4);
	assert_int_equal(h.shut_flags, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	close(lfd);
	afvsock_free(h.a);
}

/* Only the enclave's CID may connect: CID 1 is closed unheard when the
 * enclave is CID 7, and refused connections never reach `closed`. */
static void test_peer_cid(void **state)
{
	uint32_t port = port_base + 6;
	struct host h;
	char b;
	int fd;

	NEED_LOOPBACK();
	host_start(&h, 7, 0);
	host_listen(&h, port);
	fd = enclave_connect(port);
	assert_true(recv(fd, &b, 1, 0) <= 0);
	close(fd);
	afvsock_free(h.a);
	assert_int_equal(h.connects, 0);
	/* The right CID, refused by the host. */
	host_start(&h, LOCAL_CID, 0);
	h.refuse = true;
	host_listen(&h, port);
	fd = enclave_connect(port);
	assert_true(recv(fd, &b, 1, 0) <= 0);
	close(fd);
	assert_true(host_wait(&h, got_connect));
	assert_int_equal(h.closed, 0);
	afvsock_free(h.a);
}

/* The console server goes away and comes back: what it says after the
 * reconnect is captured too. */
static void test_console_reconnect(void **state)
{
	uint32_t port = port_base + 7;
	struct host h;
	int lfd, fd;

	NEED_LOOPBACK();
	lfd = vsock_listener(port);
	host_start(&h, LOCAL_CID, port);
	fd = accept_one(lfd);
	assert_int_equal(send(fd, "one\n", 4, 0), 4);
	close(fd);
	close(lfd); /* refused for a while */
	usleep(400000);
	lfd = vsock_listener(port);
	fd = accept_one(lfd);
	assert_int_equal(send(fd, "two\n", 4, 0), 4);
	assert_true(host_wait(&h, got_console));
	assert_memory_equal(h.cons, "one\ntwo\n", 8);
	close(fd);
	close(lfd);
	afvsock_free(h.a);
}

/* A port another process holds: EADDRINUSE comes back. */
static void test_port_in_use(void **state)
{
	uint32_t port = port_base + 8;
	struct nectl_err err = {0};
	struct host h;
	int lfd = vsock_listener(port);

	host_start(&h, LOCAL_CID, 0);
	assert_int_equal(afvsock_listen(h.a, port, &err), -1);
	assert_int_equal(err.errnum, EADDRINUSE);
	assert_int_equal(afvsock_listen(h.a, port + 1, &err), 0);
	assert_int_equal(afvsock_listen(h.a, port + 1, &err), -1);
	assert_int_equal(err.errnum, EADDRINUSE);
	assert_int_equal(afvsock_unlisten(h.a, port + 1), 0);
	assert_int_equal(afvsock_unlisten(h.a, port + 1), -ENOENT);
	pvsock_lock(&h.pv);
	assert_int_equal(pvsock_connected(&h.pv, 12345), -ENOENT);
	assert_int_equal(pvsock_credit(&h.pv, 12345, 1), -ENOENT);
	assert_int_equal(pvsock_close(&h.pv, 12345), -ENOENT);
	assert_int_equal(pvsock_send(&h.pv, 12345, "x", 1), 0);
	pvsock_unlock(&h.pv);
	close(lfd);
	afvsock_free(h.a);
}

/* --- main ------------------------------------------------------------------ */

/* A short non-blocking connect to a port we listen on, over CID 1. */
static bool probe_loopback(void)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = LOCAL_CID, .svm_port = port_base};
	struct sockaddr_vm peer;
	socklen_t len = sizeof(peer);
	int lfd = vsock_listener(port_base);
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	bool ok = false;

	if (fd >= 0 &&
	    (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS))
		ok = poll(&p, 1, 500) == 1 && getpeername(fd, (struct sockaddr *)&peer, &len) == 0;
	if (fd >= 0)
		close(fd);
	close(lfd);
	return ok;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_port_in_use),	 cmocka_unit_test(test_host_connect),
	    cmocka_unit_test(test_heartbeat),	 cmocka_unit_test(test_data_both_ways),
	    cmocka_unit_test(test_credit_bound), cmocka_unit_test(test_half_close),
	    cmocka_unit_test(test_peer_cid),	 cmocka_unit_test(test_console_reconnect),
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		printf("skipped: no AF_VSOCK here (%s)\n", strerror(errno));
		return 77;
	}
	close(fd);
	port_base = 0x40000000u + ((uint32_t)getpid() & 0xffff) * 16;
	have_loopback = probe_loopback();
	if (!have_loopback)
		printf("no vsock loopback (CID 1): the tests that need it are skipped\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
