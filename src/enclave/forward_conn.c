/* forward_conn.c: the forwarder's connections: the table, and servicing
 * one connection, which is idempotent and never blocks, so a spurious or
 * stale wake-up costs nothing.
 *
 * A connection's buffers, each allocated only while it holds bytes:
 *   in   guest -> socket, a ring of VSOCK_CONN_BUF. The device never lets
 *        the guest have more than that unconsumed, and we credit only bytes
 *        the socket took, so it cannot overflow unless the device is wrong.
 *   out  socket -> guest, what pvsock_send did not take of one read
 *        (at most VSOCK_MAX_PAYLOAD); the socket is not read again until
 *        it is gone. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "enclave/forward_int.h"

#define READ_BUDGET 16 /* socket reads per connection per service */

/* --- the table --------------------------------------------------------- */

static unsigned fwd_hash(uint64_t id)
{
	return (unsigned)((id * 0x9e3779b97f4a7c15ull) >> 54) % FWD_HASH_SIZE;
}

struct fwd_conn *fwd_conn_find(struct forwarder *f, uint64_t id)
{
	struct fwd_conn *c = f->hash[fwd_hash(id)];

	while (c && c->id != id)
		c = c->hnext;
	return c;
}

void fwd_conn_add(struct forwarder *f, struct fwd_conn *c)
{
	unsigned h = fwd_hash(c->id);

	c->hnext = f->hash[h];
	f->hash[h] = c;
}

void fwd_conn_forget(struct forwarder *f, struct fwd_conn *c)
{
	struct fwd_conn **p = &f->hash[fwd_hash(c->id)];

	while (*p && *p != c)
		p = &(*p)->hnext;
	if (*p)
		*p = c->hnext;
	c->hnext = NULL;
}

struct fwd_conn *fwd_conn_new(struct forwarder *f, struct fwd_entry *e)
{
	struct fwd_conn *c = f->free_list;
	bool dirty;

	if (!c || e->nconns >= f->max_conns || f->st.conns_open >= f->max_total)
		return NULL;
	f->free_list = c->hnext;
	/* A freed connection may still sit on the dirty list; it stays. */
	dirty = c->dirty;
	memset(c, 0, sizeof(*c));
	c->dirty = dirty;
	c->fd = -1;
	c->entry = e;
	e->nconns++;
	f->st.conns_total++;
	f->st.conns_open++;
	return c;
}

void fwd_wake(struct forwarder *f)
{
	uint64_t one = 1;
	ssize_t r;

	if (f->woken || f->busy)
		return;
	f->woken = true;
	/* Non-blocking; EAGAIN means the counter is full: awake anyway. */
	r = write(f->evfd, &one, sizeof(one));
	(void)r;
}

void fwd_conn_touch(struct forwarder *f, struct fwd_conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->dnext = f->dirty;
		f->dirty = c;
	}
	fwd_wake(f);
}

/* Forgets the connection; the device must not name it any more (closed,
 * refused or pvsock_close'd). */
void fwd_conn_release(struct forwarder *f, struct fwd_conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	if (!c->dead)
		fwd_conn_forget(f, c);
	f->st.buffered -= c->in_len + c->out_len;
	f->out_held -= c->out_len;
	f->st.mem -= (c->in ? c->in_cap : 0) + (c->out ? c->out_cap : 0);
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->in_len = c->out_len = 0;
	c->fd = -1;
	c->state = FWD_C_FREE;
	c->entry->nconns--;
	c->hnext = f->free_list;
	f->free_list = c;
	f->st.conns_open--;
	if (f->any_paused)
		fwd_listeners_resume(f);
}

/* Ends a connection the device still knows: the guest gets what is queued
 * and then SHUTDOWN, or RST if it was never established. */
static void conn_abort(struct forwarder *f, struct fwd_conn *c)
{
	if (!c->dead)
		pvsock_close(&f->pv, c->id);
	fwd_conn_release(f, c);
}

static void conn_set_events(struct forwarder *f, struct fwd_conn *c, uint32_t want)
{
	struct epoll_event ev = {.events = want,
				 .data.u64 = FWD_EV_DATA(FWD_TAG_CONN, c - f->conn)};
	int op = !c->events ? EPOLL_CTL_ADD : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;

	if (want == c->events)
		return;
	/* Not polled at all when nothing is wanted: level-triggered HUP would
	 * otherwise spin while we wait for the guest. */
	if (epoll_ctl(f->epfd, op, c->fd, &ev) == 0)
		c->events = want;
}

static uint32_t conn_events(const struct fwd_conn *c)
{
	uint32_t ev = 0;

	if (c->state == FWD_C_CONNECTING)
		return EPOLLOUT;
	if (c->state != FWD_C_OPEN)
		return 0;
	if (c->in_len)
		ev |= EPOLLOUT;
	if (c->dead)
		return ev;
	if (!c->rd_done && !c->sock_eof && !c->out_len)
		ev |= EPOLLIN;
	return ev;
}

