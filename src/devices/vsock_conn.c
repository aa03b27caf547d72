/* vsock_conn.c: vsock stream connections between the guest and the parent:
 * the table, the state machine and credit-based flow control.
 *
 * A short primer (virtio 1.2, 5.10.6). A connection is named by its two
 * ports; the guest opens one with REQUEST and the other side answers
 * RESPONSE (accept) or RST (refuse). Data travels in RW packets. Either
 * side says SHUTDOWN with RCV and/or SEND when it stops receiving/sending;
 * once a side has both from its peer it answers RST, which ends the
 * connection. Every packet carries the sender's buf_alloc (its receive
 * buffer) and fwd_cnt (bytes it has consumed), so a sender may have at most
 * peer_buf_alloc - (tx_cnt - peer_fwd_cnt) bytes in flight; CREDIT_REQUEST
 * asks for a CREDIT_UPDATE that carries the two fields alone.
 *
 * States here:
 *   GUEST_INIT   the guest's REQUEST went to the host's connect callback;
 *                vsock_host_connected moves on to ESTABLISHED (RESPONSE).
 *   HOST_INIT    vsock_host_connect sent REQUEST; RESPONSE -> ESTABLISHED.
 *   ESTABLISHED  data both ways, shutdowns recorded per direction.
 *   CLOSING      the host closed: its queued data, then SHUTDOWN, go out
 *                and the guest's RST (or full SHUTDOWN) frees the slot.
 *                When the table is full these are reclaimed first.
 * Any protocol violation by the guest (REQUEST on a live connection,
 * RESPONSE or RW in the wrong state, data past the credit we gave it) kills
 * the connection with RST and tells the host it is closed.
 *
 * Flow control toward the host: we advertise VSOCK_CONN_BUF and count the
 * host's vsock_host_credit calls as consumed. A CREDIT_UPDATE goes out when
 * the guest's last view of our free space has dropped below one maximal
 * packet, so a sender waiting for room is always woken, without an update
 * for every small read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/vsock_conn.h"

#define SLOT_BITS 10
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define SHUT_BOTH (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)

_Static_assert(VSOCK_MAX_CONNS <= (1u << SLOT_BITS), "conn ids carry the slot");

/* --- the list of connections with packets for the guest ---------------- */

static int slot_of(const struct vsock_dev *dev, const struct vsock_conn *c)
{
	return (int)(c - dev->conn);
}

static bool wants_rx(const struct vsock_conn *c)
{
	return c->id && (c->pending || c->buf_len);
}

static void rxq_del(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (!c->in_rxq)
		return;
	if (c->rx_prev >= 0)
		dev->conn[c->rx_prev].rx_next = c->rx_next;
	else
		dev->rxq_head = c->rx_next;
	if (c->rx_next >= 0)
		dev->conn[c->rx_next].rx_prev = c->rx_prev;
	else
		dev->rxq_tail = c->rx_prev;
	c->rx_prev = c->rx_next = -1;
	c->in_rxq = false;
}

static void rxq_add(struct vsock_dev *dev, struct vsock_conn *c)
{
	int i = slot_of(dev, c);

	if (c->in_rxq)
		return;
	c->rx_prev = dev->rxq_tail;
	c->rx_next = -1;
	if (dev->rxq_tail >= 0)
		dev->conn[dev->rxq_tail].rx_next = i;
	else
		dev->rxq_head = i;
	dev->rxq_tail = i;
	c->in_rxq = true;
}

static void mark(struct vsock_dev *dev, struct vsock_conn *c, uint32_t bits)
{
	c->pending |= bits;
	rxq_add(dev, c);
	vsock_kick_rx(dev);
}

/* --- the table ------------------------------------------------------- */

