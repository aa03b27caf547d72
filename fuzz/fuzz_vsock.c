/* fuzz_vsock.c: a hostile guest (and a busy host) against the virtio-vsock
 * device. The device is brought up the way Linux does it, then the input
 * is a script of records:
 *
 *   0 tx:    u8 split, u16 len (LE), len bytes: one packet as the guest
 *            writes it (header and payload), in one descriptor or split
 *            after `split` bytes into two;
 *   1 rx:    u8 n, u8 size: post n % 8 rx buffers of min(size * 16,
 *            2048) bytes;
 *   2 host:  u8 op, u8 which, u16 arg: a vsock_host_* call on one of the
 *            connections the host holds (send, credit, shutdown, close,
 *            connect, connected);
 *   3 evil:  u8 queue, u16 desc, u32 addr, u16 len, u8 flags: a raw
 *            descriptor posted on a queue;
 *   4 reset: the guest resets and re-initialises the device.
 * The record kind is the first byte modulo 5; a short record ends the run.
 *
 * The host echoes what it receives and accepts ports by their low bits, so
 * callbacks re-enter the device. Besides crashes it traps on broken
 * promises: every rx packet is addressed to the guest, carries at most
 * 64 KiB, and fills exactly the used length; queued bytes and the guest's
 * unconsumed bytes stay within VSOCK_CONN_BUF, and the device's total
 * within VSOCK_MEM_MAX, its sums matching its connections; the connection
 * map and the free list hold every slot exactly once. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vsock_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE   0x40000
#define QSIZE	   64
#define RING(q)	   (0x1000 + 0x1000 * (uint64_t)(q)) /* desc; avail +0x400, used +0x600 */
#define TXBUF	   0x10000
#define RXBUF	   0x20000
#define RXSLOT	   0x800
#define GUEST_CID  5
#define MAX_IDS	   16
#define FULL_CHECK 16 /* records between walks over the whole table */

struct fz {
	struct guestmem gm;
	struct vsock_dev *dev;
	uint16_t avail[3], used_seen, rx_next;
	uint16_t rx_len[QSIZE];
	bool evil_rx; /* rx buffers may alias: stop checking their contents */
	uint64_t ids[MAX_IDS];
	unsigned nids, calls;
};

static void fz_add_id(struct fz *f, uint64_t id)
{
	f->ids[f->nids++ % MAX_IDS] = id;
}

static int fz_connect(void *ctx, uint32_t port, uint64_t id)
{
	struct fz *f = ctx;

	if (port & 1)
		return -1;
	fz_add_id(f, id);
	if (!(port & 2))
		vsock_host_connected(f->dev, id);
	return 0;
}

static void fz_connected(void *ctx, uint64_t id)
{
	fz_add_id(ctx, id);
}

static void fz_data(void *ctx, uint64_t id, const void *buf, size_t len)
{
	struct fz *f = ctx;

	vsock_host_send(f->dev, id, buf, len);
	if (f->calls++ & 1)
		vsock_host_credit(f->dev, id, (uint32_t)len);
}

static void fz_closed(void *ctx, uint64_t id)
{
	struct fz *f = ctx;

	/* A dead id must be harmless. */
	if (vsock_host_send(f->dev, id, "x", 1) != 0)
		abort();
}

static const struct vsock_host_ops fz_ops = {
    .connect = fz_connect,
    .connected = fz_connected,
    .data = fz_data,
    .closed = fz_closed,
};

static void fz_wr(struct fz *f, uint64_t off, uint32_t v)
{
	virtio_mmio_write(vsock_mmio(f->dev), off, &v, 4);
}

static void fz_init(struct fz *f)
{
	fz_wr(f, 0x070, 0);
	fz_wr(f, 0x070, 3);
	fz_wr(f, 0x024, 1);
	fz_wr(f, 0x020, 1);
	fz_wr(f, 0x070, 11);
	for (unsigned q = 0; q < 3; q++) {
		memset(f->gm.r[0].hva + RING(q), 0, 0x1000);
		fz_wr(f, 0x030, q);
		fz_wr(f, 0x038, QSIZE);
		fz_wr(f, 0x080, (uint32_t)RING(q));
		fz_wr(f, 0x090, (uint32_t)RING(q) + 0x400);
		fz_wr(f, 0x0a0, (uint32_t)RING(q) + 0x600);
		fz_wr(f, 0x044, 1);
	}
	fz_wr(f, 0x070, 15);
	memset(f->avail, 0, sizeof(f->avail));
	f->used_seen = 0;
	f->rx_next = 0;
}

