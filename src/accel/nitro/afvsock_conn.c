/* afvsock_conn.c: the AF_VSOCK transport's connections: the table, the
 * heartbeat exchange, servicing a connection on the thread, and the
 * pvsock calls the host makes (nectl/afvsock.h says what each means).
 *
 * Connection sockets are edge-triggered in epoll: a vsock socket reports
 * EPOLLIN for ever once its peer stops sending and EPOLLHUP once both sides
 * have, so a level-triggered one would wake the thread in a loop while the
 * host holds back credit. An edge only says "look"; the thread then does
 * what the connection's state allows (servicing is idempotent), and
 * whoever changes that state (credit, connected, a failed send) queues the
 * connection for service instead of waiting for an edge that may not come.
 * A connection that still has bytes after its round's reads is queued
 * again, so a busy one cannot starve the others. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "accel/nitro/afvsock_int.h"

#define READ_BUDGET 16 /* reads of VSOCK_MAX_PAYLOAD per connection per round */
#define SHUT_BOTH   (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)

_Static_assert(VSOCK_MAX_CONNS <= (1u << AFV_SLOT_BITS), "conn ids carry the slot");

/* --- the table ----------------------------------------------------------- */

void afv_conns_init(struct afvsock *a)
{
	a->free_head = a->svc_head = a->svc_tail = -1;
	for (int i = VSOCK_MAX_CONNS - 1; i >= 0; i--) {
		a->conn[i].fd = -1;
		a->conn[i].svc_next = -1;
		a->conn[i].free_next = a->free_head;
		a->free_head = i;
	}
}

/* The service list link (and its `queued` flag) is left alone: a slot
 * freed while queued stays on the list, and its next owner is serviced
 * once for nothing. */
static struct afv_conn *conn_alloc(struct afvsock *a, enum afv_state state, int fd)
{
	struct afv_conn *c;
	int i = a->free_head;

	if (i < 0)
		return NULL;
	c = &a->conn[i];
	a->free_head = c->free_next;
	c->id = ++a->seq << AFV_SLOT_BITS | (uint64_t)i;
	c->state = state;
	c->fd = fd;
	c->events = c->held = 0;
	c->rd_eof = c->peer_norcv = c->host_norcv = c->host_nosend = false;
	c->want_write = c->send_failed = false;
	a->nconns++;
	return c;
}

static void conn_free(struct afvsock *a, struct afv_conn *c)
{
	close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->state = AFV_FREE;
	c->free_next = a->free_head;
	a->free_head = (int)(c - a->conn);
	a->nconns--;
}

static bool conn_alive(const struct afv_conn *c, uint64_t id)
{
	return c->state != AFV_FREE && c->id == id;
}

/* Ends `c` on an error or when both directions are done: `closed` if the
 * host holds it (every state but the heartbeat's). */
static void conn_end(struct afvsock *a, struct afv_conn *c)
{
	uint64_t id = c->id;
	bool held = c->state != AFV_HEARTBEAT;

	conn_free(a, c);
	if (held && a->ops->closed)
		a->ops->closed(a->ctx, id);
}

/* Onto the service list, for the thread's next round. */
static void conn_link(struct afvsock *a, struct afv_conn *c)
{
	int i = (int)(c - a->conn);

	if (c->queued)
		return;
	c->queued = true;
	c->svc_next = -1;
	if (a->svc_tail >= 0)
		a->conn[a->svc_tail].svc_next = i;
	else
		a->svc_head = i;
	a->svc_tail = i;
}

/* The same from the host's calls, which may come from any thread. */
static void conn_queue(struct afvsock *a, struct afv_conn *c)
{
	conn_link(a, c);
	afv_wake(a);
}

static int conn_watch(struct afvsock *a, struct afv_conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.u64 = AFV_EV_DATA(AFV_TAG_CONN, c - a->conn)};

	return epoll_ctl(a->epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

void afv_conns_close(struct afvsock *a)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (a->conn[i].fd >= 0)
			close(a->conn[i].fd);
}

/* --- from the enclave ---------------------------------------------------- */

/* The boot heartbeat, as nitro-cli answers it: one byte, 0xB7, echoed;
 * then the port is given up for the next enclave's boot. */
