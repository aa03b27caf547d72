/* The port forwarder (src/enclave/forward.c) between real host sockets and
 * the real vsock device, driven by a fake guest on fake guest memory. The
 * test thread is the guest's vCPU: it holds the "bus lock" (a mutex) while
 * it touches the device or the memory the device writes, as vCPU threads
 * do. Host peers run in their own threads with ordinary blocking-style I/O.
 * Waits poll the device's interrupt (an eventfd) with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "enclave/forward.h"
#include "enclave/forward_int.h"
#include "vsockdrv.h"

#define MEM_SIZE 0x400000
#define G_BUF	 (64 * 1024) /* the guest's receive window */
#define G_CHUNK	 16384	     /* the guest's largest packet */
#define MAXC	 64
#define KEEP	 4096 /* received bytes kept for comparing */
#define WAIT_MS	 5000

enum gstate { GS_FREE, GS_CONNECTING, GS_INCOMING, GS_OPEN, GS_RESET };

/* One guest socket. */
struct gconn {
	enum gstate state;
	uint32_t gport, hport;
	uint32_t peer_shut; /* SHUTDOWN flags the host sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	uint32_t fwd_cnt, fwd_told;
	uint8_t seed; /* expected pattern of what arrives */
	uint64_t got; /* bytes received */
	uint64_t bad; /* of them, not the pattern */
	uint8_t keep[KEEP];
};

struct env {
	pthread_mutex_t lock;
	struct vdrv d; /* the guest */
	struct forwarder *f;
	int irq_fd;
	struct gconn c[MAXC];
	unsigned heartbeats;
	char dir[64];
	unsigned cap_rule, cap_total; /* fwd_set_limits before the start (0: default) */
	unsigned notes;		      /* lines the forwarder gave for the log */
	char note[512];
};

/* --- the data ------------------------------------------------------------ */

static uint8_t pat(uint8_t seed, uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 9) + seed * 37u);
}

static void pat_fill(uint8_t *b, size_t len, uint8_t seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		b[i] = pat(seed, off + i);
}

static uint64_t pat_check(const uint8_t *b, size_t len, uint8_t seed, uint64_t off)
{
	uint64_t bad = 0;

	for (size_t i = 0; i < len; i++)
		bad += b[i] != pat(seed, off + i);
	return bad;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- the bus lock and the interrupt -------------------------------------- */

static void bus_lock(void *ctx)
{
	pthread_mutex_lock(&((struct env *)ctx)->lock);
}

static void bus_unlock(void *ctx)
{
	pthread_mutex_unlock(&((struct env *)ctx)->lock);
}

static void fake_irq(void *ctx, int level)
{
	uint64_t one = 1;

	if (level)
		assert_int_equal(write(((struct env *)ctx)->irq_fd, &one, 8), 8);
}

static void on_heartbeat(void *ctx)
{
	((struct env *)ctx)->heartbeats++;
}

static void on_note(void *ctx, const char *line)
{
	struct env *e = ctx;

	e->notes++;
	snprintf(e->note, sizeof(e->note), "%s", line);
}

/* --- the driver (bus lock held) ------------------------------------------ */

/* One packet on the tx queue; the device handles it before returning. */
static void g_tx(struct env *e, struct gconn *c, uint16_t op, uint32_t flags, const void *pay,
		 uint32_t len)
{
	vd_tx(&e->d, op, c->gport, c->hport, pay, len, flags, G_BUF, c->fwd_cnt);
	c->fwd_told = c->fwd_cnt;
}

static struct gconn *g_find(struct env *e, uint32_t gport, uint32_t hport)
{
	for (unsigned i = 0; i < MAXC; i++)
		if (e->c[i].state != GS_FREE && e->c[i].gport == gport && e->c[i].hport == hport)
			return &e->c[i];
	return NULL;
}

static struct gconn *g_new(struct env *e, uint32_t gport, uint32_t hport, enum gstate st)
{
	for (unsigned i = 0; i < MAXC; i++) {
		struct gconn *c = &e->c[i];

		if (c->state == GS_FREE) {
			memset(c, 0, sizeof(*c));
			c->state = st;
			c->gport = gport;
			c->hport = hport;
			return c;
		}
	}
	fail_msg("guest: out of sockets");
	return NULL;
}

static void g_data(struct gconn *c, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len && c->got + i < KEEP; i++)
		c->keep[c->got + i] = p[i];
	c->bad += pat_check(p, len, c->seed, c->got);
	c->got += len;
	c->fwd_cnt += len; /* read by the application at once */
}

static void g_packet(struct env *e, const uint8_t *b, uint32_t len)
{
	struct pkt p;
	struct gconn *c;

	vd_decode(b, &p);
	c = g_find(e, p.dst_port, p.src_port);
	assert_int_equal(len, HDR + p.len);
	if (p.op == OP_REQUEST) {
		assert_null(c);
		c = g_new(e, p.dst_port, p.src_port, GS_INCOMING);
	}
	if (!c)
		return; /* an RST for a socket this guest already forgot */
	c->peer_buf_alloc = p.buf_alloc;
	c->peer_fwd_cnt = p.fwd_cnt;
	if (p.op == OP_RESPONSE && c->state == GS_CONNECTING)
		c->state = GS_OPEN;
	else if (p.op == OP_RST)
		c->state = GS_RESET;
	else if (p.op == OP_RW)
		g_data(c, b + HDR, p.len);
	else if (p.op == OP_CREDIT_REQ)
		g_tx(e, c, OP_CREDIT_UPDATE, 0, NULL, 0);
	if (p.op != OP_SHUTDOWN)
		return;
	c->peer_shut |= p.flags;
	if (c->peer_shut == 3 && c->state == GS_OPEN) {
		/* What Linux does: the host is gone both ways. */
		g_tx(e, c, OP_RST, 0, NULL, 0);
		c->state = GS_RESET;
	}
}

/* Takes every packet the device delivered, hands each buffer back, and
 * tells the host what was consumed. */