static void fz_desc(struct fz *f, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	uint8_t *d = f->gm.r[0].hva + RING(q) + 16 * (uint64_t)(i % QSIZE);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void fz_post(struct fz *f, unsigned q, uint16_t head)
{
	uint8_t *avail = f->gm.r[0].hva + RING(q) + 0x400;
	uint16_t idx = ++f->avail[q];

	memcpy(avail + 4 + 2 * ((idx - 1) % QSIZE), &head, 2);
	memcpy(avail + 2, &idx, 2);
	fz_wr(f, 0x050, q);
}

static void fz_tx(struct fz *f, uint8_t split, const uint8_t *p, uint16_t len)
{
	uint16_t d = (uint16_t)((f->avail[1] * 2) % QSIZE);

	/* A u16 length always fits the 64 KiB between TXBUF and RXBUF. */
	memcpy(f->gm.r[0].hva + TXBUF, p, len);
	if (split && split < len) {
		fz_desc(f, 1, d, TXBUF, split, 1, (uint16_t)(d + 1));
		fz_desc(f, 1, (uint16_t)(d + 1), TXBUF + split, len - split, 0, 0);
	} else {
		fz_desc(f, 1, d, TXBUF, len, 0, 0);
	}
	fz_post(f, 1, d);
}

static void fz_rx(struct fz *f, uint8_t n, uint8_t size)
{
	uint32_t len = (uint32_t)size * 16 > RXSLOT ? RXSLOT : (uint32_t)size * 16;

	for (unsigned i = 0; i < n % 8; i++) {
		uint16_t d = f->rx_next++ % QSIZE;

		f->rx_len[d] = (uint16_t)len;
		fz_desc(f, 0, d, RXBUF + (uint64_t)d * RXSLOT, len, 2, 0);
		fz_post(f, 0, d);
	}
}

static void fz_host(struct fz *f, uint8_t op, uint8_t which, uint16_t arg)
{
	static const uint8_t junk[4096];
	uint64_t id = f->nids ? f->ids[which % MAX_IDS] : (uint64_t)which;

	switch (op % 6) {
	case 0:
		vsock_host_send(f->dev, id, junk, arg % sizeof(junk));
		break;
	case 1:
		vsock_host_credit(f->dev, id, arg);
		break;
	case 2:
		vsock_host_shutdown(f->dev, id, arg);
		break;
	case 3:
		vsock_host_close(f->dev, id);
		break;
	case 4:
		if (vsock_host_connect(f->dev, which, arg, &id) == 0)
			fz_add_id(f, id);
		break;
	case 5:
		vsock_host_connected(f->dev, id);
		break;
	}
}

static void fz_evil(struct fz *f, const uint8_t *r)
{
	uint32_t addr, len16 = (uint32_t)(r[6] | r[7] << 8);
	uint16_t desc = (uint16_t)(r[1] | r[2] << 8);

	memcpy(&addr, r + 3, 4);
	if (r[0] % 3 == 0)
		f->evil_rx = true;
	fz_desc(f, r[0] % 3, desc, addr, len16, r[8], (uint16_t)(desc + 1));
	fz_post(f, r[0] % 3, desc);
}

/* Checks what the device wrote into rx buffers since last time. */
static void fz_check_rx(struct fz *f)
{
	const uint8_t *used = f->gm.r[0].hva + RING(0) + 0x600;
	uint16_t idx;

	if (vsock_mmio(f->dev)->broken || f->evil_rx)
		return;
	memcpy(&idx, used + 2, 2);
	for (; f->used_seen != idx; f->used_seen++) {
		uint32_t head, len, plen;
		uint64_t cid;
		const uint8_t *b;

		memcpy(&head, used + 4 + 8 * (f->used_seen % QSIZE), 4);
		memcpy(&len, used + 8 + 8 * (f->used_seen % QSIZE), 4);
		if (head >= QSIZE || len > f->rx_len[head])
			abort();
		if (len == 0)
			continue; /* a buffer handed back unused */
		b = f->gm.r[0].hva + RXBUF + (uint64_t)head * RXSLOT;
		memcpy(&cid, b + 8, 8);
		memcpy(&plen, b + 24, 4);
		if (len < VSOCK_HDR_SIZE || cid != GUEST_CID || plen != len - VSOCK_HDR_SIZE ||
		    plen > VSOCK_MAX_PAYLOAD)
			abort();
	}
}

/* A connection's share of the device's sums, as vsock_conn.c counts it. */
static size_t fz_over_share(uint32_t n)
{
	return n > VSOCK_MEM_SHARE ? n - VSOCK_MEM_SHARE : 0;
}

static void fz_check_mem(const struct vsock_dev *dev)
{
	size_t mem = 0, pool = 0;

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		const struct vsock_conn *c = &dev->conn[i];
		uint32_t t = c->rx_win - (c->fwd_cnt - c->fwd_sent);

		if (!c->id)
			continue;
		if (c->buf_len > c->buf_cap || c->buf_cap > VSOCK_CONN_BUF ||
		    c->rx_win > VSOCK_CONN_BUF || c->rx_cnt - c->fwd_sent > c->rx_win ||
		    c->fwd_cnt - c->fwd_sent > c->rx_cnt - c->fwd_sent)
			abort();
		mem += t + c->buf_cap;
		pool += fz_over_share(t) + fz_over_share(c->buf_cap);
	}
	if (mem != dev->mem || pool != dev->pool_used || pool > VSOCK_MEM_POOL ||
	    mem > VSOCK_MEM_MAX || vsock_mem_bytes(dev) != mem)
		abort();
}

