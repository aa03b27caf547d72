/*
 * xfer - moves a deterministic byte stream over vsock, TCP or Unix stream
 * sockets and checks it end to end with CRC-32. The same static binary runs
 * inside an enclave (`xfer serve`) and on the parent or in the shell VM (the
 * client modes), so transfer tests and benchmarks need nothing but busybox.
 *
 *   xfer serve [--tcp PORTBASE | --unix DIR]
 *       vsock ports 5000 echo, 5001 sink, 5002 source (PORTBASE+0/1/2 on
 *       127.0.0.1, or DIR/echo, DIR/sink, DIR/source); "xfer: serving"
 *   xfer send ADDR BYTES            pattern to a sink, compare its reply
 *   xfer recv ADDR BYTES [--stall S]  ask a source for BYTES, check them
 *   xfer echo ADDR BYTES CONNS      CONNS concurrent round trips
 *   xfer sink-listen ADDR [--count N]  a sink on ADDR; "xfer: listening"
 *   xfer now                        CLOCK_REALTIME in nanoseconds
 *   xfer heartbeat ADDR             Nitro's boot heartbeat: 0xB7 out, 0xB7 back
 *   xfer say-listen ADDR TEXT [--count N]  each client gets "TEXT <n>\n",
 *       then the connection closes (a console that comes and goes)
 *   xfer nsm-attest ADDR NONCEHEX   inside an enclave: an attestation document
 *       from /dev/nsm (the raw ioctl, as libnsm does) sent to ADDR
 *   xfer save-listen ADDR FILE      the first client's bytes into FILE
 *
 * ADDR is vsock:CID:PORT, tcp:HOST:PORT (numeric or localhost) or unix:PATH.
 * BYTES takes K/M/G (binary). A sink answers "<bytes> <crc32 as 8 hex>\n";
 * a source reads "<bytes>\n". Results go to stdout ("send ok BYTES CRC X MB/s");
 * every error is one line on stderr ("send FAIL why", "xfer: why"), status 1.
 * --timeout S (default 120; none for serve and an endless sink-listen) turns
 * a hang into a failure.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <linux/vm_sockets.h>

#define CHUNK	     (64 * 1024)
#define WRITE_CHUNKS 4
#define READ_BUF     (256 * 1024)
#define MAX_CONNS    256
#define ERR_LEN	     200

enum { ECHO, SINK, SOURCE, NSERVICES };
static const char *const service_name[NSERVICES] = {"echo", "sink", "source"};

/* "send FAIL " in a client mode, "xfer: " otherwise: every error reads the same. */
static char err_prefix[32] = "xfer: ";
static unsigned timeout_s = 120;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	char msg[ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s%s\n", err_prefix, msg);
	exit(1);
}

static void on_alarm(int sig)
{
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "%stimed out after %u s\n", err_prefix, timeout_s);

	(void)sig;
	if (write(2, msg, (size_t)n) < 0)
		_exit(1);
	_exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- the pattern ------------------------------------------------------- */

/*
 * A 64 KiB xorshift block per seed, repeated, with the chunk's number mixed
 * into its first 8 bytes so that a lost, repeated or reordered chunk changes
 * the CRC. Generating is a memcpy, cheap enough not to be what a benchmark
 * measures; CRC-32 being affine, the stream's CRC follows from the block's
 * without hashing every byte again.
 */
struct pattern {
	uint8_t block[CHUNK], scratch[CHUNK];
	uint32_t block_crc, zero_crc, tail_zero_crc;
	uLong op_chunk, op_tail;
};

static const uint8_t zeros[CHUNK];

static void pattern_init(struct pattern *p, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ 0xD1B54A32D192ED03ull;

	for (size_t i = 0; i < CHUNK; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p->block + i, &x, 8);
	}
	p->block_crc = crc32(0, p->block, CHUNK);
	p->zero_crc = crc32(0, zeros, CHUNK);
	p->tail_zero_crc = crc32(0, zeros, CHUNK - 8);
	p->op_chunk = crc32_combine_gen(CHUNK);
	p->op_tail = crc32_combine_gen(CHUNK - 8);
}

static uint64_t chunk_stamp(uint64_t c)
{
	return (c + 1) * 0xBF58476D1CE4E5B9ull;
}