static void g_pump_locked(struct env *e)
{
	uint32_t elem[2];
	bool any = false;

	vd_wr(&e->d, 0x064, vd_rd(&e->d, 0x060));
	while (vd_used(&e->d, elem)) {
		assert_true(elem[0] < QSIZE);
		g_packet(e, guestmem_ptr(&e->d.gm, RXBUF + (uint64_t)elem[0] * RXSZ, RXSZ),
			 elem[1]);
		vd_post(&e->d, 0, (uint16_t)elem[0]);
		any = true;
	}
	for (unsigned i = 0; i < MAXC; i++)
		if (e->c[i].state == GS_OPEN && e->c[i].fwd_cnt != e->c[i].fwd_told)
			g_tx(e, &e->c[i], OP_CREDIT_UPDATE, 0, NULL, 0);
	if (any)
		vd_wr(&e->d, 0x050, 0);
}

static void g_pump(struct env *e)
{
	bus_lock(e);
	g_pump_locked(e);
	bus_unlock(e);
}

/* Waits up to ms for an interrupt; false on timeout. */
static bool g_wait_irq(struct env *e, int ms)
{
	struct pollfd p = {.fd = e->irq_fd, .events = POLLIN};
	uint64_t v;

	if (poll(&p, 1, ms) <= 0)
		return false;
	assert_int_equal(read(e->irq_fd, &v, 8), 8);
	return true;
}

typedef bool (*g_pred)(struct env *e, void *arg);

static void g_until(struct env *e, g_pred pred, void *arg)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		g_pump(e);
		if (pred(e, arg))
			return;
		if (now_ms() > end)
			fail_msg("timed out waiting for the guest");
		g_wait_irq(e, 20);
	}
}

static bool pred_state(struct env *e, void *arg)
{
	struct gconn *c = arg;

	return c->state != GS_CONNECTING;
}

static struct gconn *g_connect(struct env *e, uint32_t gport, uint32_t port)
{
	struct gconn *c;

	bus_lock(e);
	c = g_new(e, gport, port, GS_CONNECTING);
	g_tx(e, c, OP_REQUEST, 0, NULL, 0);
	bus_unlock(e);
	g_until(e, pred_state, c);
	return c;
}

static uint32_t g_credit(const struct gconn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Sends as much of the pattern [*off, total) as credit allows. */
static void g_send_some(struct env *e, struct gconn *c, uint8_t seed, uint64_t *off, uint64_t total)
{
	static uint8_t buf[G_CHUNK];

	bus_lock(e);
	while (c->state == GS_OPEN && *off < total && g_credit(c)) {
		uint32_t n = g_credit(c);

		if (n > G_CHUNK)
			n = G_CHUNK;
		if (n > total - *off)
			n = (uint32_t)(total - *off);
		pat_fill(buf, n, seed, *off);
		g_tx(e, c, OP_RW, 0, buf, n);
		c->tx_cnt += n;
		*off += n;
	}
	bus_unlock(e);
}

static void g_send_str(struct env *e, struct gconn *c, const char *s)
{
	bus_lock(e);
	assert_true(g_credit(c) >= strlen(s));
	g_tx(e, c, OP_RW, 0, s, (uint32_t)strlen(s));
	c->tx_cnt += (uint32_t)strlen(s);
	bus_unlock(e);
}

static void g_ctl(struct env *e, struct gconn *c, uint16_t op, uint32_t flags)
{
	bus_lock(e);
	g_tx(e, c, op, flags, NULL, 0);
	if (op == OP_RESPONSE)
		c->state = GS_OPEN;
	bus_unlock(e);
}

struct want_bytes {
	struct gconn *c;
	uint64_t n;
};

static bool pred_bytes(struct env *e, void *arg)
{
	struct want_bytes *w = arg;

	return w->c->got >= w->n;
}

static void g_wait_bytes(struct env *e, struct gconn *c, uint64_t n)
{
	struct want_bytes w = {c, n};

	g_until(e, pred_bytes, &w);
}

static bool pred_shut(struct env *e, void *arg)
{
	struct gconn *c = arg;

	return (c->peer_shut & 2) || c->state == GS_RESET;
}

static bool pred_reset(struct env *e, void *arg)
{
	return ((struct gconn *)arg)->state == GS_RESET;
}

static bool pred_incoming(struct env *e, void *arg)
{
	struct gconn **out = arg;

	for (unsigned i = 0; i < MAXC; i++)
		if (e->c[i].state == GS_INCOMING) {
			*out = &e->c[i];
			return true;
		}
	return false;
}

static struct gconn *g_accept(struct env *e, uint32_t port)
{
	struct gconn *c = NULL;

	g_until(e, pred_incoming, &c);
	assert_int_equal(c->gport, port);
	assert_true(c->hport >= 1024);
	g_ctl(e, c, OP_RESPONSE, 0);
	return c;
}

/* --- host sockets -------------------------------------------------------- */

static void unix_addr(struct sockaddr_un *un, const char *path)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	snprintf(un->sun_path, sizeof(un->sun_path), "%s", path);
}

static int unix_listen(const char *path)
{
	struct sockaddr_un un;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unix_addr(&un, path);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

static int unix_dial(const char *path)
{
	struct sockaddr_un un;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unix_addr(&un, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&un, sizeof(un)), 0);
	return fd;
}

/* A listener on 127.0.0.1 at a port the kernel picks; *port is set. */
static int tcp_listen(unsigned *port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	*port = ntohs(in.sin_port);
	return fd;
}

static unsigned tcp_free_port(void)
{
	unsigned port;

	close(tcp_listen(&port));
	return port;
}

