/* vsock.c: the virtio-vsock device's queue side: taking the guest's packets
 * off the tx queue, checking them, and filling the guest's rx buffers with
 * what the connections (vsock_conn.c) have to say.
 *
 * Every tx packet's header and payload are copied out of guest memory once,
 * then checked:
 *  - fewer than 44 readable bytes, or a source CID other than the guest's:
 *    dropped (there is no one to answer);
 *  - a destination other than CID 3, a type other than STREAM, a length
 *    over 64 KiB or past the end of the chain, an unknown op: answered with
 *    RST (never an RST for an RST), and a connection they name is killed.
 * A malformed queue (bad descriptors) fails the device as the transport
 * does for any device.
 *
 * Toward the guest, connectionless RSTs go first, then the connections with
 * something to send, round-robin one packet each. With no rx buffer posted
 * the packets wait, bounded: a connection's state is a few flags plus at
 * most VSOCK_CONN_BUF bytes (all of them together VSOCK_MEM_MAX), and RSTs
 * past VSOCK_RST_QUEUE are dropped (the guest's connect or close then times
 * out). Delivery resumes when the guest kicks the rx queue. One kick or
 * host call fills at most VSOCK_RX_BUDGET buffers; what is left goes out on
 * the next (a driver kicks whenever it posts buffers). An rx buffer too
 * short for a header fails the device, as a malformed queue does. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/le.h"
#include "devices/vsock_conn.h"

#define RXQ	 0
#define TXQ	 VSOCK_TXQ
#define INT_USED 1u
/* Chains taken per kick, so one notify cannot keep the vCPU forever. */
#define TX_BUDGET (4 * VIRTQ_MAX_SIZE)

/* Wire layout (little-endian, packed, spec 5.10.6). */
static void hdr_decode(const uint8_t *p, struct vsock_hdr *h)
{
	h->src_cid = le64_get(p);
	h->dst_cid = le64_get(p + 8);
	h->src_port = le32_get(p + 16);
	h->dst_port = le32_get(p + 20);
	h->len = le32_get(p + 24);
	h->type = le16_get(p + 28);
	h->op = le16_get(p + 30);
	h->flags = le32_get(p + 32);
	h->buf_alloc = le32_get(p + 36);
	h->fwd_cnt = le32_get(p + 40);
}

static void hdr_encode(const struct vsock_hdr *h, uint8_t *p)
{
	le64_put(p, h->src_cid);
	le64_put(p + 8, h->dst_cid);
	le32_put(p + 16, h->src_port);
	le32_put(p + 20, h->dst_port);
	le32_put(p + 24, h->len);
	le16_put(p + 28, h->type);
	le16_put(p + 30, h->op);
	le32_put(p + 32, h->flags);
	le32_put(p + 36, h->buf_alloc);
	le32_put(p + 40, h->fwd_cnt);
}

void vsock_queue_rst(struct vsock_dev *dev, uint64_t src_cid, uint32_t src_port, uint32_t dst_port)
{
	struct vsock_hdr *h;

	if (dev->rst_n == VSOCK_RST_QUEUE)
		return;
	h = &dev->rst[(dev->rst_head + dev->rst_n++) % VSOCK_RST_QUEUE];
	memset(h, 0, sizeof(*h));
	h->src_cid = src_cid;
	h->dst_cid = dev->guest_cid;
	h->src_port = src_port;
	h->dst_port = dst_port;
	h->type = VSOCK_TYPE_STREAM;
	h->op = VSOCK_OP_RST;
	vsock_kick_rx(dev);
}

/* Writes one header plus payload into the guest's chain and hands it back. */
static int put_packet(struct vsock_dev *dev, const struct virtq_chain *ch,
		      const struct vsock_hdr *h, const struct vsock_conn *c)
{
	struct virtq *q = &dev->mmio.vq[RXQ];
	uint8_t raw[VSOCK_HDR_SIZE];
	uint32_t done = 0;

	hdr_encode(h, raw);
	if (virtq_chain_write(ch, dev->gm, 0, raw, sizeof(raw)) != VSOCK_HDR_SIZE)
		return -1;
	while (done < h->len) {
		uint32_t n = h->len - done;
		const uint8_t *p = vsock_conn_queued(c, done, &n);

		if (virtq_chain_write(ch, dev->gm, VSOCK_HDR_SIZE + done, p, n) != n)
			return -1;
		done += n;
	}
	return virtq_push(q, dev->gm, ch->head, VSOCK_HDR_SIZE + h->len);
}