/* Chunk number c of the stream, CHUNK bytes. */
static void pattern_chunk(const struct pattern *p, uint64_t c, uint8_t *out)
{
	uint64_t head, stamp = chunk_stamp(c);

	memcpy(out, p->block, CHUNK);
	memcpy(&head, out, 8);
	head ^= stamp;
	memcpy(out, &head, 8);
}

/* crc(block ^ stamp) = crc(block) ^ crc(stamp, zeros) ^ crc(zeros), equal lengths. */
static uint32_t chunk_crc(const struct pattern *p, uint64_t c)
{
	uint64_t stamp = chunk_stamp(c);
	uLong d =
	    crc32_combine_op(crc32(0, (const Bytef *)&stamp, 8), p->tail_zero_crc, p->op_tail);

	return p->block_crc ^ (uint32_t)d ^ p->zero_crc;
}

/* The CRC-32 of the stream's first `bytes` bytes. */
static uint32_t pattern_crc(struct pattern *p, uint64_t bytes)
{
	uint64_t full = bytes / CHUNK, c;
	uLong crc = 0;

	for (c = 0; c < full; c++)
		crc = crc32_combine_op(crc, chunk_crc(p, c), p->op_chunk);
	if (bytes % CHUNK) {
		pattern_chunk(p, c, p->scratch);
		crc = crc32(crc, p->scratch, (uInt)(bytes % CHUNK));
	}
	return (uint32_t)crc;
}

/* --- socket plumbing --------------------------------------------------- */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	const char *text;
};

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static void addr_vsock(struct addr *a, uint32_t cid, uint32_t port)
{
	struct sockaddr_vm *vm = (struct sockaddr_vm *)&a->ss;

	memset(a, 0, sizeof(*a));
	vm->svm_family = AF_VSOCK;
	vm->svm_cid = cid;
	vm->svm_port = port;
	a->len = sizeof(*vm);
}

static int addr_tcp(struct addr *a, const char *host, uint32_t port)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;

	/* Numeric only: a static binary cannot use glibc's NSS. */
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	memset(a, 0, sizeof(*a));
	if (port > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		a->len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		a->len = sizeof(*in6);
		return 0;
	}
	return -1;
}

static int addr_unix(struct addr *a, const char *path)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;

	memset(a, 0, sizeof(*a));
	if (!*path || strlen(path) >= sizeof(un->sun_path))
		return -1;
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, path);
	a->len = sizeof(*un);
	return 0;
}

/* vsock:CID:PORT, tcp:HOST:PORT (the last colon splits off the port), unix:PATH. */
static void parse_addr(const char *text, struct addr *a)
{
	char buf[256];
	char *sep;
	uint32_t cid, port;
	int bad = 1;

	if (strlen(text) >= sizeof(buf))
		die("address too long: %s", text);
	strcpy(buf, text);
	if (strncmp(buf, "unix:", 5) == 0) {
		bad = addr_unix(a, buf + 5);
	} else if (strncmp(buf, "vsock:", 6) == 0 || strncmp(buf, "tcp:", 4) == 0) {
		char *rest = strchr(buf, ':') + 1;

		sep = strrchr(rest, ':');
		if (sep && sep != rest) {
			*sep = 0;
			if (parse_u32(sep + 1, &port) == 0) {
				if (buf[0] == 'v' && parse_u32(rest, &cid) == 0) {
					addr_vsock(a, cid, port);
					bad = 0;
				} else if (buf[0] == 't') {
					bad = addr_tcp(a, rest, port);
				}
			}
		}
	}
	if (bad)
		die("bad address '%s' (want vsock:CID:PORT, tcp:HOST:PORT or unix:PATH)", text);
	a->text = text;
}