static int tcp_dial(unsigned port)
{
	struct sockaddr_in in = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_int_equal(connect(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	return fd;
}

/* accept() with a deadline, so a forwarder that never connects fails the
 * test instead of hanging it. */
static int accept_within(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* The next bytes on fd are exactly the string s. */
static void expect_read(int fd, const char *s)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t len = strlen(s), done = 0;
	char buf[64];

	assert_true(len <= sizeof(buf));
	while (done < len) {
		ssize_t n;

		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		n = read(fd, buf + done, len - done);
		assert_true(n > 0);
		done += (size_t)n;
	}
	assert_memory_equal(buf, s, len);
}

static void expect_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(read(fd, &c, 1), 0);
}

/* A host peer: sends `send` bytes of pattern `seed`, then shuts its side;
 * reads until EOF, checking pattern `rseed`. */
struct peer {
	int fd;
	uint64_t send, got, bad;
	uint8_t seed, rseed;
	int err;
	pthread_t th;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	uint8_t buf[32768];
	uint64_t sent = 0;
	bool eof = false, shut = false;

	fcntl(p->fd, F_SETFL, O_NONBLOCK);
	while (!eof || !shut) {
		struct pollfd pf = {.fd = p->fd,
				    .events = (short)((eof ? 0 : POLLIN) | (shut ? 0 : POLLOUT))};
		ssize_t n;

		if (poll(&pf, 1, WAIT_MS) <= 0) {
			p->err = ETIMEDOUT;
			break;
		}
		if (!shut && sent == p->send) {
			shutdown(p->fd, SHUT_WR);
			shut = true;
		} else if (!shut && (pf.revents & POLLOUT)) {
			size_t k =
			    p->send - sent < sizeof(buf) ? (size_t)(p->send - sent) : sizeof(buf);

			pat_fill(buf, k, p->seed, sent);
			n = write(p->fd, buf, k);
			if (n > 0)
				sent += (uint64_t)n;
		}
		if (!eof && (pf.revents & (POLLIN | POLLHUP))) {
			n = read(p->fd, buf, sizeof(buf));
			if (n == 0)
				eof = true;
			if (n > 0) {
				p->bad += pat_check(buf, (size_t)n, p->rseed, p->got);
				p->got += (uint64_t)n;
			}
			if (n < 0 && errno != EAGAIN) {
				p->err = errno;
				break;
			}
		}
	}
	return NULL;
}

static void peer_start(struct peer *p, int fd, uint64_t send, uint8_t seed, uint8_t rseed)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->send = send;
	p->seed = seed;
	p->rseed = rseed;
	assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

static void peer_join(struct peer *p)
{
	pthread_join(p->th, NULL);
	close(p->fd);
	assert_int_equal(p->err, 0);
}

/* --- setup --------------------------------------------------------------- */

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	pthread_mutex_init(&e->lock, NULL);
	e->irq_fd = eventfd(0, EFD_CLOEXEC);
	snprintf(e->dir, sizeof(e->dir), "/tmp/nectl-fwd-XXXXXX");
	if (vd_mem_init(&e->d, MEM_SIZE) < 0 || e->irq_fd < 0 || !mkdtemp(e->dir))
		return -1;
	*state = e;
	return 0;
}

/* The forwarder for `specs` (to-host first, then into), attached to a new
 * device, its thread running, the guest driver up. */
static void start(struct env *e, const char *const *to, size_t nto, const char *const *into,
		  size_t ninto)
{
	struct fwd_rule r[8];
	struct nectl_err err = {0};
	struct pvsock pv;
	size_t n = 0;

	for (size_t i = 0; i < nto; i++)
		assert_int_equal(fwd_rule_parse(FWD_TO_HOST, to[i], &r[n++], &err), 0);
	for (size_t i = 0; i < ninto; i++)
		assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, into[i], &r[n++], &err), 0);
	if (fwd_create(&e->f, r, n, &err) < 0)
		fail_msg("fwd_create: %s", err.msg);
	fwd_set_limits(e->f, e->cap_rule, e->cap_total, on_note, e);
	e->d.dev = vsock_new(GUEST_CID, &e->d.gm, fake_irq, e, fwd_ops(), e->f);
	assert_non_null(e->d.dev);
	pvsock_from_device(&pv, e->d.dev, bus_lock, bus_unlock, e);
	fwd_attach(e->f, &pv, on_heartbeat, e);
	assert_int_equal(fwd_start(e->f, &err), 0);
	bus_lock(e);
	/* Every rx buffer posted, one descriptor each, buffer i at desc i. */
	vd_init(&e->d);
	vd_post_rx(&e->d, QSIZE);
	bus_unlock(e);
}

static void stop(struct env *e)
{
	fwd_destroy(e->f);
	e->f = NULL;
	vsock_free(e->d.dev);
	e->d.dev = NULL;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	if (e->f)
		stop(e);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		return -1;
	close(e->irq_fd);
	vd_mem_free(&e->d);
	pthread_mutex_destroy(&e->lock);
	free(e);
	return 0;
}

static void path_in(const struct env *e, char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", e->dir, name);
}

static struct fwd_stats stats(struct env *e)
{
	struct fwd_stats st;

	fwd_get_stats(e->f, &st);
	return st;
}

static bool pred_idle(struct env *e, void *arg)
{
	struct fwd_stats st;

	fwd_get_stats(e->f, &st);
	return st.conns_open == 0;
}

/* A listener at `name` in the test's directory and the forwarder with the
 * one rule 5000=unix:it; returns the listener. */
static int start_to_unix(struct env *e, const char *name)
{
	char path[128], spec[200];
	const char *to[1] = {spec};
	int lfd;

	path_in(e, path, sizeof(path), name);
	lfd = unix_listen(path);
	snprintf(spec, sizeof(spec), "5000=unix:%s", path);
	start(e, to, 1, NULL, 0);
	return lfd;
}

/* Guest port gport connects to host port 5000; *fd is the host's end. */
static struct gconn *open_to_host(struct env *e, int lfd, uint32_t gport, int *fd)
{
	struct gconn *c = g_connect(e, gport, 5000);

	*fd = accept_within(lfd);
	return c;
}

/* The usual start: host.sock listening, guest port 1234 connected to it. */
static struct gconn *start_open(struct env *e, int *lfd, int *fd)
{
	*lfd = start_to_unix(e, "host.sock");
	return open_to_host(e, *lfd, 1234, fd);
}

/* The host closes its end, and stops listening once the forwarder has
 * no connection left. */
static void hang_up(struct env *e, int fd, int lfd)
{
	close(fd);
	g_until(e, pred_idle, NULL);
	close(lfd);
}

/* The forwarder with the one rule unix:PATH=80, PATH (into.sock in the
 * test's directory) left in path. */
static void start_into_unix(struct env *e, char *path, size_t len)
{
	char spec[200];
	const char *into[1] = {spec};

	path_in(e, path, len, "into.sock");
	snprintf(spec, sizeof(spec), "unix:%s=80", path);
	start(e, NULL, 0, into, 1);
}

/* --- rules ----------------------------------------------------------------- */