static struct vsock_conn *find(struct vsock_dev *dev, uint32_t host_port, uint32_t guest_port)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &dev->conn[i];

		if (c->id && c->host_port == host_port && c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

/* Only connections the host still holds are reachable by id. */
static struct vsock_conn *by_id(struct vsock_dev *dev, uint64_t id)
{
	struct vsock_conn *c = &dev->conn[id & SLOT_MASK];

	if ((id & SLOT_MASK) >= VSOCK_MAX_CONNS || !id || c->id != id || !c->host_attached)
		return NULL;
	return c;
}

static void conn_free(struct vsock_dev *dev, struct vsock_conn *c)
{
	rxq_del(dev, c);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->rx_prev = c->rx_next = -1;
	dev->nconns--;
}

/* Ends `c`: an RST to the guest if asked, and `closed` if the host holds
 * it. The slot is free before the callback runs. */
static void kill(struct vsock_dev *dev, struct vsock_conn *c, bool rst, bool tell)
{
	uint64_t id = c->id;
	bool attached = c->host_attached;

	if (rst)
		vsock_queue_rst(dev, VSOCK_PARENT_CID, c->host_port, c->guest_port);
	conn_free(dev, c);
	if (tell && attached && dev->ops->closed)
		dev->ops->closed(dev->ctx, id);
}

static struct vsock_conn *free_slot(struct vsock_dev *dev)
{
	if (dev->nconns == VSOCK_MAX_CONNS) {
		/* The host has let these go; the guest is slow to answer. */
		for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
			if (dev->conn[i].state == CONN_CLOSING) {
				kill(dev, &dev->conn[i], true, false);
				break;
			}
	}
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (!dev->conn[i].id)
			return &dev->conn[i];
	return NULL;
}

static struct vsock_conn *conn_alloc(struct vsock_dev *dev, uint32_t host_port, uint32_t guest_port,
				     enum vsock_state state)
{
	struct vsock_conn *c = free_slot(dev);

	if (!c)
		return NULL;
	dev->generation++;
	c->id = dev->generation << SLOT_BITS | (uint64_t)slot_of(dev, c);
	c->state = state;
	c->host_port = host_port;
	c->guest_port = guest_port;
	dev->nconns++;
	return c;
}

void vsock_conn_reset_all(struct vsock_dev *dev, bool tell_host)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (dev->conn[i].id)
			kill(dev, &dev->conn[i], false, tell_host);
}

/* --- credit ------------------------------------------------------------ */

/* What the guest lets us have in flight beyond what it has consumed. */
static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Bytes vsock_host_send may queue now. Queued bytes are not in flight yet
 * but will be, so they count against the guest's credit too. */
static uint32_t send_room(const struct vsock_conn *c)
{
	uint32_t credit = peer_credit(c);
	uint32_t room = VSOCK_CONN_BUF - c->buf_len;

	if (credit <= c->buf_len)
		return 0;
	return credit - c->buf_len < room ? credit - c->buf_len : room;
}

static bool can_send(const struct vsock_conn *c)
{
	return c->state == CONN_ESTABLISHED && !(c->local_shut & VSOCK_SHUTDOWN_SEND) &&
	       !(c->peer_shut & VSOCK_SHUTDOWN_RCV);
}

static uint32_t enqueue(struct vsock_conn *c, const uint8_t *src, uint32_t len)
{
	uint32_t room = send_room(c);
	uint32_t n = len < room ? len : room;

	if (!n)
		return 0;
	if (!c->buf) {
		c->buf = malloc(VSOCK_CONN_BUF);
		if (!c->buf)
			return 0;
		c->buf_head = 0;
	}
	for (uint32_t done = 0; done < n;) {
		uint32_t at = (c->buf_head + c->buf_len) % VSOCK_CONN_BUF;
		uint32_t k = VSOCK_CONN_BUF - at;

		if (k > n - done)
			k = n - done;
		memcpy(c->buf + at, src + done, k);
		c->buf_len += k;
		done += k;
	}
	return n;
}

static void drop_queued(struct vsock_conn *c)
{
	free(c->buf);
	c->buf = NULL;
	c->buf_head = c->buf_len = 0;
}

