/* forward_loop.c: the forwarder's thread and the transport's ops (vsock_host_ops).
 *
 * Ops run under the pvsock's lock and never block: they record what happened,
 * put the connection on the dirty list and wake the thread through an
 * eventfd. The one exception to "no I/O" is guest data for a socket with
 * nothing queued, which a non-blocking send passes on at once. The thread
 * waits in epoll without the lock, then takes it and services what epoll
 * reported and what is dirty. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "enclave/forward_int.h"

#define EV_BATCH     64
#define ACCEPT_BATCH 64

/* --- into the enclave: accepting ---------------------------------------- */

static void listener_set(struct forwarder *f, size_t i, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = FWD_EV_DATA(FWD_TAG_LISTENER, i)};

	if (epoll_ctl(f->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, f->ent[i].lfd, &ev) == 0)
		f->ent[i].paused = !on;
}

static uint64_t fwd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Level-triggered epoll would wake at once for a listener whose accept
 * keeps failing, so it rests: until a connection ends (which frees a
 * descriptor) or FWD_LISTEN_REST_MS pass, whichever is first. Said once. */
static void listener_rest(struct forwarder *f, size_t i, int e)
{
	struct fwd_entry *ent = &f->ent[i];
	char line[700];

	listener_set(f, i, false);
	f->any_paused = true;
	f->rest_until = fwd_now_ms() + FWD_LISTEN_REST_MS;
	if (ent->rest_said || !f->note)
		return;
	ent->rest_said = true;
	snprintf(line, sizeof(line),
		 "%s '%s': out of file descriptors or memory (%s); not accepting for %u ms at "
		 "a time until some are free (said once)",
		 fwd_rule_option(ent->rule.dir), ent->rule.text, strerror(e), FWD_LISTEN_REST_MS);
	f->note(f->note_ctx, line);
}

/* The epoll timeout: until the resting listeners' time is up. */
static int fwd_wait_ms(const struct forwarder *f)
{
	uint64_t now;

	if (!f->any_paused)
		return -1;
	now = fwd_now_ms();
	return f->rest_until <= now ? 0 : (int)(f->rest_until - now);
}

void fwd_listeners_resume(struct forwarder *f)
{
	f->any_paused = false;
	for (size_t i = 0; i < f->n; i++)
		if (f->ent[i].paused)
			listener_set(f, i, true);
}

/* A host port for the new connection: the device refuses a port pair in
 * use, and at most VSOCK_MAX_CONNS are, so this many tries find one. */
static int conn_offer_guest(struct forwarder *f, struct fwd_conn *c)
{
	int r = -EBUSY;

	for (unsigned i = 0; i <= VSOCK_MAX_CONNS && r == -EBUSY; i++) {
		uint32_t port = f->next_port;

		f->next_port = port >= 0xfffffffeu ? FWD_FIRST_PORT : port + 1;
		r = pvsock_connect(&f->pv, c->entry->rule.port, port, &c->id);
	}
	if (r < 0)
		return -1;
	c->state = FWD_C_OFFERED;
	fwd_conn_add(f, c);
	return 0;
}

static void listener_accept(struct forwarder *f, size_t i)
{
	struct fwd_entry *e = &f->ent[i];

	for (unsigned k = 0; k < ACCEPT_BATCH; k++) {
		int fd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct fwd_conn *c;

		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				listener_rest(f, i, errno);
			return;
		}
		c = fwd_conn_new(f, e);
		if (!c) {
			close(fd); /* at the rule's or the enclave's cap */
			continue;
		}
		c->fd = fd;
		if (conn_offer_guest(f, c) < 0)
			fwd_conn_release(f, c);
	}
}

/* --- the thread -------------------------------------------------------- */

static void fwd_run_dirty(struct forwarder *f)
{
	while (f->dirty) {
		struct fwd_conn *c = f->dirty;

		f->dirty = c->dnext;
		c->dirty = false;
		fwd_conn_service(f, c);
	}
}

static void fwd_dispatch(struct forwarder *f, const struct epoll_event *ev)
{
	uint64_t tag = ev->data.u64 >> 32;
	uint32_t i = (uint32_t)ev->data.u64;
	uint64_t v;
	ssize_t r;

	if (tag == FWD_TAG_WAKE) {
		r = read(f->evfd, &v, sizeof(v)); /* EAGAIN: already drained */
		(void)r;
		f->woken = false;
	} else if (tag == FWD_TAG_LISTENER) {
		if (!f->ent[i].paused)
			listener_accept(f, i);
	} else if (i < VSOCK_MAX_CONNS) {
		fwd_conn_touch(f, &f->conn[i]);
	}
}