static void test_parse_good(void **state)
{
	struct nectl_err err = {0};
	struct fwd_rule r;

	assert_int_equal(fwd_rule_parse(FWD_TO_HOST, "80=unix:/run/a=b.sock", &r, &err), 0);
	assert_int_equal(r.port, 80);
	assert_true(r.is_unix);
	assert_string_equal(r.path, "/run/a=b.sock");
	assert_string_equal(r.text, "80=unix:/run/a=b.sock");
	assert_int_equal(fwd_rule_parse(FWD_TO_HOST, "4294967295=tcp:example.com:8080", &r, &err),
			 0);
	assert_int_equal(r.port, 0xffffffffu);
	assert_false(r.is_unix);
	assert_string_equal(r.host, "example.com");
	assert_string_equal(r.service, "8080");
	assert_int_equal(fwd_rule_parse(FWD_TO_HOST, "22=tcp:[::1]:2222", &r, &err), 0);
	assert_string_equal(r.host, "::1");
	assert_string_equal(r.service, "2222");
	assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, "tcp:127.0.0.1:8443=443", &r, &err), 0);
	assert_int_equal(r.dir, FWD_INTO_ENCLAVE);
	assert_int_equal(r.port, 443);
	assert_string_equal(r.host, "127.0.0.1");
	assert_string_equal(r.service, "8443");
	assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, "unix:/tmp/x=y=9000", &r, &err), 0);
	assert_string_equal(r.path, "/tmp/x=y");
	assert_int_equal(r.port, 9000); /* the enclave's own 9000 is fine */
	assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, "tcp:[fe80::1]:1=7", &r, &err), 0);
	assert_string_equal(r.host, "fe80::1");
}

static void test_parse_bad(void **state)
{
	static const struct {
		enum fwd_dir dir;
		const char *spec, *msg;
	} bad[] = {
	    {FWD_TO_HOST, "", "expected PORT=unix:PATH or PORT=tcp:HOST:PORT"},
	    {FWD_TO_HOST, "80", "expected PORT=unix:PATH"},
	    {FWD_TO_HOST, "0=unix:/x", "vsock port 0 is not valid"},
	    {FWD_TO_HOST, "4294967296=unix:/x", "in 1..4294967295"},
	    {FWD_TO_HOST, "-1=unix:/x", "decimal number"},
	    {FWD_TO_HOST, " 80=unix:/x", "decimal number"},
	    {FWD_TO_HOST, "9000=unix:/x", "port 9000 is the enclave's boot heartbeat"},
	    {FWD_TO_HOST, "9009=unix:/x", "port 9009 is where nectl's init reports the app's end"},
	    {FWD_TO_HOST, "80=unix:", "empty Unix socket path"},
	    {FWD_TO_HOST, "80=tcp:localhost:0", "TCP port must be a decimal number in 1..65535"},
	    {FWD_TO_HOST, "80=tcp:localhost:65536", "1..65535"},
	    {FWD_TO_HOST, "80=tcp:localhost:http", "1..65535"},
	    {FWD_TO_HOST, "80=tcp:localhost", "expected tcp:HOST:PORT"},
	    {FWD_TO_HOST, "80=tcp::80", "empty TCP host"},
	    {FWD_TO_HOST, "80=tcp:::1:80", "[brackets]"},
	    {FWD_TO_HOST, "80=tcp:[::1:80", "unclosed '['"},
	    {FWD_TO_HOST, "80=udp:x:1", "must be unix:PATH or tcp:HOST:PORT"},
	    {FWD_INTO_ENCLAVE, "tcp:127.0.0.1:8080", "expected unix:PATH=PORT"},
	    {FWD_INTO_ENCLAVE, "tcp:127.0.0.1:8080=0", "vsock port 0"},
	    {FWD_INTO_ENCLAVE, "unix:=80", "empty Unix socket path"},
	    {FWD_INTO_ENCLAVE, "unix:/x=", "decimal number"},
	    {FWD_INTO_ENCLAVE, "80=unix:/x", "must be unix:PATH or tcp:HOST:PORT"},
	};
	struct nectl_err err;
	struct fwd_rule r;
	char spec[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (fwd_rule_parse(bad[i].dir, bad[i].spec, &r, &err) != -1)
			fail_msg("accepted '%s'", bad[i].spec);
		assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
		if (!strstr(err.msg, bad[i].msg) || !strstr(err.msg, bad[i].spec) ||
		    !strstr(err.msg, bad[i].dir == FWD_TO_HOST ? "--forward-to-host"
							       : "--forward-into-enclave"))
			fail_msg("'%s': message '%s'", bad[i].spec, err.msg);
		assert_null(strchr(err.msg, '\n'));
	}
	/* Too long for sun_path. */
	memset(spec, 'a', sizeof(spec));
	memcpy(spec, "80=unix:/", 9);
	spec[8 + 108] = '\0';
	assert_int_equal(fwd_rule_parse(FWD_TO_HOST, spec, &r, &err), -1);
	assert_non_null(strstr(err.msg, "longer than 107 bytes"));
	spec[8 + 107] = '\0';
	assert_int_equal(fwd_rule_parse(FWD_TO_HOST, spec, &r, &err), 0);
}

static void test_create_errors(void **state)
{
	struct env *e = *state;
	struct nectl_err err = {0};
	struct forwarder *f;
	struct fwd_rule r[2];
	char path[128], spec[200];
	unsigned port;
	struct stat st;
	int fd;

	/* The same vsock port twice. */
	assert_int_equal(fwd_rule_parse(FWD_TO_HOST, "80=unix:/a", &r[0], &err), 0);
	assert_int_equal(fwd_rule_parse(FWD_TO_HOST, "80=tcp:127.0.0.1:80", &r[1], &err), 0);
	assert_int_equal(fwd_create(&f, r, 2, &err), -1);
	assert_null(f);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "the same vsock port twice"));
	assert_non_null(strstr(err.msg, "80=tcp:127.0.0.1:80"));
	/* The same listen address twice. */
	assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, "unix:/a=1", &r[0], &err), 0);
	assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, "unix:/a=2", &r[1], &err), 0);
	assert_int_equal(fwd_create(&f, r, 2, &err), -1);
	assert_non_null(strstr(err.msg, "the same listen address twice"));
	/* A file that is not a socket is never removed. */
	path_in(e, path, sizeof(path), "file");
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	snprintf(spec, sizeof(spec), "unix:%s=5", path);
	assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, spec, &r[0], &err), 0);
	assert_int_equal(fwd_create(&f, r, 1, &err), -1);
	assert_non_null(strstr(err.msg, "exists and is not a socket"));
	assert_non_null(strstr(err.msg, spec));
	assert_int_equal(stat(path, &st), 0);
	/* A socket somebody listens on is in use. */
	path_in(e, path, sizeof(path), "live");
	fd = unix_listen(path);
	snprintf(spec, sizeof(spec), "unix:%s=5", path);
	assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, spec, &r[0], &err), 0);
	assert_int_equal(fwd_create(&f, r, 1, &err), -1);
	assert_non_null(strstr(err.msg, "in use"));
	close(fd);
	/* Now it is stale: replaced, and removed again by destroy. */
	assert_int_equal(fwd_create(&f, r, 1, &err), 0);
	close(unix_dial(path));
	fwd_destroy(f);
	assert_int_equal(stat(path, &st), -1);
	/* A TCP port in use: the error names the rule and errno. */
	fd = tcp_listen(&port);
	snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u=5", port);
	assert_int_equal(fwd_rule_parse(FWD_INTO_ENCLAVE, spec, &r[0], &err), 0);
	assert_int_equal(fwd_create(&f, r, 1, &err), -1);
	assert_non_null(strstr(err.msg, spec));
	assert_non_null(strstr(err.msg, strerror(EADDRINUSE)));
	close(fd);
	/* Never attached nor started: destroy is still safe. */
	assert_int_equal(fwd_create(&f, r, 0, &err), 0);
	assert_int_equal(fwd_start(f, &err), -1);
	fwd_destroy(f);
}