static int connect_to(const struct addr *a, char *err)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, ERR_LEN, "socket for %s: %s", a->text, strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		snprintf(err, ERR_LEN, "connect %s: %s", a->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int listen_on(const struct addr *a)
{
	int one = 1, fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket for %s: %s", a->text, strerror(errno));
	/* A socket file left by an earlier run would make bind fail. */
	if (a->ss.ss_family == AF_UNIX)
		unlink(((const struct sockaddr_un *)&a->ss)->sun_path);
	if (a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		die("bind %s: %s", a->text, strerror(errno));
	if (listen(fd, 64) < 0)
		die("listen %s: %s", a->text, strerror(errno));
	return fd;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t read_some(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Reads one short line (without its "\n"); a line cut by EOF counts too. */
static int read_line(int fd, char *line, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		ssize_t r = read_some(fd, line + n, 1);

		if (r < 0)
			return -1;
		if (r == 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	return (int)n;
}

/* --- streams ----------------------------------------------------------- */

/* Sends the first `bytes` bytes of the stream of pattern p. */
static int send_pattern(int fd, const struct pattern *p, uint64_t bytes)
{
	uint8_t *buf = malloc(CHUNK * WRITE_CHUNKS);
	uint64_t c = 0, left = bytes;
	int ret = 0;

	if (!buf)
		return -1;
	while (left > 0 && ret == 0) {
		size_t n = 0;

		for (int i = 0; i < WRITE_CHUNKS && n < left; i++, c++, n += CHUNK)
			pattern_chunk(p, c, buf + n);
		if (n > left)
			n = (size_t)left;
		ret = write_all(fd, buf, n);
		left -= n;
	}
	free(buf);
	return ret;
}

/* Reads to EOF; the byte count and their CRC-32. */
static int drain(int fd, uint64_t *bytes, uint32_t *crc)
{
	uint8_t *buf = malloc(READ_BUF);
	uLong c = 0;
	uint64_t n = 0;
	ssize_t r = -1;

	if (buf) {
		while ((r = read_some(fd, buf, READ_BUF)) > 0) {
			c = crc32(c, buf, (uInt)r);
			n += (uint64_t)r;
		}
	}
	free(buf);
	*bytes = n;
	*crc = (uint32_t)c;
	return r < 0 ? -1 : 0;
}

static int parse_bytes(const char *s, uint64_t *out)
{
	static const char units[] = "KMG";
	const char *unit;
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	unit = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
	if (unit) {
		shift = 10 * (int)(unit - units + 1);
		end++;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static double mbps(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes / 1e6 / secs : 0.0;
}

/* --- serve ------------------------------------------------------------- */

struct service_conn {
	int fd, kind;
};

static void log_conn(int kind, const char *what)
{
	fprintf(stderr, "xfer: %s: %s: %s\n", service_name[kind], what, strerror(errno));
}

static void serve_echo(int fd)
{
	uint8_t *buf = malloc(READ_BUF);
	ssize_t r = 0;

	while (buf && (r = read_some(fd, buf, READ_BUF)) > 0) {
		if (write_all(fd, buf, (size_t)r) < 0) {
			log_conn(ECHO, "write");
			break;
		}
	}
	if (r < 0)
		log_conn(ECHO, "read");
	free(buf);
}

static void serve_sink(int fd)
{
	char reply[48];
	uint64_t bytes;
	uint32_t crc;
	int n;

	if (drain(fd, &bytes, &crc) < 0) {
		log_conn(SINK, "read");
		return;
	}
	n = snprintf(reply, sizeof(reply), "%" PRIu64 " %08x\n", bytes, crc);
	if (write_all(fd, reply, (size_t)n) < 0)
		log_conn(SINK, "write");
}

static void serve_source(int fd)
{
	struct pattern *p;
	char line[32];
	uint64_t bytes;

	if (read_line(fd, line, sizeof(line)) < 0) {
		log_conn(SOURCE, "read");
		return;
	}
	if (parse_bytes(line, &bytes) < 0) {
		fprintf(stderr, "xfer: source: bad request '%s'\n", line);
		return;
	}
	p = malloc(sizeof(*p));
	if (!p)
		return;
	pattern_init(p, 0);
	if (send_pattern(fd, p, bytes) < 0)
		log_conn(SOURCE, "write");
	free(p);
}

static void *service_thread(void *arg)
{
	struct service_conn sc = *(struct service_conn *)arg;

	free(arg);
	if (sc.kind == ECHO)
		serve_echo(sc.fd);
	else if (sc.kind == SINK)
		serve_sink(sc.fd);
	else
		serve_source(sc.fd);
	close(sc.fd);
	return NULL;
}

static void spawn_service(int fd, int kind)
{
	struct service_conn *sc = malloc(sizeof(*sc));
	pthread_attr_t attr;
	pthread_t t;

	if (!sc) {
		close(fd);
		return;
	}
	sc->fd = fd;
	sc->kind = kind;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, service_thread, sc) != 0) {
		fprintf(stderr, "xfer: %s: cannot start a thread\n", service_name[kind]);
		close(fd);
		free(sc);
	}
	pthread_attr_destroy(&attr);
}

static void service_addr(struct addr *a, int kind, long tcp_base, const char *dir)
{
	static char text[NSERVICES][160];
	char buf[160];

	if (dir) {
		snprintf(buf, sizeof(buf), "unix:%s/%s", dir, service_name[kind]);
	} else if (tcp_base >= 0) {
		snprintf(buf, sizeof(buf), "tcp:127.0.0.1:%ld", tcp_base + kind);
	} else {
		snprintf(buf, sizeof(buf), "vsock:%u:%d", VMADDR_CID_ANY, 5000 + kind);
	}
	strcpy(text[kind], buf);
	parse_addr(text[kind], a);
}

static int cmd_serve(long tcp_base, const char *dir)
{
	struct pollfd pfd[NSERVICES];
	struct addr a;

	for (int k = 0; k < NSERVICES; k++) {
		service_addr(&a, k, tcp_base, dir);
		pfd[k].fd = listen_on(&a);
		pfd[k].events = POLLIN;
	}
	printf("xfer: serving\n");
	fflush(stdout);
	for (;;) {
		if (poll(pfd, NSERVICES, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		for (int k = 0; k < NSERVICES; k++) {
			if (!(pfd[k].revents & POLLIN))
				continue;
			int fd = accept4(pfd[k].fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0)
				spawn_service(fd, k);
			else if (errno != EINTR && errno != ECONNABORTED)
				log_conn(k, "accept");
		}
	}
}

/* --- client modes ------------------------------------------------------ */

static int cmd_send(const struct addr *a, uint64_t bytes)
{
	static struct pattern p;
	char err[ERR_LEN], line[64];
	uint64_t got_bytes;
	unsigned got_crc;
	uint32_t crc;
	double t0;
	int fd;

	pattern_init(&p, 0);
	crc = pattern_crc(&p, bytes);
	t0 = now_s();
	fd = connect_to(a, err);
	if (fd < 0)
		die("%s", err);
	if (send_pattern(fd, &p, bytes) < 0)
		die("write to %s: %s", a->text, strerror(errno));
	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown %s: %s", a->text, strerror(errno));
	if (read_line(fd, line, sizeof(line)) < 0)
		die("reading the reply from %s: %s", a->text, strerror(errno));
	if (sscanf(line, "%" SCNu64 " %x", &got_bytes, &got_crc) != 2)
		die("bad reply from %s: '%s'", a->text, line);
	if (got_bytes != bytes || got_crc != crc)
		die("sink got %" PRIu64 " bytes crc %08x, sent %" PRIu64 " crc %08x", got_bytes,
		    got_crc, bytes, crc);
	printf("send ok %" PRIu64 " %08x %.1f MB/s\n", bytes, crc, mbps(bytes, now_s() - t0));
	close(fd);
	return 0;
}

static int cmd_recv(const struct addr *a, uint64_t bytes, unsigned stall)
{
	static struct pattern p;
	char err[ERR_LEN], req[32];
	uint64_t got;
	uint32_t crc, want;
	double t0;
	int fd, n;

	pattern_init(&p, 0);
	want = pattern_crc(&p, bytes);
	fd = connect_to(a, err);
	if (fd < 0)
		die("%s", err);
	t0 = now_s();
	n = snprintf(req, sizeof(req), "%" PRIu64 "\n", bytes);
	if (write_all(fd, req, (size_t)n) < 0)
		die("write to %s: %s", a->text, strerror(errno));
	if (stall) {
		/* The source fills every buffer on its way meanwhile. */
		sleep(stall);
		t0 = now_s();
	}
	if (drain(fd, &got, &crc) < 0)
		die("read from %s after %" PRIu64 " bytes: %s", a->text, got, strerror(errno));
	if (got != bytes || crc != want)
		die("got %" PRIu64 " bytes crc %08x, expected %" PRIu64 " crc %08x", got, crc,
		    bytes, want);
	printf("recv ok %" PRIu64 " %08x %.1f MB/s\n", bytes, crc, mbps(bytes, now_s() - t0));
	close(fd);
	return 0;
}

struct echo_conn {
	const struct addr *a;
	uint64_t bytes;
	int index, fd, write_failed;
	struct pattern p;
	char err[ERR_LEN];
};

static void *echo_writer(void *arg)
{
	struct echo_conn *ec = arg;

	if (send_pattern(ec->fd, &ec->p, ec->bytes) < 0 || shutdown(ec->fd, SHUT_WR) < 0)
		ec->write_failed = errno ? errno : EIO;
	return NULL;
}

/* One round trip: a writer thread sends while this one reads the echo back. */
static void *echo_conn_run(void *arg)
{
	struct echo_conn *ec = arg;
	uint64_t got = 0;
	uint32_t crc = 0, want;
	pthread_t w;
	int rerr = 0;

	pattern_init(&ec->p, (uint64_t)ec->index);
	want = pattern_crc(&ec->p, ec->bytes);
	ec->fd = connect_to(ec->a, ec->err);
	if (ec->fd < 0)
		return NULL;
	if (pthread_create(&w, NULL, echo_writer, ec) != 0) {
		snprintf(ec->err, ERR_LEN, "cannot start a thread");
		close(ec->fd);
		return NULL;
	}
	if (drain(ec->fd, &got, &crc) < 0)
		rerr = errno;
	pthread_join(w, NULL);
	close(ec->fd);
	if (ec->write_failed)
		snprintf(ec->err, ERR_LEN, "write: %s", strerror(ec->write_failed));
	else if (rerr)
		snprintf(ec->err, ERR_LEN, "read after %" PRIu64 " bytes: %s", got, strerror(rerr));
	else if (got != ec->bytes || crc != want)
		snprintf(ec->err, ERR_LEN,
			 "got back %" PRIu64 " bytes crc %08x, sent %" PRIu64 " crc %08x", got, crc,
			 ec->bytes, want);
	return NULL;
}

static int cmd_echo(const struct addr *a, uint64_t bytes, uint32_t conns)
{
	struct echo_conn *ec;
	pthread_t *t;

	if (conns < 1 || conns > MAX_CONNS)
		die("CONNS must be 1..%d", MAX_CONNS);
	ec = calloc(conns, sizeof(*ec));
	t = calloc(conns, sizeof(*t));
	if (!ec || !t)
		die("out of memory");
	for (uint32_t i = 0; i < conns; i++) {
		ec[i].a = a;
		ec[i].bytes = bytes;
		ec[i].index = (int)i;
		if (pthread_create(&t[i], NULL, echo_conn_run, &ec[i]) != 0)
			die("cannot start a thread");
	}
	for (uint32_t i = 0; i < conns; i++)
		pthread_join(t[i], NULL);
	for (uint32_t i = 0; i < conns; i++)
		if (ec[i].err[0])
			die("connection %u: %s", i, ec[i].err);
	printf("echo ok %u x %" PRIu64 "\n", conns, bytes);
	free(ec);
	free(t);
	return 0;
}

static int cmd_sink_listen(const struct addr *a, long count)
{
	int lfd = listen_on(a);

	printf("xfer: listening\n");
	fflush(stdout);
	for (long n = 0; count < 0 || n < count;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept on %s: %s", a->text, strerror(errno));
		}
		serve_sink(fd);
		close(fd);
		n++;
	}
	close(lfd);
	return 0;
}

static int cmd_heartbeat(const struct addr *a)
{
	char err[ERR_LEN];
	uint8_t b = 0xB7;
	int fd = connect_to(a, err);

	if (fd < 0)
		die("%s", err);
	if (write_all(fd, &b, 1) < 0 || read_some(fd, &b, 1) != 1 || b != 0xB7)
		die("heartbeat on %s: no echo", a->text);
	printf("heartbeat ok\n");
	close(fd);
	return 0;
}

static int cmd_say_listen(const struct addr *a, const char *text, long count)
{
	int lfd = listen_on(a);
	char line[256];

	printf("xfer: listening\n");
	fflush(stdout);
	for (long n = 0; count < 0 || n < count;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		int len;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept on %s: %s", a->text, strerror(errno));
		}
		n++;
		len = snprintf(line, sizeof(line), "%s %ld\n", text, n);
		if (write_all(fd, line, (size_t)len) < 0)
			die("write on %s: %s", a->text, strerror(errno));
		close(fd);
	}
	close(lfd);
	return 0;
}

#define NSM_IOCTL_RAW 0xC0200A00u /* _IOWR(0x0A, 0, struct nsm_raw) */

struct nsm_raw {
	uint64_t req_addr, req_len, resp_addr, resp_len;
};

/* {"Attestation": {"user_data": null, "nonce": h'..', "public_key": null}}
 * with a nonce of at most 23 bytes, then the document out of the answer
 * {"Attestation": {"document": h'...'}}. */
static int cmd_nsm_attest(const struct addr *a, const char *hex)
{
	static uint8_t resp[0x3000];
	uint8_t req[128], nonce[23];
	size_t n = strlen(hex) / 2, r = 0, at;
	struct nsm_raw raw;
	char err[ERR_LEN];
	int fd, s;

	if (strlen(hex) % 2 || n > sizeof(nonce))
		die("nsm-attest: the nonce is 1 to 23 bytes of hex");
	for (size_t i = 0; i < n; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &nonce[i]) != 1)
			die("nsm-attest: bad hex");
	memcpy(req + r,
	       "\xa1\x6b"
	       "Attestation"
	       "\xa3\x69"
	       "user_data"
	       "\xf6\x65"
	       "nonce",
	       31);
	r += 31;
	req[r++] = (uint8_t)(0x40 | n);
	memcpy(req + r, nonce, n);
	r += n;
	memcpy(req + r,
	       "\x6a"
	       "public_key"
	       "\xf6",
	       12);
	r += 12;
	fd = open("/dev/nsm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("/dev/nsm: %s", strerror(errno));
	raw = (struct nsm_raw){(uintptr_t)req, r, (uintptr_t)resp, sizeof(resp)};
	if (ioctl(fd, NSM_IOCTL_RAW, &raw) < 0)
		die("NSM_IOCTL_RAW: %s", strerror(errno));
	close(fd);
	/* The document is the byte string after "document": 0x59 + 2 bytes. */
	for (at = 0; at + 11 < raw.resp_len; at++)
		if (memcmp(resp + at,
			   "\x68"
			   "document\x59",
			   10) == 0)
			break;
	if (at + 11 >= raw.resp_len)
		die("nsm-attest: no document in the answer (%u bytes)", (unsigned)raw.resp_len);
	n = (size_t)resp[at + 10] << 8 | resp[at + 11];
	if (at + 12 + n > raw.resp_len)
		die("nsm-attest: the document runs past the answer");
	s = connect_to(a, err);
	if (s < 0)
		die("%s", err);
	if (write_all(s, resp + at + 12, n) < 0)
		die("nsm-attest: write: %s", strerror(errno));
	printf("nsm-attest ok %zu bytes\n", n);
	close(s);
	return 0;
}

static int cmd_save_listen(const struct addr *a, const char *path)
{
	static uint8_t buf[READ_BUF];
	int lfd = listen_on(a), fd, out;
	ssize_t n;

	printf("xfer: listening\n");
	fflush(stdout);
	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
	if (fd < 0)
		die("accept on %s: %s", a->text, strerror(errno));
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		die("%s: %s", path, strerror(errno));
	while ((n = read_some(fd, buf, sizeof(buf))) > 0)
		if (write_all(out, buf, (size_t)n) < 0)
			die("%s: %s", path, strerror(errno));
	close(out);
	close(fd);
	close(lfd);
	return n < 0 ? 1 : 0;
}

static int cmd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	printf("%lld%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
	return 0;
}

/* --- command line ------------------------------------------------------ */

struct opts {
	const char *pos[8];
	int npos;
	long timeout, stall, count, tcp_base;
	const char *unix_dir;
};

static long opt_number(const char *name, const char *v)
{
	uint32_t n;

	if (!v || parse_u32(v, &n) < 0)
		die("%s wants a number", name);
	return n;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout = o->stall = o->count = o->tcp_base = -1;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (strcmp(s, "--timeout") == 0)
			o->timeout = opt_number(s, argv[++i]);
		else if (strcmp(s, "--stall") == 0)
			o->stall = opt_number(s, argv[++i]);
		else if (strcmp(s, "--count") == 0)
			o->count = opt_number(s, argv[++i]);
		else if (strcmp(s, "--tcp") == 0)
			o->tcp_base = opt_number(s, argv[++i]);
		else if (strcmp(s, "--unix") == 0 && argv[i + 1])
			o->unix_dir = argv[++i];
		else if (s[0] == '-' && s[1] == '-')
			die("unknown option %s", s);
		else if (o->npos < 8)
			o->pos[o->npos++] = s;
		else
			die("too many arguments");
	}
}

static void usage(void)
{
	die("usage: xfer [--timeout S] serve [--tcp PORTBASE | --unix DIR] | send ADDR BYTES | "
	    "recv ADDR BYTES [--stall S] | echo ADDR BYTES CONNS | sink-listen ADDR [--count N] "
	    "| now | heartbeat ADDR | say-listen ADDR TEXT [--count N] | nsm-attest ADDR NONCEHEX "
	    "| save-listen ADDR FILE");
}

static void want_args(const struct opts *o, int n)
{
	if (o->npos != n)
		usage();
}

static uint64_t bytes_arg(const char *s)
{
	uint64_t b;

	if (parse_bytes(s, &b) < 0)
		die("bad byte count '%s' (a number, optionally with K, M or G)", s);
	return b;
}

/* Client modes and a counted sink end by themselves: a hang there is a failure. */
static void arm_timeout(const struct opts *o, int endless)
{
	if (o->timeout >= 0)
		timeout_s = (unsigned)o->timeout;
	else if (endless)
		timeout_s = 0;
	signal(SIGALRM, on_alarm);
	alarm(timeout_s);
}

int main(int argc, char **argv)
{
	const char *mode;
	struct opts o;
	struct addr a;

	/* A peer that goes away shows as EPIPE on write, not as a silent death. */
	signal(SIGPIPE, SIG_IGN);
	parse_opts(argc, argv, &o);
	if (o.npos < 1)
		usage();
	mode = o.pos[0];
	if (strcmp(mode, "send") == 0 || strcmp(mode, "recv") == 0 || strcmp(mode, "echo") == 0)
		snprintf(err_prefix, sizeof(err_prefix), "%s FAIL ", mode);
	if (strcmp(mode, "now") == 0)
		return cmd_now();
	if (strcmp(mode, "serve") == 0) {
		want_args(&o, 1);
		arm_timeout(&o, 1);
		return cmd_serve(o.tcp_base, o.unix_dir);
	}
	if (o.npos < 2)
		usage();
	parse_addr(o.pos[1], &a);
	if (strcmp(mode, "sink-listen") == 0) {
		want_args(&o, 2);
		arm_timeout(&o, o.count < 0);
		return cmd_sink_listen(&a, o.count);
	}
	if (strcmp(mode, "save-listen") == 0) {
		want_args(&o, 3);
		arm_timeout(&o, 1);
		return cmd_save_listen(&a, o.pos[2]);
	}
	if (strcmp(mode, "nsm-attest") == 0) {
		want_args(&o, 3);
		arm_timeout(&o, 0);
		return cmd_nsm_attest(&a, o.pos[2]);
	}
	if (strcmp(mode, "say-listen") == 0) {
		want_args(&o, 3);
		arm_timeout(&o, o.count < 0);
		return cmd_say_listen(&a, o.pos[2], o.count);
	}
	arm_timeout(&o, 0);
	if (strcmp(mode, "heartbeat") == 0 && o.npos == 2)
		return cmd_heartbeat(&a);
	if (strcmp(mode, "send") == 0 && o.npos == 3)
		return cmd_send(&a, bytes_arg(o.pos[2]));
	if (strcmp(mode, "recv") == 0 && o.npos == 3)
		return cmd_recv(&a, bytes_arg(o.pos[2]), o.stall > 0 ? (unsigned)o.stall : 0);
	if (strcmp(mode, "echo") == 0 && o.npos == 4)
		return cmd_echo(&a, bytes_arg(o.pos[2]), (uint32_t)opt_number("CONNS", o.pos[3]));
	usage();
}
