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
 * RESPONSE or RW in the wrong state, data past the credit it was told)
 * kills the connection with RST and tells the host it is closed.
 *
 * The table is a map from (host port, guest port) to a slot: chains hashed
 * with a random key, and a free list, so a packet costs no scan of the
 * table however many connections there are.
 *
 * Flow control toward the host: we count the host's vsock_host_credit
 * calls as consumed, and tell the guest a window (buf_alloc, up to
 * VSOCK_CONN_BUF) and what was consumed (fwd_cnt). A CREDIT_UPDATE goes out
 * when the guest's last view of our free space has dropped below one
 * maximal packet (half the window, for small ones) and we can give more,
 * so a sender waiting for room is always woken, without an update for
 * every small read.
 *
 * Memory: what a connection costs is its queue toward the guest (the ring's
 * capacity) plus what the guest may still make the host hold (the window
 * told minus the consumed bytes not yet told). Each direction's first
 * VSOCK_MEM_SHARE is free; beyond that it draws on the device's pool of
 * VSOCK_MEM_POOL. When the pool is empty the queue stops growing
 * (vsock_host_send takes less) and consumed bytes are not handed back as
 * credit beyond the share (the guest waits), so the total never passes
 * VSOCK_MEM_MAX while every connection keeps moving. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "devices/vsock_conn.h"

#define SLOT_BITS 10
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define SHUT_BOTH (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)

#define RING_MIN 4096 /* smallest queue toward the guest */

_Static_assert(VSOCK_MAX_CONNS <= (1u << SLOT_BITS), "conn ids carry the slot");
_Static_assert(RING_MIN <= VSOCK_MEM_SHARE, "a connection's first queue is free");
_Static_assert((VSOCK_CONN_BUF & (VSOCK_CONN_BUF - 1)) == 0, "rings double up to it");

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

/* MurmurHash3's finaliser: every input bit moves every output bit. */
static uint64_t mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	return k ^ (k >> 33);
}

/* Keyed, so chains stay short whatever ports the guest picks. */
static unsigned conn_hash(const struct vsock_dev *dev, uint32_t host_port, uint32_t guest_port)
{
	uint64_t k = ((uint64_t)host_port << 32 | guest_port) ^ dev->hash_key[0];

	return (unsigned)(mix64(mix64(k) ^ dev->hash_key[1]) >> (64 - VSOCK_HASH_BITS));
}