/* --- to the host --------------------------------------------------------- */

/* 1 MiB each way at once, then each side shuts down. */
static void relay_both_ways(struct env *e, struct gconn *c, int fd)
{
	const uint64_t total = 1 << 20;
	struct fwd_stats st0 = stats(e);
	struct peer p;
	uint64_t off = 0;
	uint64_t end = now_ms() + WAIT_MS;

	assert_int_equal(c->state, GS_OPEN);
	c->seed = 2;
	c->got = c->bad = 0;
	peer_start(&p, fd, total, 2, 1);
	while (off < total || c->got < total) {
		g_send_some(e, c, 1, &off, total);
		g_pump(e);
		assert_true(now_ms() < end);
		if (off == total || !g_credit(c))
			g_wait_irq(e, 20);
	}
	assert_int_equal(c->bad, 0);
	g_ctl(e, c, OP_SHUTDOWN, 2);
	g_until(e, pred_reset, c);
	peer_join(&p);
	assert_int_equal(p.got, total);
	assert_int_equal(p.bad, 0);
	assert_int_equal(c->got, total);
	assert_int_equal(c->peer_shut, 3);
	g_until(e, pred_idle, NULL);
	assert_int_equal(stats(e).bytes_from_guest - st0.bytes_from_guest, total);
	assert_int_equal(stats(e).bytes_to_guest - st0.bytes_to_guest, total);
	assert_int_equal(stats(e).buffered, 0);
}

static void test_to_host_unix(void **state)
{
	struct env *e = *state;
	struct gconn *c;
	int lfd;

	lfd = start_to_unix(e, "host.sock");
	c = g_connect(e, 1234, 5000);
	relay_both_ways(e, c, accept_within(lfd));
	assert_int_equal(stats(e).conns_total, 1);
	close(lfd);
}

static void test_to_host_tcp(void **state)
{
	struct env *e = *state;
	char spec[64];
	const char *to[1] = {spec};
	unsigned port;
	struct gconn *c;
	int lfd = tcp_listen(&port);

	snprintf(spec, sizeof(spec), "5001=tcp:127.0.0.1:%u", port);
	start(e, to, 1, NULL, 0);
	c = g_connect(e, 1234, 5001);
	relay_both_ways(e, c, accept_within(lfd));
	close(lfd);
}

static void test_unconfigured_port(void **state)
{
	struct env *e = *state;
	const char *to[1] = {"5000=unix:/nonexistent/x"};
	struct gconn *c;

	start(e, to, 1, NULL, 0);
	c = g_connect(e, 1234, 5002);
	assert_int_equal(c->state, GS_RESET);
	assert_int_equal(stats(e).conns_total, 0);
}

static void test_to_host_refused(void **state)
{
	struct env *e = *state;
	char path[128], spec[200], spec2[64];
	const char *to[2] = {spec, spec2};
	struct gconn *c;

	/* Nobody listens at the path, nor on the TCP port. */
	path_in(e, path, sizeof(path), "nobody.sock");
	snprintf(spec, sizeof(spec), "5000=unix:%s", path);
	snprintf(spec2, sizeof(spec2), "5001=tcp:127.0.0.1:%u", tcp_free_port());
	start(e, to, 2, NULL, 0);
	c = g_connect(e, 1234, 5000);
	assert_int_equal(c->state, GS_RESET);
	c = g_connect(e, 1235, 5001);
	assert_int_equal(c->state, GS_RESET);
	g_until(e, pred_idle, NULL);
	assert_int_equal(stats(e).conns_total, 2);
}

static void test_heartbeat(void **state)
{
	struct env *e = *state;
	const char *to[1] = {"5000=unix:/nonexistent/x"};
	struct gconn *c;

	start(e, to, 1, NULL, 0);
	c = g_connect(e, 1000, VSOCK_HEARTBEAT_PORT);
	assert_int_equal(c->state, GS_OPEN);
	c->seed = 0;
	bus_lock(e);
	g_tx(e, c, OP_RW, 0, "\xb7", 1);
	bus_unlock(e);
	g_wait_bytes(e, c, 1);
	assert_int_equal(c->keep[0], 0xb7);
	assert_int_equal(e->heartbeats, 1);
}

/* --- into the enclave ---------------------------------------------------- */

static void into_exchange(struct env *e, int fd, uint32_t port)
{
	struct gconn *c = g_accept(e, port);

	assert_int_equal(write(fd, "ping", 4), 4);
	g_wait_bytes(e, c, 4);
	assert_memory_equal(c->keep, "ping", 4);
	g_send_str(e, c, "pong!");
	expect_read(fd, "pong!");
	/* 1 MiB each way, and both shut down. */
	relay_both_ways(e, c, fd);
}

static void test_into_unix(void **state)
{
	struct env *e = *state;
	char path[128];
	struct stat st;

	start_into_unix(e, path, sizeof(path));
	into_exchange(e, unix_dial(path), 80);
	stop(e);
	assert_int_equal(stat(path, &st), -1); /* removed by destroy */
}

static void test_into_tcp(void **state)
{
	struct env *e = *state;
	char spec[64];
	const char *into[1] = {spec};
	unsigned port = tcp_free_port();

	snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u=8080", port);
	start(e, NULL, 0, into, 1);
	into_exchange(e, tcp_dial(port), 8080);
	assert_int_equal(stats(e).conns_total, 1);
}