/* --- guest -> socket --------------------------------------------------- */

/* The guest -> socket ring holds `need` bytes after this: it grows by
 * doubling from FWD_OUT_SHARE to VSOCK_CONN_BUF, keeping its bytes in order,
 * so a connection costs about what it holds. */
int fwd_conn_in_room(struct forwarder *f, struct fwd_conn *c, uint32_t need)
{
	uint32_t cap = c->in ? c->in_cap : FWD_OUT_SHARE;
	uint8_t *ring;

	if (c->in && need <= c->in_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	ring = malloc(cap);
	if (!ring)
		return -1;
	for (uint32_t i = 0; i < c->in_len; i++)
		ring[i] = c->in[(c->in_head + i) % c->in_cap];
	if (c->in)
		f->st.mem -= c->in_cap;
	free(c->in);
	c->in = ring;
	c->in_cap = cap;
	c->in_head = 0;
	f->st.mem += cap;
	return 0;
}

/* Writes what the socket takes; credits it to the guest. -1 on a socket
 * error. */
static int conn_flush_in(struct forwarder *f, struct fwd_conn *c)
{
	uint32_t done = 0;
	int r = 0;

	while (c->in_len) {
		uint32_t k = c->in_cap - c->in_head;
		ssize_t n;

		if (k > c->in_len)
			k = c->in_len;
		n = send(c->fd, c->in + c->in_head, k, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
			break;
		}
		c->in_head = (c->in_head + (uint32_t)n) % c->in_cap;
		c->in_len -= (uint32_t)n;
		done += (uint32_t)n;
	}
	f->st.buffered -= done;
	if (!c->in_len) {
		f->st.mem -= c->in ? c->in_cap : 0;
		free(c->in);
		c->in = NULL;
		c->in_head = 0;
	}
	if (done && !c->dead)
		pvsock_credit(&f->pv, c->id, done);
	return r;
}

/* --- socket -> guest --------------------------------------------------- */

/* Offers bytes to the device; keeps what it did not take. `writable`
 * may run inside pvsock_send, so dev_full is set before the call. */
static int conn_offer(struct forwarder *f, struct fwd_conn *c, const uint8_t *p, uint32_t len)
{
	size_t took;

	c->dev_full = true;
	took = pvsock_send(&f->pv, c->id, p, len);
	f->st.bytes_to_guest += took;
	if (took == len)
		c->dev_full = false;
	if (p == c->out) {
		c->out_off += (uint32_t)took;
		c->out_len -= (uint32_t)took;
		f->st.buffered -= took;
		f->out_held -= took;
		return 0;
	}
	if (took == len)
		return 0;
	/* Exactly what is left: conn_pump_out does not read again until it
	 * is gone. */
	c->out = malloc(len - took);
	if (!c->out)
		return -1;
	c->out_cap = len - (uint32_t)took;
	f->st.mem += c->out_cap;
	memcpy(c->out, p + took, len - took);
	c->out_off = 0;
	c->out_len = len - (uint32_t)took;
	f->st.buffered += c->out_len;
	f->out_held += c->out_len;
	return 0;
}

static int conn_flush_out(struct forwarder *f, struct fwd_conn *c)
{
	uint32_t left = c->out_len;

	if (!left || c->dev_full)
		return 0;
	/* Slide it down so conn_offer's in-place path sees c->out. */
	memmove(c->out, c->out + c->out_off, left);
	c->out_off = 0;
	if (conn_offer(f, c, c->out, left) < 0)
		return -1;
	if (!c->out_len) {
		f->st.mem -= c->out_cap;
		free(c->out);
		c->out = NULL;
	}
	return 0;
}

/* How much one read from a host socket may take: what the device does not
 * take stays with the forwarder, so beyond a small share per connection
 * only while the forwarder holds little of it in all (FWD_OUT_POOL). */
static size_t conn_read_size(const struct forwarder *f)
{
	size_t room = f->out_held < FWD_OUT_POOL ? FWD_OUT_POOL - f->out_held : 0;

	if (room < FWD_OUT_SHARE)
		room = FWD_OUT_SHARE;
	return room < sizeof(f->scratch) ? room : sizeof(f->scratch);
}

static int conn_pump_out(struct forwarder *f, struct fwd_conn *c)
{
	for (unsigned i = 0; i < READ_BUDGET; i++) {
		ssize_t n;

		if (conn_flush_out(f, c) < 0)
			return -1;
		if (c->out_len || c->rd_done || c->sock_eof)
			return 0;
		n = recv(c->fd, f->scratch, conn_read_size(f), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		if (n == 0) {
			c->sock_eof = true;
			return 0;
		}
		if (conn_offer(f, c, f->scratch, (uint32_t)n) < 0)
			return -1;
	}
	return 0;
}

/* --- a relaying connection ---------------------------------------------- */

/* The guest is gone, but it may have written and closed at once: what it
 * sent still goes out, as the socket takes it, then EOF. */
static void conn_linger(struct forwarder *f, struct fwd_conn *c)
{
	if (conn_flush_in(f, c) == 0 && c->in_len) {
		conn_set_events(f, c, conn_events(c));
		return;
	}
	shutdown(c->fd, SHUT_WR);
	fwd_conn_release(f, c);
}

/* The guest's SHUTDOWN RCV: the device dropped what it had queued for it;
 * so do we, and the socket is not read any more. */
static void conn_stop_reading(struct forwarder *f, struct fwd_conn *c)
{
	shutdown(c->fd, SHUT_RD);
	f->st.buffered -= c->out_len;
	f->out_held -= c->out_len;
	f->st.mem -= c->out ? c->out_cap : 0;
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
	c->dev_full = false;
	c->rd_done = true;
}

static void conn_relay(struct forwarder *f, struct fwd_conn *c)
{
	if (c->dead) {
		conn_linger(f, c);
		return;
	}
	if (c->broken || conn_flush_in(f, c) < 0)
		goto fail;
	if (c->guest_eof && !c->in_len && !c->wr_done) {
		shutdown(c->fd, SHUT_WR);
		c->wr_done = true;
	}
	if (c->guest_norcv && !c->rd_done)
		conn_stop_reading(f, c);
	if (!c->rd_done && conn_pump_out(f, c) < 0)
		goto fail;
	if (c->sock_eof && !c->out_len && !c->rd_done) {
		pvsock_shutdown(&f->pv, c->id, VSOCK_SHUTDOWN_SEND);
		c->rd_done = true;
	}
	if (!c->rd_done || !c->wr_done) {
		conn_set_events(f, c, conn_events(c));
		return;
	}
	/* Both directions are over: the guest is told to close. */
fail:
	conn_abort(f, c);
}

/* --- to the host: connecting ------------------------------------------- */

static void conn_opened(struct forwarder *f, struct fwd_conn *c)
{
	c->state = FWD_C_OPEN;
	if (pvsock_connected(&f->pv, c->id) < 0) {
		conn_abort(f, c);
		return;
	}
	conn_relay(f, c);
}

/* The next address of the rule into `sa`; false when none is left. */
static bool conn_next_addr(struct fwd_conn *c, struct sockaddr_storage *sa, socklen_t *len)
{
	const struct fwd_rule *r = &c->entry->rule;
	bool first = !c->dialled;

	c->dialled = true;
	if (r->is_unix) {
		struct sockaddr_un *un = (struct sockaddr_un *)sa;

		memset(un, 0, sizeof(*un));
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, r->path, strlen(r->path) + 1);
		*len = sizeof(*un);
		return first;
	}
	c->ai = first ? c->entry->ai : c->ai ? c->ai->ai_next : NULL;
	if (!c->ai)
		return false;
	memcpy(sa, c->ai->ai_addr, c->ai->ai_addrlen);
	*len = c->ai->ai_addrlen;
	return true;
}

static void conn_dial(struct forwarder *f, struct fwd_conn *c)
{
	struct sockaddr_storage sa;
	socklen_t len;

	while (conn_next_addr(c, &sa, &len)) {
		if (c->fd >= 0)
			close(c->fd);
		c->events = 0;
		c->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			continue;
		if (connect(c->fd, (struct sockaddr *)&sa, len) == 0) {
			conn_opened(f, c);
			return;
		}
		if (errno == EINPROGRESS) {
			c->state = FWD_C_CONNECTING;
			conn_set_events(f, c, conn_events(c));
			return;
		}
	}
	/* Refused everywhere: the guest gets RST. */
	conn_abort(f, c);
}

static void conn_check_connect(struct forwarder *f, struct fwd_conn *c)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int soerr = 0;
	socklen_t elen = sizeof(soerr);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) == 0 && soerr == 0) {
		if (getpeername(c->fd, (struct sockaddr *)&peer, &len) == 0)
			conn_opened(f, c);
		return; /* still in progress: a wake-up for something else */
	}
	conn_dial(f, c);
}

void fwd_conn_service(struct forwarder *f, struct fwd_conn *c)
{
	if (c->state == FWD_C_FREE)
		return;
	if (c->dead && c->state != FWD_C_OPEN) {
		fwd_conn_release(f, c);
		return;
	}
	switch (c->state) {
	case FWD_C_DIAL:
		conn_dial(f, c);
		break;
	case FWD_C_CONNECTING:
		conn_check_connect(f, c);
		break;
	case FWD_C_OPEN:
		conn_relay(f, c);
		break;
	default: /* FWD_C_OFFERED: waiting for the guest */
		break;
	}
}