static void hb_service(struct afvsock *a, struct afv_conn *c)
{
	uint8_t b = 0;
	ssize_t n;
	bool ok;

	do
		n = recv(c->fd, &b, 1, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	ok = n == 1 && b == VSOCK_HEARTBEAT_BYTE &&
	     send(c->fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1;
	conn_free(a, c);
	if (!ok)
		return;
	afv_listener_drop(a, VSOCK_HEARTBEAT_PORT);
	if (a->ops->heartbeat)
		a->ops->heartbeat(a->ctx);
}

void afv_conn_accept(struct afvsock *a, uint32_t port, int fd)
{
	bool hb = port == VSOCK_HEARTBEAT_PORT;
	struct afv_conn *c = conn_alloc(a, hb ? AFV_HEARTBEAT : AFV_PENDING, fd);
	uint64_t id;

	if (!c) {
		close(fd); /* VSOCK_MAX_CONNS are open */
		return;
	}
	if (conn_watch(a, c) < 0) {
		conn_free(a, c);
		return;
	}
	if (hb) {
		conn_link(a, c); /* the byte may be here already */
		return;
	}
	id = c->id;
	if (a->ops->connect && a->ops->connect(a->ctx, port, id) == 0)
		return;
	/* Refused: the host never held it, so no `closed`. The callback may
	 * already have closed it. */
	if (conn_alive(c, id))
		conn_free(a, c);
}

void afv_conn_event(struct afvsock *a, uint32_t i, uint32_t events)
{
	struct afv_conn *c = &a->conn[i];

	if (c->state == AFV_FREE)
		return;
	c->events |= events;
	conn_link(a, c);
}

/* Reads what the host has room for, within the round's budget; false when
 * the connection is gone (an error, or a callback closed it). */
static bool conn_read(struct afvsock *a, struct afv_conn *c)
{
	uint64_t id = c->id;

	for (unsigned k = 0; k < READ_BUDGET; k++) {
		size_t room = VSOCK_CONN_BUF - c->held;
		ssize_t n;

		if (c->rd_eof || c->host_norcv || !room)
			return true;
		n = recv(c->fd, a->buf, room < sizeof(a->buf) ? room : sizeof(a->buf),
			 MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0 && errno != EINTR) {
			conn_end(a, c);
			return false;
		}
		if (n == 0) {
			c->rd_eof = true;
			if (a->ops->shutdown)
				a->ops->shutdown(a->ctx, id, VSOCK_SHUTDOWN_SEND);
		} else if (n > 0) {
			c->held += (uint32_t)n;
			a->ops->data(a->ctx, id, a->buf, (size_t)n);
		}
		if (!conn_alive(c, id))
			return false;
	}
	conn_link(a, c); /* more may wait, and no new edge will say so */
	return true;
}

/* The enclave's SHUTDOWN RCV has no event of its own: a zero-length send
 * fails (EPIPE, or ENOTCONN once it has reset) when it no longer receives.
 * Asked once it has stopped sending too, or after a send failed. False
 * when the connection is gone. */
static bool conn_check_peer(struct afvsock *a, struct afv_conn *c)
{
	uint64_t id = c->id;

	if (c->peer_norcv || c->host_nosend || !(c->rd_eof || c->send_failed))
		return true;
	c->send_failed = false;
	if (send(c->fd, NULL, 0, MSG_DONTWAIT | MSG_NOSIGNAL) == 0 || errno == EAGAIN ||
	    errno == EINTR)
		return true;
	c->peer_norcv = true;
	c->want_write = false;
	if (a->ops->shutdown)
		a->ops->shutdown(a->ctx, id, VSOCK_SHUTDOWN_RCV);
	return conn_alive(c, id);
}

static void conn_run(struct afvsock *a, struct afv_conn *c, uint32_t ev)
{
	uint64_t id = c->id;

	if ((ev & EPOLLERR) && afv_sock_error(c->fd)) {
		conn_end(a, c);
		return;
	}
	if (!conn_read(a, c))
		return;
	if (c->want_write && (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
		c->want_write = false;
		if (a->ops->writable)
			a->ops->writable(a->ctx, id);
		if (!conn_alive(c, id))
			return;
	}
	if (!conn_check_peer(a, c))
		return;
	if ((c->rd_eof || c->host_norcv) && (c->host_nosend || c->peer_norcv))
		conn_end(a, c);
}

/* The host's connect: answered (connected), refused or timed out (closed). */
static void conn_finish_connect(struct afvsock *a, struct afv_conn *c)
{
	struct sockaddr_vm sa;
	socklen_t len = sizeof(sa);
	uint64_t id = c->id;

	if (afv_sock_error(c->fd)) {
		conn_end(a, c);
		return;
	}
	if (getpeername(c->fd, (struct sockaddr *)&sa, &len) < 0)
		return; /* not yet */
	c->state = AFV_OPEN;
	if (a->ops->connected)
		a->ops->connected(a->ctx, id);
	if (conn_alive(c, id))
		conn_link(a, c); /* data may have come with the answer's edge */
}

static void conn_service(struct afvsock *a, struct afv_conn *c)
{
	uint32_t ev = c->events;

	c->events = 0;
	if (c->state == AFV_HEARTBEAT)
		hb_service(a, c);
	else if (c->state == AFV_CONNECTING)
		conn_finish_connect(a, c);
	else if (c->state == AFV_OPEN)
		conn_run(a, c, ev);
	/* AFV_PENDING: nothing is read until the host says `connected`. */
}

void afv_conns_service(struct afvsock *a)
{
	int i = a->svc_head;

	a->svc_head = a->svc_tail = -1;
	while (i >= 0) {
		struct afv_conn *c = &a->conn[i];

		i = c->svc_next;
		c->queued = false;
		if (c->state != AFV_FREE)
			conn_service(a, c);
	}
}

/* --- the host's calls (the mutex held) ----------------------------------- */

static struct afv_conn *conn_find(struct afvsock *a, uint64_t id)
{
	struct afv_conn *c = &a->conn[id & AFV_SLOT_MASK];

	if (c->id != id || c->state == AFV_FREE || c->state == AFV_HEARTBEAT)
		return NULL;
	return c;
}

static int pv_connected(void *t, uint64_t id)
{
	struct afvsock *a = t;
	struct afv_conn *c = conn_find(a, id);

	if (!c)
		return -ENOENT;
	if (c->state != AFV_PENDING)
		return -EINVAL;
	c->state = AFV_OPEN;
	conn_queue(a, c); /* what the enclave sent meanwhile */
	return 0;
}

/* A short count means the socket is full: its next edge brings `writable`.
 * A failed send is looked into by the thread (the enclave's RCV). */
static size_t pv_send(void *t, uint64_t id, const void *buf, size_t len)
{
	struct afvsock *a = t;
	struct afv_conn *c = conn_find(a, id);
	ssize_t n;

	if (!c || c->state != AFV_OPEN || c->host_nosend || c->peer_norcv || !len)
		return 0;
	do
		n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		c->send_failed = true;
		conn_queue(a, c);
		return 0;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n < len)
		c->want_write = true;
	return (size_t)n;
}

static int pv_credit(void *t, uint64_t id, uint32_t bytes)
{
	struct afvsock *a = t;
	struct afv_conn *c = conn_find(a, id);

	if (!c)
		return -ENOENT;
	if (bytes > c->held)
		return -EINVAL;
	if (bytes && c->held == VSOCK_CONN_BUF)
		conn_queue(a, c); /* reading had stopped for want of room */
	c->held -= bytes;
	return 0;
}

static int pv_shutdown(void *t, uint64_t id, uint32_t flags)
{
	struct afvsock *a = t;
	struct afv_conn *c = conn_find(a, id);

	if (!c)
		return -ENOENT;
	flags &= SHUT_BOTH;
	if (c->state != AFV_OPEN || !flags)
		return -EINVAL;
	if ((flags & VSOCK_SHUTDOWN_SEND) && !c->host_nosend) {
		shutdown(c->fd, SHUT_WR);
		c->host_nosend = true;
		c->want_write = false;
	}
	if ((flags & VSOCK_SHUTDOWN_RCV) && !c->host_norcv) {
		shutdown(c->fd, SHUT_RD);
		c->host_norcv = true;
	}
	conn_queue(a, c); /* both directions may be done now */
	return 0;
}

static int pv_close(void *t, uint64_t id)
{
	struct afvsock *a = t;
	struct afv_conn *c = conn_find(a, id);

	if (!c)
		return -ENOENT;
	conn_free(a, c);
	return 0;
}

static int pv_connect(void *t, uint32_t guest_port, uint32_t host_port, uint64_t *id)
{
	struct afvsock *a = t;
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = a->cfg.enclave_cid, .svm_port = guest_port};
	struct afv_conn *c;
	int fd, e;

	(void)host_port; /* the kernel picks it: the parent's ports are shared */
	if (a->free_head < 0)
		return -ENOSPC;
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	c = conn_alloc(a, AFV_CONNECTING, fd);
	if (conn_watch(a, c) < 0) {
		e = errno;
		conn_free(a, c);
		return -e;
	}
	conn_queue(a, c); /* it may have been answered before the watch */
	*id = c->id;
	return 0;
}

const struct pvsock_ops afv_pvsock_ops = {
    .connected = pv_connected,
    .send = pv_send,
    .credit = pv_credit,
    .shutdown = pv_shutdown,
    .close = pv_close,
    .connect = pv_connect,
};