/* The guest refuses: the client is closed. */
static void test_into_refused(void **state)
{
	struct env *e = *state;
	char path[128];
	struct gconn *c = NULL;
	int fd;

	start_into_unix(e, path, sizeof(path));
	fd = unix_dial(path);
	g_until(e, pred_incoming, &c);
	g_ctl(e, c, OP_RST, 0);
	c->state = GS_FREE;
	expect_eof(fd);
	close(fd);
	g_until(e, pred_idle, NULL);
}

/* --- half-close ---------------------------------------------------------- */

static void test_half_close(void **state)
{
	struct env *e = *state;
	struct gconn *c;
	int lfd, fd;

	lfd = start_to_unix(e, "host.sock");
	/* The guest stops sending first; the host still answers. */
	c = open_to_host(e, lfd, 1234, &fd);
	g_send_str(e, c, "request");
	g_ctl(e, c, OP_SHUTDOWN, 2);
	expect_read(fd, "request");
	expect_eof(fd);
	assert_int_equal(write(fd, "reply", 5), 5);
	g_wait_bytes(e, c, 5);
	assert_memory_equal(c->keep, "reply", 5);
	assert_int_equal(c->peer_shut, 0);
	close(fd);
	g_until(e, pred_reset, c);
	assert_int_equal(c->peer_shut, 3);
	/* The host stops sending first; the guest still sends. */
	c = open_to_host(e, lfd, 1235, &fd);
	assert_int_equal(write(fd, "banner", 6), 6);
	shutdown(fd, SHUT_WR);
	g_until(e, pred_shut, c);
	assert_int_equal(c->got, 6);
	assert_int_equal(c->peer_shut, 2);
	assert_int_equal(c->state, GS_OPEN);
	g_send_str(e, c, "late data");
	expect_read(fd, "late data");
	g_ctl(e, c, OP_SHUTDOWN, 2);
	expect_eof(fd);
	g_until(e, pred_reset, c);
	hang_up(e, fd, lfd);
}

/* The guest stops receiving: the socket is no longer read, and the guest
 * can still send. */
static void test_guest_shutdown_rcv(void **state)
{
	struct env *e = *state;
	struct gconn *c;
	int lfd, fd;

	c = start_open(e, &lfd, &fd);
	g_ctl(e, c, OP_SHUTDOWN, 1);
	g_send_str(e, c, "still");
	expect_read(fd, "still");
	/* The guest closes its half too: the device resets, the socket ends. */
	g_ctl(e, c, OP_SHUTDOWN, 2);
	g_until(e, pred_reset, c);
	expect_eof(fd);
	hang_up(e, fd, lfd);
}

/* Abrupt ends: the guest's RST closes the socket; a host that closes and
 * stops reading makes the guest's next bytes end the connection. */
static void test_resets(void **state)
{
	struct env *e = *state;
	struct gconn *c;
	int lfd, fd;

	c = start_open(e, &lfd, &fd);
	g_send_str(e, c, "half a reque");
	g_ctl(e, c, OP_RST, 0);
	c->state = GS_FREE;
	expect_read(fd, "half a reque");
	expect_eof(fd);
	close(fd);
	g_until(e, pred_idle, NULL);
	c = open_to_host(e, lfd, 1235, &fd);
	close(fd);
	g_until(e, pred_shut, c);
	assert_int_equal(c->state, GS_OPEN);
	g_send_str(e, c, "anyone there?");
	g_until(e, pred_reset, c);
	assert_int_equal(c->peer_shut, 3);
	g_until(e, pred_idle, NULL);
	close(lfd);
}

/* --- backpressure -------------------------------------------------------- */

/* The guest sends pattern `seed` until it is out of credit with the
 * forwarder holding a full window (the host socket takes no more) and
 * nothing moves for a while. The forwarder never holds more. (A thread
 * descheduled for that while may still move bytes afterwards, so the
 * callers assert nothing about later moments but the bound.) */
static void g_stall(struct env *e, struct gconn *c, uint8_t seed, uint64_t *off)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		uint64_t held;

		g_pump(e);
		g_send_some(e, c, seed, off, UINT64_MAX);
		held = stats(e).buffered;
		assert_true(held <= VSOCK_CONN_BUF);
		assert_true(now_ms() < end);
		/* Stalled: no credit and none coming. Bytes the op sent straight
		 * to the socket may leave the forwarder holding less than a
		 * window; never more. */
		if (!g_credit(c) && !g_wait_irq(e, 50))
			return;
		if (!g_credit(c))
			g_wait_irq(e, 20);
	}
}

/* Nobody reads the host socket: the guest runs out of credit, and the
 * forwarder holds at most VSOCK_CONN_BUF. Then the reader wakes up and
 * everything arrives. */
static void test_stalled_reader(void **state)
{
	struct env *e = *state;
	const uint64_t total = 4 << 20;
	uint64_t off = 0, got = 0, bad = 0;
	uint64_t end = now_ms() + WAIT_MS;
	static uint8_t buf[65536];
	struct gconn *c;
	int lfd, fd;

	c = start_open(e, &lfd, &fd);
	/* An empty socket: the op sends the bytes itself, nothing is held. */
	g_send_some(e, c, 3, &off, 4096);
	assert_int_equal(stats(e).bytes_direct, 4096);
	assert_int_equal(stats(e).buffered, 0);
	g_stall(e, c, 3, &off);
	assert_true(off < total);
	assert_int_equal(stats(e).bytes_from_guest, off);
	/* The full socket made the op keep the rest. */
	assert_true(stats(e).bytes_direct < off);
	assert_true(stats(e).buffered > 0);
	/* The reader catches up; the guest finishes. */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (got < total) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			bad += pat_check(buf, (size_t)n, 3, got);
			got += (uint64_t)n;
		}
		g_send_some(e, c, 3, &off, total);
		g_pump(e);
		assert_true(stats(e).buffered <= VSOCK_CONN_BUF);
		assert_true(now_ms() < end + WAIT_MS);
		if (n <= 0) {
			struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
					      {.fd = e->irq_fd, .events = POLLIN}};

			poll(p, 2, 20);
		}
	}
	assert_int_equal(bad, 0);
	close(fd);
	close(lfd);
}

/* The guest writes and closes at once while the host reader is slow: the
 * device ends the connection at once, but every byte still reaches the
 * host, then EOF. */