void *fwd_thread_main(void *arg)
{
	struct forwarder *f = arg;
	struct epoll_event ev[EV_BATCH];
	bool stop = false;

	while (!stop) {
		/* The paused state is this thread's alone: read without the lock. */
		int n = epoll_wait(f->epfd, ev, EV_BATCH, fwd_wait_ms(f));

		pvsock_lock(&f->pv);
		f->busy = true;
		if (f->any_paused && fwd_now_ms() >= f->rest_until)
			fwd_listeners_resume(f);
		for (int i = 0; i < n; i++)
			fwd_dispatch(f, &ev[i]);
		fwd_run_dirty(f);
		stop = f->stopping;
		f->busy = false;
		pvsock_unlock(&f->pv);
	}
	return NULL;
}

/* --- the transport's ops (its lock held, must not block) ------------- */

static int op_connect(void *ctx, uint32_t port, uint64_t id)
{
	struct forwarder *f = ctx;
	struct fwd_conn *c;
	size_t i;

	for (i = 0; i < f->n; i++)
		if (f->ent[i].rule.dir == FWD_TO_HOST && f->ent[i].rule.port == port)
			break;
	if (i == f->n || f->stopping)
		return -1;
	c = fwd_conn_new(f, &f->ent[i]);
	if (!c)
		return -1;
	c->id = id;
	c->state = FWD_C_DIAL;
	fwd_conn_add(f, c);
	fwd_conn_touch(f, c);
	return 0;
}

static void op_connected(void *ctx, uint64_t id)
{
	struct forwarder *f = ctx;
	struct fwd_conn *c = fwd_conn_find(f, id);

	if (c && c->state == FWD_C_OFFERED) {
		c->state = FWD_C_OPEN;
		fwd_conn_touch(f, c);
	}
}

/* Straight to the socket when no bytes wait before these: a copy less and
 * no hand-over to the forwarder thread, which is most of what guest->host
 * data costs. The send never blocks; an error is left for the relay, which
 * meets it again on the bytes that stay buffered. */
static size_t op_data_direct(struct forwarder *f, struct fwd_conn *c, const uint8_t *p, size_t len)
{
	ssize_t n;

	if (c->state != FWD_C_OPEN || c->fd < 0 || c->in_len || c->broken || c->wr_done)
		return 0;
	do
		n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	pvsock_credit(&f->pv, c->id, (uint32_t)n);
	f->st.bytes_direct += (uint64_t)n;
	return (size_t)n;
}

static void op_data(void *ctx, uint64_t id, const void *buf, size_t len)
{
	struct forwarder *f = ctx;
	struct fwd_conn *c = fwd_conn_find(f, id);
	const uint8_t *p = buf;
	size_t sent;

	if (!c)
		return;
	f->st.bytes_from_guest += len;
	sent = op_data_direct(f, c, p, len);
	if (sent == len)
		return;
	p += sent;
	len -= sent;
	/* Never beyond a window: the device broke its promise, or memory ran
	 * out; either way this connection cannot go on. */
	if (c->broken || len > VSOCK_CONN_BUF - c->in_len ||
	    fwd_conn_in_room(f, c, c->in_len + (uint32_t)len) < 0) {
		c->broken = true;
		fwd_conn_touch(f, c);
		return;
	}
	for (size_t done = 0; done < len;) {
		uint32_t at = (c->in_head + c->in_len) % c->in_cap;
		size_t k = c->in_cap - at;

		if (k > len - done)
			k = len - done;
		memcpy(c->in + at, p + done, k);
		c->in_len += (uint32_t)k;
		done += k;
	}
	f->st.buffered += len;
	fwd_conn_touch(f, c);
}

static void op_writable(void *ctx, uint64_t id)
{
	struct forwarder *f = ctx;
	struct fwd_conn *c = fwd_conn_find(f, id);

	if (c) {
		c->dev_full = false;
		fwd_conn_touch(f, c);
	}
}

static void op_shutdown(void *ctx, uint64_t id, uint32_t flags)
{
	struct forwarder *f = ctx;
	struct fwd_conn *c = fwd_conn_find(f, id);

	if (!c)
		return;
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->guest_eof = true;
	if (flags & VSOCK_SHUTDOWN_RCV)
		c->guest_norcv = true;
	fwd_conn_touch(f, c);
}

static void op_closed(void *ctx, uint64_t id)
{
	struct forwarder *f = ctx;
	struct fwd_conn *c = fwd_conn_find(f, id);

	if (!c)
		return;
	fwd_conn_forget(f, c);
	c->dead = true;
	fwd_conn_touch(f, c);
}

static void op_heartbeat(void *ctx)
{
	struct forwarder *f = ctx;

	if (f->heartbeat)
		f->heartbeat(f->hb_ctx);
}

static const struct vsock_host_ops fwd_host_ops = {
    .connect = op_connect,
    .connected = op_connected,
    .data = op_data,
    .writable = op_writable,
    .shutdown = op_shutdown,
    .closed = op_closed,
    .heartbeat = op_heartbeat,
};

const struct vsock_host_ops *fwd_ops(void)
{
	return &fwd_host_ops;
}