static void maybe_credit_update(struct vsock_dev *dev, struct vsock_conn *c)
{
	uint32_t seen_used = c->rx_cnt - c->fwd_sent;

	/* seen_used may pass our window: the guest is only held to the real
	 * fwd_cnt, which can be ahead of what it was told. */
	if (c->fwd_cnt != c->fwd_sent && seen_used > VSOCK_CONN_BUF - VSOCK_MAX_PAYLOAD)
		mark(dev, c, PEND_CREDIT);
}

static void maybe_writable(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (!c->want_write || !c->host_attached || !can_send(c) || !send_room(c))
		return;
	c->want_write = false;
	if (dev->ops->writable)
		dev->ops->writable(dev->ctx, c->id);
}

/* --- toward the guest -------------------------------------------------- */

struct vsock_conn *vsock_conn_next(struct vsock_dev *dev)
{
	while (dev->rxq_head >= 0) {
		struct vsock_conn *c = &dev->conn[dev->rxq_head];

		if (wants_rx(c))
			return c;
		rxq_del(dev, c);
	}
	return NULL;
}

static uint16_t next_op(const struct vsock_conn *c, uint32_t room)
{
	if (c->pending & PEND_REQUEST)
		return VSOCK_OP_REQUEST;
	if (c->pending & PEND_RESPONSE)
		return VSOCK_OP_RESPONSE;
	/* Data before SHUTDOWN, which promises there is no more. */
	if (c->buf_len)
		return room ? VSOCK_OP_RW : VSOCK_OP_CREDIT_UPDATE;
	if (c->pending & PEND_SHUTDOWN)
		return VSOCK_OP_SHUTDOWN;
	return VSOCK_OP_CREDIT_UPDATE;
}

uint32_t vsock_conn_build(struct vsock_dev *dev, struct vsock_conn *c, struct vsock_hdr *h,
			  uint32_t room)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = VSOCK_PARENT_CID;
	h->dst_cid = dev->guest_cid;
	h->src_port = c->host_port;
	h->dst_port = c->guest_port;
	h->type = VSOCK_TYPE_STREAM;
	h->op = next_op(c, room);
	h->buf_alloc = VSOCK_CONN_BUF;
	h->fwd_cnt = c->fwd_cnt;
	if (h->op == VSOCK_OP_SHUTDOWN)
		h->flags = c->shut_send;
	if (h->op == VSOCK_OP_RW)
		h->len = c->buf_len < room ? c->buf_len : room;
	return h->len;
}

void vsock_conn_sent(struct vsock_dev *dev, struct vsock_conn *c, const struct vsock_hdr *h,
		     uint32_t n)
{
	c->fwd_sent = h->fwd_cnt;
	c->pending &= ~PEND_CREDIT; /* every packet carries the credit */
	switch (h->op) {
	case VSOCK_OP_REQUEST:
		c->pending &= ~PEND_REQUEST;
		break;
	case VSOCK_OP_RESPONSE:
		c->pending &= ~PEND_RESPONSE;
		break;
	case VSOCK_OP_SHUTDOWN:
		c->pending &= ~PEND_SHUTDOWN;
		break;
	case VSOCK_OP_RW:
		c->buf_head = (c->buf_head + n) % VSOCK_CONN_BUF;
		c->buf_len -= n;
		c->tx_cnt += n;
		if (!c->buf_len)
			drop_queued(c);
		break;
	}
	/* Round-robin: to the back of the list, or off it. */
	rxq_del(dev, c);
	if (wants_rx(c))
		rxq_add(dev, c);
	maybe_writable(dev, c);
}

/* --- from the guest ---------------------------------------------------- */

static void heartbeat_rx(struct vsock_dev *dev, struct vsock_conn *c, const uint8_t *p,
			 uint32_t len)
{
	static const uint8_t beat = VSOCK_HEARTBEAT_BYTE;
	bool seen = false;

	for (uint32_t i = 0; i < len; i++) {
		if (p[i] != VSOCK_HEARTBEAT_BYTE)
			continue;
		seen = true;
		if (can_send(c) && enqueue(c, &beat, 1))
			mark(dev, c, 0);
	}
	/* Consumed at once. */
	c->fwd_cnt += len;
	maybe_credit_update(dev, c);
	if (!seen || c->heartbeat_told)
		return;
	c->heartbeat_told = true;
	if (!dev->heartbeat_ns) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		dev->heartbeat_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		if (!dev->heartbeat_ns)
			dev->heartbeat_ns = 1;
	}
	if (dev->ops->heartbeat)
		dev->ops->heartbeat(dev->ctx);
}