static struct vsock_conn *find(struct vsock_dev *dev, uint32_t host_port, uint32_t guest_port)
{
	for (int i = dev->hash[conn_hash(dev, host_port, guest_port)]; i >= 0;
	     i = dev->conn[i].hnext) {
		struct vsock_conn *c = &dev->conn[i];

		if (c->host_port == host_port && c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

static void hash_add(struct vsock_dev *dev, struct vsock_conn *c)
{
	int *head = &dev->hash[conn_hash(dev, c->host_port, c->guest_port)];

	c->hnext = *head;
	*head = slot_of(dev, c);
}

static void hash_del(struct vsock_dev *dev, struct vsock_conn *c)
{
	int *p = &dev->hash[conn_hash(dev, c->host_port, c->guest_port)];

	while (*p >= 0 && *p != slot_of(dev, c))
		p = &dev->conn[*p].hnext;
	if (*p >= 0)
		*p = c->hnext;
	c->hnext = -1;
}

void vsock_conn_init(struct vsock_dev *dev)
{
	if (getrandom(dev->hash_key, sizeof(dev->hash_key), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(dev->hash_key)) {
		/* No entropy yet: still a key that differs per device and run. */
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		dev->hash_key[0] = mix64((uint64_t)(uintptr_t)dev ^ (uint64_t)ts.tv_nsec);
		dev->hash_key[1] = mix64(dev->hash_key[0] ^ (uint64_t)ts.tv_sec);
	}
	for (unsigned i = 0; i < VSOCK_HASH_SIZE; i++)
		dev->hash[i] = -1;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		dev->conn[i].rx_prev = dev->conn[i].rx_next = -1;
		dev->conn[i].hnext = i + 1 < VSOCK_MAX_CONNS ? (int)i + 1 : -1;
	}
	dev->free_head = 0;
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
	int slot = slot_of(dev, c);

	hash_del(dev, c);
	rxq_del(dev, c);
	if (c->state == CONN_CLOSING)
		dev->nclosing--;
	dev->mem -= c->mem;
	dev->pool_used -= c->charged;
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->rx_prev = c->rx_next = -1;
	c->hnext = dev->free_head;
	dev->free_head = slot;
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
	struct vsock_conn *c;

	if (dev->free_head < 0 && dev->nclosing) {
		/* The host has let these go; the guest is slow to answer. */
		for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
			if (dev->conn[i].state == CONN_CLOSING) {
				kill(dev, &dev->conn[i], true, false);
				break;
			}
	}
	if (dev->free_head < 0)
		return NULL;
	c = &dev->conn[dev->free_head];
	dev->free_head = c->hnext;
	c->hnext = -1;
	return c;
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
	hash_add(dev, c);
	dev->nconns++;
	return c;
}

void vsock_conn_reset_all(struct vsock_dev *dev, bool tell_host)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (dev->conn[i].id)
			kill(dev, &dev->conn[i], false, tell_host);
}

/* --- memory ----------------------------------------------------------- */

static uint32_t over_share(uint32_t n)
{
	return n > VSOCK_MEM_SHARE ? n - VSOCK_MEM_SHARE : 0;
}

/* What the guest may make the host hold: the window it was told, less the
 * consumed bytes it was not told about. */
static uint32_t rx_exposure(const struct vsock_conn *c)
{
	return c->rx_win - (c->fwd_cnt - c->fwd_sent);
}

/* Brings the device's sums up to date after any change to c's window, its
 * counters or its ring. */
static void account(struct vsock_dev *dev, struct vsock_conn *c)
{
	uint32_t t = rx_exposure(c);
	uint32_t charge = over_share(t) + over_share(c->buf_cap);

	dev->mem = dev->mem - c->mem + t + c->buf_cap;
	dev->pool_used = dev->pool_used - c->charged + charge;
	c->mem = t + c->buf_cap;
	c->charged = charge;
}

/* How far one direction of a connection, now at `cur` bytes, may grow:
 * its share is free, beyond that what the pool has left. */
static uint32_t grow_limit(const struct vsock_dev *dev, uint32_t cur)
{
	uint32_t room =
	    dev->pool_used < VSOCK_MEM_POOL ? VSOCK_MEM_POOL - (uint32_t)dev->pool_used : 0;

	return (cur > VSOCK_MEM_SHARE ? cur : VSOCK_MEM_SHARE) + room;
}

/* The credit to tell the guest now: first the bytes the host consumed,
 * then a wider window, as far as grow_limit allows. The heartbeat needs
 * one byte, so its window stays within the share. */
static void rx_grant(const struct vsock_dev *dev, const struct vsock_conn *c, uint32_t *fwd,
		     uint32_t *win)
{
	uint32_t max = c->heartbeat ? VSOCK_MEM_SHARE : VSOCK_CONN_BUF;
	uint32_t t = rx_exposure(c);
	uint32_t extra = grow_limit(dev, t) - t;
	uint32_t back = c->fwd_cnt - c->fwd_sent;
	uint32_t step = back < extra ? back : extra;

	*fwd = c->fwd_sent + step;
	extra -= step;
	*win = c->rx_win < max ? c->rx_win + (extra < max - c->rx_win ? extra : max - c->rx_win)
			       : c->rx_win;
}

/* The capacity the queue toward the guest may have now: its own, or the
 * largest power of two up to VSOCK_CONN_BUF that grow_limit allows. */
static uint32_t ring_limit(const struct vsock_dev *dev, const struct vsock_conn *c)
{
	uint32_t limit = grow_limit(dev, c->buf_cap);
	uint32_t cap = c->buf_cap ? c->buf_cap : RING_MIN;

	while (cap < VSOCK_CONN_BUF && cap * 2 <= limit)
		cap *= 2;
	return cap;
}

const uint8_t *vsock_conn_queued(const struct vsock_conn *c, uint32_t off, uint32_t *len)
{
	uint32_t at = (c->buf_head + off) % c->buf_cap;

	if (*len > c->buf_cap - at)
		*len = c->buf_cap - at;
	return c->buf + at;
}

/* Moves the queue into a ring of at least `need` bytes, unwrapped. */
static int ring_grow(struct vsock_dev *dev, struct vsock_conn *c, uint32_t need)
{
	uint32_t cap = c->buf_cap ? c->buf_cap : RING_MIN;
	uint8_t *p;

	while (cap < need)
		cap *= 2;
	p = malloc(cap);
	if (!p)
		return -1;
	for (uint32_t done = 0; done < c->buf_len;) {
		uint32_t n = c->buf_len - done;
		const uint8_t *src = vsock_conn_queued(c, done, &n);

		memcpy(p + done, src, n);
		done += n;
	}
	free(c->buf);
	c->buf = p;
	c->buf_cap = cap;
	c->buf_head = 0;
	account(dev, c);
	return 0;
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
static uint32_t send_room(const struct vsock_dev *dev, const struct vsock_conn *c)
{
	uint32_t credit = peer_credit(c);
	uint32_t room = ring_limit(dev, c) - c->buf_len;

	if (credit <= c->buf_len)
		return 0;
	return credit - c->buf_len < room ? credit - c->buf_len : room;
}

static bool can_send(const struct vsock_conn *c)
{
	return c->state == CONN_ESTABLISHED && !(c->local_shut & VSOCK_SHUTDOWN_SEND) &&
	       !(c->peer_shut & VSOCK_SHUTDOWN_RCV);
}

static uint32_t enqueue(struct vsock_dev *dev, struct vsock_conn *c, const uint8_t *src,
			uint32_t len)
{
	uint32_t room = send_room(dev, c);
	uint32_t n = len < room ? len : room;

	if (!n)
		return 0;
	if (c->buf_len + n > c->buf_cap && ring_grow(dev, c, c->buf_len + n) < 0)
		return 0;
	for (uint32_t done = 0; done < n;) {
		uint32_t at = (c->buf_head + c->buf_len) % c->buf_cap;
		uint32_t k = c->buf_cap - at;

		if (k > n - done)
			k = n - done;
		memcpy(c->buf + at, src + done, k);
		c->buf_len += k;
		done += k;
	}
	return n;
}

static void drop_queued(struct vsock_dev *dev, struct vsock_conn *c)
{
	free(c->buf);
	c->buf = NULL;
	c->buf_head = c->buf_len = c->buf_cap = 0;
	account(dev, c);
}

/* Small windows (the share) are topped up at half, large ones when less
 * than one maximal packet is left. */
static void maybe_credit_update(struct vsock_dev *dev, struct vsock_conn *c)
{
	uint32_t seen_free = c->rx_win - (c->rx_cnt - c->fwd_sent);
	uint32_t low = c->rx_win / 2 < VSOCK_MAX_PAYLOAD ? c->rx_win / 2 : VSOCK_MAX_PAYLOAD;
	uint32_t fwd, win;

	if (seen_free > low)
		return;
	rx_grant(dev, c, &fwd, &win);
	if (win - (c->rx_cnt - fwd) > seen_free)
		mark(dev, c, PEND_CREDIT);
}

/* The host or the device itself consumed `n` bytes from the guest. */
static void consumed(struct vsock_dev *dev, struct vsock_conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	account(dev, c);
	maybe_credit_update(dev, c);
}

static void maybe_writable(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (!c->want_write || !c->host_attached || !can_send(c) || !send_room(dev, c))
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
	rx_grant(dev, c, &h->fwd_cnt, &h->buf_alloc);
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
	c->rx_win = h->buf_alloc;
	account(dev, c);
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
		c->buf_head = (c->buf_head + n) % c->buf_cap;
		c->buf_len -= n;
		c->tx_cnt += n;
		if (!c->buf_len)
			drop_queued(dev, c);
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
	bool seen = len && memchr(p, VSOCK_HEARTBEAT_BYTE, len);

	consumed(dev, c, len);
	if (!seen || c->heartbeat_told)
		return;
	/* Once per connection: echoing every byte would let the guest queue
	 * host memory without reading any of it. */
	c->heartbeat_told = true;
	if (can_send(c) && enqueue(dev, c, &beat, 1))
		mark(dev, c, 0);
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

	/* Held to the credit it was told, not to what the host has read
	 * since: the difference is what the memory cap holds back. */
	if (!live || (c->peer_shut & VSOCK_SHUTDOWN_SEND) ||
	    h->len > c->rx_win - (c->rx_cnt - c->fwd_sent)) {
		kill(dev, c, true, true);
		return;
	}
	c->rx_cnt += h->len;
	if (c->heartbeat) {
		heartbeat_rx(dev, c, payload, h->len);
	} else if (!c->host_attached || !dev->ops->data) {
		consumed(dev, c, h->len); /* nobody to read it: discarded */
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
		drop_queued(dev, c); /* it will not read them */
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
	n = enqueue(dev, c, buf, want);
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
	consumed(dev, c, bytes);
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
		dev->nclosing++;
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