/* Sends one waiting packet into `ch`; -1 when the queue is broken. */
static int deliver_one(struct vsock_dev *dev, const struct virtq_chain *ch)
{
	uint64_t room = ch->writable_len - VSOCK_HDR_SIZE;
	struct vsock_conn *c;
	struct vsock_hdr h;
	uint32_t n;

	if (dev->rst_n) {
		h = dev->rst[dev->rst_head];
		if (put_packet(dev, ch, &h, NULL) < 0)
			return -1;
		dev->rst_head = (dev->rst_head + 1) % VSOCK_RST_QUEUE;
		dev->rst_n--;
		return 0;
	}
	c = vsock_conn_next(dev);
	if (!c) /* rx_waiting said otherwise; hand the buffer back */
		return virtq_push(&dev->mmio.vq[RXQ], dev->gm, ch->head, 0);
	n = vsock_conn_build(dev, c, &h,
			     room > VSOCK_MAX_PAYLOAD ? VSOCK_MAX_PAYLOAD : (uint32_t)room);
	if (put_packet(dev, ch, &h, c) < 0)
		return -1;
	vsock_conn_sent(dev, c, &h, n);
	return 0;
}

/* Also drops connections from the list that have nothing left to send,
 * so no rx buffer is taken for nothing. */
static bool rx_waiting(struct vsock_dev *dev)
{
	return dev->rst_n || vsock_conn_next(dev);
}

/* Fills posted rx buffers while packets wait, at most `budget` of them;
 * returns how many it took. A buffer too small for a header is the
 * driver's error (Linux posts a header and a page): the queue fails, as
 * for a bad descriptor, since handing it back empty would let the driver
 * post it again forever. */
static unsigned deliver(struct vsock_dev *dev, unsigned budget)
{
	struct virtq *q = &dev->mmio.vq[RXQ];
	unsigned taken = 0;
	bool pushed = false;
	int r = 0;

	while (taken < budget && !dev->mmio.broken && rx_waiting(dev)) {
		struct virtq_chain ch;

		r = virtq_pop(q, dev->gm, &ch);
		if (r <= 0)
			break;
		taken++;
		r = ch.writable_len < VSOCK_HDR_SIZE ? -1 : deliver_one(dev, &ch);
		if (r < 0)
			break;
		pushed = true;
	}
	if (r < 0)
		virtio_mmio_fail(&dev->mmio);
	if (pushed)
		virtio_mmio_interrupt(&dev->mmio, INT_USED);
	return taken;
}

/* Delivery runs at depth 0 only and counts as a level itself, so a
 * callback it causes (writable) that sends more just asks for another
 * round instead of recursing. All rounds share one budget; when it runs
 * out, rx_wanted stays set and the next kick or host call goes on. */
void vsock_kick_rx(struct vsock_dev *dev)
{
	unsigned left = VSOCK_RX_BUDGET;

	dev->rx_wanted = true;
	if (dev->depth)
		return;
	dev->depth++;
	while (dev->rx_wanted && left) {
		dev->rx_wanted = false;
		left -= deliver(dev, left);
	}
	if (!left)
		dev->rx_wanted = true;
	dev->depth--;
}

/* Host calls and tx processing nest through callbacks; delivery to the
 * guest waits for the outermost to finish, so it never runs in the middle
 * of a state change. */
void vsock_enter(struct vsock_dev *dev)
{
	dev->depth++;
}

void vsock_leave(struct vsock_dev *dev)
{
	if (--dev->depth == 0 && dev->rx_wanted)
		vsock_kick_rx(dev);
}

/* Checks a header; -1 drop silently, 1 answer with RST, 0 good. */
static int check_hdr(const struct vsock_dev *dev, const struct vsock_hdr *h, uint64_t payload_max)
{
	if (h->src_cid != dev->guest_cid)
		return -1;
	if (h->dst_cid != VSOCK_PARENT_CID || h->type != VSOCK_TYPE_STREAM)
		return 1;
	if (h->len > VSOCK_MAX_PAYLOAD || h->len > payload_max)
		return 1;
	if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
		return 1;
	return 0;
}

/* Answers a bad packet: RST, and the connection it names (if any) dies. */
static void refuse(struct vsock_dev *dev, const struct vsock_hdr *h)
{
	struct vsock_hdr rst = *h;

	if (h->op == VSOCK_OP_RST)
		return;
	if (h->dst_cid == VSOCK_PARENT_CID) {
		/* Reuse the connection path: an RST op kills it quietly. */
		rst.op = VSOCK_OP_RST;
		rst.len = 0;
		vsock_conn_recv(dev, &rst, NULL);
	}
	vsock_queue_rst(dev, h->dst_cid, h->dst_port, h->src_port);
}