static void accept_request(struct vsock_dev *dev, const struct vsock_hdr *h)
{
	bool hb = h->dst_port == VSOCK_HEARTBEAT_PORT;
	struct vsock_conn *c;
	uint64_t id;

	c = conn_alloc(dev, h->dst_port, h->src_port, hb ? CONN_ESTABLISHED : CONN_GUEST_INIT);
	if (!c) {
		vsock_queue_rst(dev, VSOCK_PARENT_CID, h->dst_port, h->src_port);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (hb) {
		c->heartbeat = true;
		mark(dev, c, PEND_RESPONSE);
		return;
	}
	c->host_attached = true;
	id = c->id;
	if (dev->ops->connect && dev->ops->connect(dev->ctx, h->dst_port, id) == 0)
		return;
	/* Refused: the host never held it, so no `closed`. The callback may
	 * already have closed it. */
	c = by_id(dev, id);
	if (c)
		kill(dev, c, true, false);
	else
		vsock_queue_rst(dev, VSOCK_PARENT_CID, h->dst_port, h->src_port);
}

static void rw_rx(struct vsock_dev *dev, struct vsock_conn *c, const struct vsock_hdr *h,
		  const uint8_t *payload)
{
	bool live = c->state == CONN_ESTABLISHED || c->state == CONN_CLOSING;

	if (!live || (c->peer_shut & VSOCK_SHUTDOWN_SEND) ||
	    h->len > VSOCK_CONN_BUF - (c->rx_cnt - c->fwd_cnt)) {
		kill(dev, c, true, true);
		return;
	}
	c->rx_cnt += h->len;
	if (c->heartbeat) {
		heartbeat_rx(dev, c, payload, h->len);
	} else if (!c->host_attached || !dev->ops->data) {
		c->fwd_cnt += h->len; /* nobody to read it: discarded */
		maybe_credit_update(dev, c);
	} else if (h->len) {
		dev->ops->data(dev->ctx, c->id, payload, h->len);
	}
}

static void shutdown_rx(struct vsock_dev *dev, struct vsock_conn *c, uint32_t flags)
{
	uint32_t fresh = flags & SHUT_BOTH & ~c->peer_shut;

	if (c->state != CONN_ESTABLISHED && c->state != CONN_CLOSING) {
		kill(dev, c, true, true);
		return;
	}
	c->peer_shut |= fresh;
	if (c->peer_shut & VSOCK_SHUTDOWN_RCV)
		drop_queued(c); /* it will not read them */
	if (c->peer_shut == SHUT_BOTH) {
		/* What Linux does in our place: the guest waits for it. */
		kill(dev, c, true, true);
		return;
	}
	if (fresh && c->host_attached && dev->ops->shutdown)
		dev->ops->shutdown(dev->ctx, c->id, fresh);
}

static void response_rx(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (c->state != CONN_HOST_INIT) {
		kill(dev, c, true, true);
		return;
	}
	c->state = CONN_ESTABLISHED;
	if (dev->ops->connected)
		dev->ops->connected(dev->ctx, c->id);
}

static void conn_rx(struct vsock_dev *dev, struct vsock_conn *c, const struct vsock_hdr *h,
		    const uint8_t *payload)
{
	uint64_t id = c->id;

	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_REQUEST:
		kill(dev, c, true, true);
		return;
	case VSOCK_OP_RESPONSE:
		response_rx(dev, c);
		break;
	case VSOCK_OP_RST:
		kill(dev, c, false, true);
		return;
	case VSOCK_OP_SHUTDOWN:
		shutdown_rx(dev, c, h->flags);
		break;
	case VSOCK_OP_RW:
		rw_rx(dev, c, h, payload);
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		mark(dev, c, PEND_CREDIT);
		break;
	default: /* CREDIT_UPDATE: the fields above are all of it */
		break;
	}
	/* Callbacks may have ended it or reused the slot. */
	if (c->id == id)
		maybe_writable(dev, c);
}