static void test_close_flushes(void **state)
{
	struct env *e = *state;
	uint64_t off = 0, got = 0, bad = 0;
	static uint8_t buf[65536];
	struct pollfd p;
	struct gconn *c;
	int lfd, fd;
	ssize_t n;

	c = start_open(e, &lfd, &fd);
	g_stall(e, c, 6, &off);
	g_ctl(e, c, OP_SHUTDOWN, 3);
	g_until(e, pred_reset, c);
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	do {
		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		n = read(fd, buf, sizeof(buf));
		assert_true(n >= 0);
		bad += pat_check(buf, (size_t)n, 6, got);
		got += (uint64_t)n;
	} while (n > 0);
	assert_int_equal(got, off);
	assert_int_equal(bad, 0);
	g_until(e, pred_idle, NULL);
	close(fd);
	close(lfd);
}

/* The guest does not read: the host socket is no longer read once the
 * device's queue is full, and the forwarder keeps at most one read. */
static void test_stalled_guest(void **state)
{
	struct env *e = *state;
	static uint8_t buf[65536];
	struct gconn *c;
	uint64_t sent = 0;
	int lfd, fd;

	c = start_open(e, &lfd, &fd);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* The guest never pumps: it posted QSIZE buffers and that is all. */
	for (uint64_t end = now_ms() + WAIT_MS; now_ms() < end;) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			break;
		pat_fill(buf, sizeof(buf), 4, sent);
		n = write(fd, buf, sizeof(buf));
		if (n > 0)
			sent += (uint64_t)n;
	}
	assert_true(sent > 0);
	assert_true(stats(e).buffered <= VSOCK_MAX_PAYLOAD);
	assert_true(stats(e).bytes_to_guest <= VSOCK_CONN_BUF + (uint64_t)G_BUF);
	/* Now it reads everything. */
	c->seed = 4;
	g_wait_bytes(e, c, sent);
	assert_int_equal(c->bad, 0);
	close(fd);
	close(lfd);
}

/* The forwarder's own memory follows what it holds, whatever the guest
 * does. Guest -> socket: a guest that fills its window while the host reads
 * nothing leaves a ring no larger than twice what it holds. Socket -> guest:
 * guests that give no credit leave the bytes read from their host sockets
 * within FWD_OUT_POOL plus FWD_OUT_SHARE per connection, not a whole read
 * each. */
static void test_forwarder_memory_follows_what_it_holds(void **state)
{
	struct env *e = *state;
	static uint8_t buf[65536];
	struct gconn *c[MAXC];
	int lfd, fd[MAXC];
	uint64_t off = 0, before;
	struct fwd_stats st;

	lfd = start_to_unix(e, "host.sock");
	for (unsigned i = 0; i < MAXC; i++)
		c[i] = open_to_host(e, lfd, 2000 + i, &fd[i]);
	g_stall(e, c[0], 5, &off);
	st = stats(e);
	assert_true(st.buffered > 0);
	if (st.mem > 2 * st.buffered + 4096)
		fail_msg("guest -> socket: %llu bytes allocated to hold %llu",
			 (unsigned long long)st.mem, (unsigned long long)st.buffered);
	before = st.mem;
	/* Every guest now closes its window; every host writes a full read. */
	bus_lock(e);
	for (unsigned i = 0; i < MAXC; i++)
		vd_tx(&e->d, OP_CREDIT_UPDATE, c[i]->gport, c[i]->hport, NULL, 0, 0, 0,
		      c[i]->fwd_cnt);
	bus_unlock(e);
	for (unsigned i = 0; i < MAXC; i++) {
		fcntl(fd[i], F_SETFL, O_NONBLOCK);
		assert_true(write(fd[i], buf, sizeof(buf)) > 0);
	}
	/* The forwarder reads what it may; then nothing moves. */
	for (uint64_t end = now_ms() + 1000; now_ms() < end;)
		g_wait_irq(e, 50);
	st = stats(e);
	if (st.mem - before > FWD_OUT_POOL + (uint64_t)MAXC * FWD_OUT_SHARE)
		fail_msg("socket -> guest: %llu bytes allocated for %u guests without credit",
			 (unsigned long long)(st.mem - before), MAXC);
	for (unsigned i = 0; i < MAXC; i++)
		close(fd[i]);
	close(lfd);
}

/* --- many at once -------------------------------------------------------- */

#define NCONC	   16
#define CONC_BYTES (128 * 1024)

struct echo {
	int lfd;
	unsigned done;
	pthread_t th;
};