/* Every live slot in exactly one chain, every free one in the free list. */
static void fz_check_map(const struct vsock_dev *dev)
{
	static uint8_t seen[VSOCK_MAX_CONNS];
	unsigned live = 0, free_n = 0;

	memset(seen, 0, sizeof(seen));
	for (unsigned b = 0; b < VSOCK_HASH_SIZE; b++)
		for (int i = dev->hash[b]; i >= 0; i = dev->conn[i].hnext) {
			if (i >= VSOCK_MAX_CONNS || seen[i]++ || !dev->conn[i].id)
				abort();
			live++;
		}
	for (int i = dev->free_head; i >= 0; i = dev->conn[i].hnext) {
		if (i >= VSOCK_MAX_CONNS || seen[i]++ || dev->conn[i].id)
			abort();
		free_n++;
	}
	if (live != dev->nconns || live + free_n != VSOCK_MAX_CONNS)
		abort();
}

static void fz_check_conns(const struct vsock_dev *dev)
{
	unsigned n = 0;

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		const struct vsock_conn *c = &dev->conn[i];

		if (!c->id)
			continue;
		n++;
		if (c->buf_len > VSOCK_CONN_BUF || c->rx_cnt - c->fwd_cnt > VSOCK_CONN_BUF)
			abort();
	}
	if (n != dev->nconns)
		abort();
	fz_check_mem(dev);
	fz_check_map(dev);
}

/* Runs one record; returns the bytes it took, 0 when the input ends. */
static size_t fz_step(struct fz *f, const uint8_t *p, size_t left)
{
	uint16_t len;

	switch (p[0] % 5) {
	case 0:
		if (left < 4)
			return 0;
		len = (uint16_t)(p[2] | p[3] << 8);
		if (len > left - 4)
			len = (uint16_t)(left - 4);
		fz_tx(f, p[1], p + 4, len);
		return 4 + (size_t)len;
	case 1:
		if (left < 3)
			return 0;
		fz_rx(f, p[1], p[2]);
		return 3;
	case 2:
		if (left < 5)
			return 0;
		fz_host(f, p[1], p[2], (uint16_t)(p[3] | p[4] << 8));
		return 5;
	case 3:
		if (left < 10)
			return 0;
		fz_evil(f, p + 1);
		return 10;
	default:
		fz_init(f);
		return 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t mem[MEM_SIZE] __attribute__((aligned(4096)));
	struct fz f = {0};
	size_t off = 0;

	memset(mem, 0, sizeof(mem));
	f.gm.n = 1;
	f.gm.r[0] = (struct guestmem_region){0, MEM_SIZE, mem};
	f.dev = vsock_new(GUEST_CID, &f.gm, NULL, NULL, &fz_ops, &f);
	if (!f.dev)
		return 0;
	fz_init(&f);
	for (unsigned step = 1; off < size; step++) {
		size_t n = fz_step(&f, data + off, size - off);

		if (!n)
			break;
		off += n;
		fz_check_rx(&f);
		/* The totals every time; the walks over every slot, which
		 * would find a drift that lasts, every FULL_CHECK records. */
		if (f.dev->mem > VSOCK_MEM_MAX || f.dev->pool_used > VSOCK_MEM_POOL)
			abort();
		if (step % FULL_CHECK == 0)
			fz_check_conns(f.dev);
	}
	fz_check_conns(f.dev);
	vsock_free(f.dev);
	return 0;
}