void vsock_conn_recv(struct vsock_dev *dev, const struct vsock_hdr *h, const uint8_t *payload)
{
	struct vsock_conn *c = find(dev, h->dst_port, h->src_port);

	if (c)
		conn_rx(dev, c, h, payload);
	else if (h->op == VSOCK_OP_REQUEST)
		accept_request(dev, h);
	else if (h->op != VSOCK_OP_RST)
		vsock_queue_rst(dev, VSOCK_PARENT_CID, h->dst_port, h->src_port);
}

/* --- the host's calls -------------------------------------------------- */

int vsock_host_connected(struct vsock_dev *dev, uint64_t conn_id)
{
	struct vsock_conn *c = by_id(dev, conn_id);

	if (!c)
		return -ENOENT;
	if (c->state != CONN_GUEST_INIT)
		return -EINVAL;
	c->state = CONN_ESTABLISHED;
	mark(dev, c, PEND_RESPONSE);
	return 0;
}

size_t vsock_host_send(struct vsock_dev *dev, uint64_t conn_id, const void *buf, size_t len)
{
	struct vsock_conn *c = by_id(dev, conn_id);
	uint32_t want = len > VSOCK_CONN_BUF ? VSOCK_CONN_BUF : (uint32_t)len;
	uint32_t n;

	if (!c || !can_send(c))
		return 0;
	vsock_enter(dev);
	n = enqueue(c, buf, want);
	if (n < len)
		c->want_write = true;
	if (n)
		mark(dev, c, 0);
	vsock_leave(dev);
	return n;
}

int vsock_host_credit(struct vsock_dev *dev, uint64_t conn_id, uint32_t bytes)
{
	struct vsock_conn *c = by_id(dev, conn_id);

	if (!c)
		return -ENOENT;
	if (bytes > c->rx_cnt - c->fwd_cnt)
		return -EINVAL;
	c->fwd_cnt += bytes;
	maybe_credit_update(dev, c);
	return 0;
}

int vsock_host_shutdown(struct vsock_dev *dev, uint64_t conn_id, uint32_t flags)
{
	struct vsock_conn *c = by_id(dev, conn_id);

	if (!c)
		return -ENOENT;
	flags &= SHUT_BOTH;
	if (c->state != CONN_ESTABLISHED || !flags)
		return -EINVAL;
	c->local_shut |= flags;
	c->shut_send |= flags;
	mark(dev, c, PEND_SHUTDOWN);
	return 0;
}

int vsock_host_close(struct vsock_dev *dev, uint64_t conn_id)
{
	struct vsock_conn *c = by_id(dev, conn_id);

	if (!c)
		return -ENOENT;
	vsock_enter(dev);
	c->host_attached = false;
	c->want_write = false;
	if (c->state != CONN_ESTABLISHED) {
		kill(dev, c, true, false);
	} else {
		c->state = CONN_CLOSING;
		c->local_shut = c->shut_send = SHUT_BOTH;
		mark(dev, c, PEND_SHUTDOWN);
	}
	vsock_leave(dev);
	return 0;
}

int vsock_host_connect(struct vsock_dev *dev, uint32_t guest_port, uint32_t host_port,
		       uint64_t *conn_id)
{
	struct vsock_conn *c;

	if (find(dev, host_port, guest_port))
		return -EBUSY;
	vsock_enter(dev);
	c = conn_alloc(dev, host_port, guest_port, CONN_HOST_INIT);
	if (c) {
		c->host_attached = true;
		*conn_id = c->id;
		mark(dev, c, PEND_REQUEST);
	}
	vsock_leave(dev);
	return c ? 0 : -ENOSPC;
}