/* Echoes NCONC clients, each until its EOF, then closes it. */
static void *echo_main(void *arg)
{
	struct echo *s = arg;
	struct pollfd p[NCONC + 1];
	uint8_t buf[8192];
	unsigned n = 0;

	p[0] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
	while (s->done < NCONC) {
		if (poll(p, n + 1, WAIT_MS) <= 0)
			return NULL;
		if ((p[0].revents & POLLIN) && n < NCONC) {
			p[n + 1] =
			    (struct pollfd){.fd = accept(s->lfd, NULL, NULL), .events = POLLIN};
			n++;
		}
		for (unsigned i = 1; i <= n; i++) {
			ssize_t k;

			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			k = read(p[i].fd, buf, sizeof(buf));
			if (k > 0 && write(p[i].fd, buf, (size_t)k) == k)
				continue;
			close(p[i].fd);
			p[i].fd = -1;
			s->done++;
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct env *e = *state;
	struct gconn *c[NCONC];
	uint64_t off[NCONC] = {0};
	uint64_t end = now_ms() + WAIT_MS;
	struct echo s;
	bool all;

	s.lfd = start_to_unix(e, "echo.sock");
	s.done = 0;
	assert_int_equal(pthread_create(&s.th, NULL, echo_main, &s), 0);
	for (unsigned i = 0; i < NCONC; i++) {
		c[i] = g_connect(e, 2000 + i, 5000);
		assert_int_equal(c[i]->state, GS_OPEN);
		c[i]->seed = (uint8_t)(10 + i);
	}
	do {
		all = true;
		for (unsigned i = 0; i < NCONC; i++) {
			g_send_some(e, c[i], (uint8_t)(10 + i), &off[i], CONC_BYTES);
			all = all && c[i]->got == CONC_BYTES;
		}
		g_pump(e);
		assert_true(now_ms() < end);
		assert_true(stats(e).buffered <= NCONC * 2ull * VSOCK_CONN_BUF);
		if (!all)
			g_wait_irq(e, 5);
	} while (!all);
	for (unsigned i = 0; i < NCONC; i++) {
		assert_int_equal(c[i]->bad, 0);
		g_ctl(e, c[i], OP_SHUTDOWN, 2);
	}
	for (unsigned i = 0; i < NCONC; i++)
		g_until(e, pred_reset, c[i]);
	pthread_join(s.th, NULL);
	assert_int_equal(s.done, NCONC);
	g_until(e, pred_idle, NULL);
	assert_int_equal(stats(e).conns_total, NCONC);
	close(s.lfd);
}

/* --- caps and file descriptors ------------------------------------------- */

/* ping one way, pong the other, over an open pair. */
static void ping_pong(struct env *e, struct gconn *c, int fd)
{
	c->got = 0;
	assert_int_equal(write(fd, "ping", 4), 4);
	g_wait_bytes(e, c, 4);
	assert_memory_equal(c->keep, "ping", 4);
	g_send_str(e, c, "pong!");
	expect_read(fd, "pong!");
}

/* Each forwarded connection holds a descriptor: at the rule's cap the next
 * client is accepted and closed at once, and the first ones work on. */
static void test_into_cap_closes_the_next_client(void **state)
{
	struct env *e = *state;
	struct gconn *c[2];
	char path[128];
	int fd[3];

	e->cap_rule = 2;
	start_into_unix(e, path, sizeof(path));
	for (int i = 0; i < 2; i++) {
		fd[i] = unix_dial(path);
		c[i] = g_accept(e, 80);
	}
	fd[2] = unix_dial(path);
	expect_eof(fd[2]);
	for (int i = 0; i < 2; i++)
		ping_pong(e, c[i], fd[i]);
	assert_int_equal(stats(e).conns_total, 2);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

/* To the host, the guest's connection over the cap gets RST. */
static void test_to_host_cap_resets_the_next_connection(void **state)
{
	struct env *e = *state;
	struct gconn *c;
	int lfd, fd;

	e->cap_rule = 1;
	lfd = start_to_unix(e, "host.sock");
	c = open_to_host(e, lfd, 1234, &fd);
	assert_int_equal(c->state, GS_OPEN);
	assert_int_equal(g_connect(e, 1235, 5000)->state, GS_RESET);
	c->seed = 0;
	assert_int_equal(write(fd, "\x00", 1), 1);
	g_wait_bytes(e, c, 1);
	close(fd);
	close(lfd);
}

/* The enclave's cap holds across rules. */
static void test_enclave_cap_holds_across_rules(void **state)
{
	struct env *e = *state;
	char a[128], b[128], sa[200], sb[200];
	const char *into[2] = {sa, sb};
	int fa, fb;

	e->cap_total = 1;
	path_in(e, a, sizeof(a), "a.sock");
	path_in(e, b, sizeof(b), "b.sock");
	snprintf(sa, sizeof(sa), "unix:%s=80", a);
	snprintf(sb, sizeof(sb), "unix:%s=81", b);
	start(e, NULL, 0, into, 2);
	fa = unix_dial(a);
	ping_pong(e, g_accept(e, 80), fa);
	fb = unix_dial(b);
	expect_eof(fb);
	close(fa);
	close(fb);
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Out of descriptors (this process's limit lowered under the lowest free
 * one), a listener rests instead of spinning, says so once, and serves
 * again once descriptors are free, though no forwarded connection ended. */
static void test_listener_emfile_rests_and_recovers(void **state)
{
	struct env *e = *state;
	struct rlimit old, low;
	struct sockaddr_un un;
	char path[128];
	int fd[3], probe;
	double cpu;

	start_into_unix(e, path, sizeof(path));
	unix_addr(&un, path);
	for (int i = 0; i < 3; i++)
		fd[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	probe = dup(0);
	close(probe);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = (struct rlimit){.rlim_cur = (rlim_t)probe, .rlim_max = old.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(connect(fd[i], (struct sockaddr *)&un, sizeof(un)), 0);
	cpu = cpu_s();
	nanosleep(&(struct timespec){1, 500000000}, NULL);
	cpu = cpu_s() - cpu;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	if (cpu > 0.3)
		fail_msg("%.2f s of CPU in 1.5 s out of descriptors: the listener spins", cpu);
	for (int i = 0; i < 3; i++)
		ping_pong(e, g_accept(e, 80), fd[i]);
	assert_int_equal(e->notes, 1);
	assert_non_null(strstr(e->note, "out of file descriptors"));
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

/* --- the end ------------------------------------------------------------- */

static void test_destroy_open(void **state)
{
	struct env *e = *state;
	char path[128], ipath[128], spec[200], ispec[200];
	const char *to[1] = {spec}, *into[1] = {ispec};
	static uint8_t junk[300000];
	uint64_t off = 0;
	struct gconn *c;
	int lfd, fd, cfd, i;

	path_in(e, path, sizeof(path), "host.sock");
	path_in(e, ipath, sizeof(ipath), "into.sock");
	lfd = unix_listen(path);
	snprintf(spec, sizeof(spec), "5000=unix:%s", path);
	snprintf(ispec, sizeof(ispec), "unix:%s=80", ipath);
	start(e, to, 1, into, 1);
	/* One to the host with bytes held both ways, one into the enclave,
	 * one still waiting for the guest's answer. */
	c = open_to_host(e, lfd, 1234, &fd);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (i = 0; i < 100 && g_credit(c); i++) {
		g_send_some(e, c, 5, &off, 1 << 30);
		g_wait_irq(e, 10);
		g_pump(e);
	}
	assert_true(write(fd, junk, sizeof(junk)) > 0);
	cfd = unix_dial(ipath);
	g_accept(e, 80);
	assert_int_equal(write(cfd, "x", 1), 1);
	close(unix_dial(ipath));
	g_wait_irq(e, 100);
	stop(e);
	close(fd);
	close(cfd);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_to_host_unix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_to_host_tcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unconfigured_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_to_host_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_into_unix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_into_tcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_into_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guest_shutdown_rcv, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_reader, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forwarder_memory_follows_what_it_holds, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_destroy_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_into_cap_closes_the_next_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_to_host_cap_resets_the_next_connection, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_enclave_cap_holds_across_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listener_emfile_rests_and_recovers, setup,
					    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