static int handle_tx(struct vsock_dev *dev, const struct virtq_chain *ch)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	const uint8_t *payload;
	struct vsock_hdr h;
	int r;

	if (ch->readable_len < VSOCK_HDR_SIZE)
		return 0;
	if (virtq_chain_read(ch, dev->gm, 0, raw, sizeof(raw)) != VSOCK_HDR_SIZE)
		return -1;
	hdr_decode(raw, &h);
	r = check_hdr(dev, &h, ch->readable_len - VSOCK_HDR_SIZE);
	if (r < 0)
		return 0;
	if (r > 0) {
		refuse(dev, &h);
		return 0;
	}
	/* Payloads are passed on, never parsed, so they need no private copy
	 * when they lie in one buffer (Linux's usually do). */
	payload = h.len ? virtq_chain_span(ch, dev->gm, VSOCK_HDR_SIZE, h.len) : NULL;
	if (h.len && !payload) {
		if (virtq_chain_read(ch, dev->gm, VSOCK_HDR_SIZE, dev->pkt, h.len) != h.len)
			return -1;
		payload = dev->pkt;
	}
	vsock_conn_recv(dev, &h, payload);
	return 0;
}

static void process_tx(struct vsock_dev *dev)
{
	struct virtq *q = &dev->mmio.vq[TXQ];
	bool pushed = false;
	int r = 0;

	vsock_enter(dev);
	for (unsigned i = 0; i < TX_BUDGET && !dev->mmio.broken; i++) {
		struct virtq_chain ch;

		r = virtq_pop(q, dev->gm, &ch);
		if (r <= 0)
			break;
		r = handle_tx(dev, &ch);
		if (r == 0)
			r = virtq_push(q, dev->gm, ch.head, 0);
		if (r < 0)
			break;
		pushed = true;
	}
	if (r < 0)
		virtio_mmio_fail(&dev->mmio);
	if (pushed)
		virtio_mmio_interrupt(&dev->mmio, INT_USED);
	vsock_leave(dev);
}

static void vsock_notify(void *opaque, unsigned queue)
{
	struct vsock_dev *dev = opaque;

	/* The event queue only holds buffers for events we never send. */
	if (queue == TXQ)
		process_tx(dev);
	else if (queue == RXQ)
		vsock_kick_rx(dev);
}

static void vsock_config_read(void *opaque, uint32_t off, void *data, unsigned len)
{
	struct vsock_dev *dev = opaque;
	uint64_t cid = htole64(dev->guest_cid);

	/* The transport already bounded off + len by config_len. */
	if (off < sizeof(cid) && len <= sizeof(cid) - off)
		memcpy(data, (uint8_t *)&cid + off, len);
}

static void vsock_reset(void *opaque)
{
	struct vsock_dev *dev = opaque;

	/* The guest forgot every socket; so does the host. */
	vsock_enter(dev);
	vsock_conn_reset_all(dev, true);
	dev->rst_n = 0;
	dev->rx_wanted = false;
	dev->depth--;
}

static const struct virtio_dev_ops vsock_ops = {
    .device_id = VSOCK_DEVICE_ID,
    /* No feature bits: stream sockets are implied (spec 5.10.3). */
    .features = 0,
    .num_queues = 3,
    .queue_max = 256,
    .config_len = 8,
    .config_read = vsock_config_read,
    .queue_notify = vsock_notify,
    .reset = vsock_reset,
};

struct vsock_dev *vsock_new(uint64_t guest_cid, const struct guestmem *gm,
			    void (*set_irq)(void *ctx, int level), void *irq_ctx,
			    const struct vsock_host_ops *ops, void *ctx)
{
	struct vsock_dev *dev;

	if (guest_cid <= VSOCK_PARENT_CID || guest_cid >= 0xffffffffu || !gm || !ops) {
		errno = EINVAL;
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	dev->gm = gm;
	dev->guest_cid = guest_cid;
	dev->ops = ops;
	dev->ctx = ctx;
	dev->rxq_head = dev->rxq_tail = -1;
	vsock_conn_init(dev);
	virtio_mmio_init(&dev->mmio, &vsock_ops, dev, gm, set_irq, irq_ctx);
	return dev;
}

void vsock_free(struct vsock_dev *dev)
{
	if (!dev)
		return;
	vsock_conn_reset_all(dev, false);
	free(dev);
}

struct virtio_mmio *vsock_mmio(struct vsock_dev *dev)
{
	return &dev->mmio;
}

size_t vsock_mem_bytes(const struct vsock_dev *dev)
{
	return dev->mem;
}

uint64_t vsock_heartbeat_time(const struct vsock_dev *dev)
{
	return dev->heartbeat_ns;
}
