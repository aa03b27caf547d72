/* The virtio-vsock device against a fake guest driven the way Linux's
 * vmw_vsock_virtio_transport drives it (rx buffers posted ahead, one packet
 * per tx chain, header and payload in separate descriptors) and a fake host
 * that records every callback. Malformed packets must give RST or nothing
 * and leave the device working (run under ASan/UBSan too). */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/vsock_conn.h"
#include "vsockdrv.h"

#define MEM_SIZE 0x200000
#define MAX_EV	 2048

struct env {
	struct vdrv d; /* the guest */
	int irq;
	/* the host */
	int accept; /* 0 refuse, 1 accept at once, 2 accept later */
	unsigned connects, connected, closed, heartbeats, writables;
	uint32_t last_port;
	uint64_t last_id, closed_id, shut_id;
	uint32_t shut_flags;
	uint8_t *got; /* data from the guest */
	size_t got_len;
	uint64_t got_id;
	bool discard;	    /* count data from the guest, keep none */
	uint64_t got_total; /* bytes from the guest, ever */
	/* Called from `writable`, as another vCPU or thread would act while
	 * the device works. */
	void (*on_writable)(struct env *e, uint64_t id);
	unsigned reposts; /* rx buffers on_writable may still post */
};

static void fake_irq(void *ctx, int level)
{
	((struct env *)ctx)->irq = level;
}

static int h_connect(void *ctx, uint32_t port, uint64_t id)
{
	struct env *e = ctx;

	e->connects++;
	e->last_port = port;
	e->last_id = id;
	if (e->accept == 1)
		assert_int_equal(vsock_host_connected(e->d.dev, id), 0);
	return e->accept ? 0 : -1;
}

static void h_connected(void *ctx, uint64_t id)
{
	struct env *e = ctx;

	e->connected++;
	e->last_id = id;
}

static void h_data(void *ctx, uint64_t id, const void *buf, size_t len)
{
	struct env *e = ctx;

	e->got_total += len;
	e->got_id = id;
	if (e->discard)
		return;
	assert_true(e->got_len + len <= 2 * VSOCK_CONN_BUF);
	memcpy(e->got + e->got_len, buf, len);
	e->got_len += len;
	e->got_id = id;
}

static void h_writable(void *ctx, uint64_t id)
{
	struct env *e = ctx;

	e->writables++;
	if (e->on_writable)
		e->on_writable(e, id);
}

static void h_shutdown(void *ctx, uint64_t id, uint32_t flags)
{
	struct env *e = ctx;

	e->shut_id = id;
	e->shut_flags |= flags;
}

static void h_closed(void *ctx, uint64_t id)
{
	struct env *e = ctx;

	e->closed++;
	e->closed_id = id;
}

static void h_heartbeat(void *ctx)
{
	((struct env *)ctx)->heartbeats++;
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

/* --- the driver side (the rest is vsockdrv.c) --------------------------- */

static void expect(struct env *e, struct pkt *p, uint16_t op, uint32_t sport, uint32_t dport)
{
	assert_true(vd_rx(&e->d, p));
	assert_int_equal(p->op, op);
	assert_int_equal(p->src_port, sport);
	assert_int_equal(p->dst_port, dport);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	e->got = malloc(2 * VSOCK_CONN_BUF);
	if (vd_mem_init(&e->d, MEM_SIZE) < 0 || !e->got)
		return -1;
	e->accept = 1;
	e->d.dev = vsock_new(GUEST_CID, &e->d.gm, fake_irq, e, &host_ops, e);
	if (!e->d.dev)
		return -1;
	vd_init(&e->d);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	vsock_free(e->d.dev);
	vd_mem_free(&e->d);
	free(e->got);
	free(e);
	return 0;
}

/* Guest port gp connects to host port 5000 and is accepted; returns id. */
static uint64_t open_conn(struct env *e, uint32_t gp, uint32_t buf_alloc)
{
	struct pkt p;

	vd_tx(&e->d, OP_REQUEST, gp, 5000, NULL, 0, 0, buf_alloc, 0);
	expect(e, &p, OP_RESPONSE, 5000, gp);
	return e->last_id;
}

/* --- tests -------------------------------------------------------------- */

static void test_new_and_config(void **state)
{
	struct env *e = *state;
	uint64_t cid = 0;

	assert_null(vsock_new(3, &e->d.gm, NULL, NULL, &host_ops, NULL));
	assert_null(vsock_new(0xffffffff, &e->d.gm, NULL, NULL, &host_ops, NULL));
	assert_int_equal(vd_rd(&e->d, 0x008), 19);
	virtio_mmio_read(vsock_mmio(e->d.dev), 0x100, &cid, 8);
	assert_int_equal(le64toh(cid), GUEST_CID);
	assert_int_equal(vd_rd(&e->d, 0x070), 15);
}

static void test_handshake(void **state)
{
	struct env *e = *state;
	struct pkt p;

	vd_post_rx(&e->d, 8);
	vd_tx(&e->d, OP_REQUEST, 1234, 5000, NULL, 0, 0, 65536, 0);
	assert_int_equal(e->connects, 1);
	assert_int_equal(e->last_port, 5000);
	expect(e, &p, OP_RESPONSE, 5000, 1234);
	assert_int_equal(p.buf_alloc, VSOCK_CONN_BUF);
	assert_int_equal(p.fwd_cnt, 0);
	assert_int_equal(e->irq, 1);
	/* Accepted later: nothing until the host says so. */
	e->accept = 2;
	vd_tx(&e->d, OP_REQUEST, 1235, 5001, NULL, 0, 0, 65536, 0);
	assert_false(vd_rx(&e->d, &p));
	assert_int_equal(vsock_host_connected(e->d.dev, e->last_id), 0);
	expect(e, &p, OP_RESPONSE, 5001, 1235);
	assert_int_equal(vsock_host_connected(e->d.dev, e->last_id), -EINVAL);
	assert_int_equal(vsock_host_connected(e->d.dev, 12345), -ENOENT);
}

static void test_rw_both_ways(void **state)
{
	struct env *e = *state;
	uint8_t big[10000];
	uint32_t total = 0;
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 8);
	id = open_conn(e, 1234, 65536);
	vd_tx(&e->d, OP_RW, 1234, 5000, "hello", 5, 0, 65536, 0);
	assert_int_equal(e->got_len, 5);
	assert_memory_equal(e->got, "hello", 5);
	assert_int_equal(e->got_id, id);
	assert_int_equal(vsock_host_send(e->d.dev, id, "world", 5), 5);
	expect(e, &p, OP_RW, 5000, 1234);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "world", 5);
	/* Larger than one rx buffer: split over several packets. */
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(vsock_host_send(e->d.dev, id, big, sizeof(big)), sizeof(big));
	while (vd_rx(&e->d, &p)) {
		assert_int_equal(p.op, OP_RW);
		assert_true(p.len <= 4096);
		assert_memory_equal(p.data, big + total, p.len);
		total += p.len;
	}
	assert_int_equal(total, sizeof(big));
}

static void test_credit_to_guest(void **state)
{
	struct env *e = *state;
	static uint8_t buf[20000];
	uint32_t total = 0;
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 16);
	id = open_conn(e, 1234, 8192);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, sizeof(buf)), 8192);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, 1), 0);
	while (vd_rx(&e->d, &p))
		total += p.len;
	assert_int_equal(total, 8192);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, 1), 0);
	assert_int_equal(e->writables, 0);
	/* The guest read 4096 and says so. */
	vd_tx(&e->d, OP_CREDIT_UPDATE, 1234, 5000, NULL, 0, 0, 8192, 4096);
	assert_int_equal(e->writables, 1);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, sizeof(buf)), 4096);
	/* A bigger window. */
	vd_tx(&e->d, OP_CREDIT_UPDATE, 1234, 5000, NULL, 0, 0, 65536, 8192);
	assert_int_equal(e->writables, 2);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, sizeof(buf)), sizeof(buf));
	/* Nonsense fwd_cnt (more consumed than sent): no credit, no crash. */
	vd_tx(&e->d, OP_CREDIT_UPDATE, 1234, 5000, NULL, 0, 0, 100, 0);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, 1), 0);
}

/* A guest with a huge window and no rx buffers: the host may queue only
 * VSOCK_CONN_BUF, and is told when delivery makes room. */
static void test_host_queue_cap(void **state)
{
	struct env *e = *state;
	static uint8_t buf[VSOCK_CONN_BUF + 1];
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 1);
	id = open_conn(e, 1234, 0x40000000);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, sizeof(buf)), VSOCK_CONN_BUF);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, 1), 0);
	assert_int_equal(e->writables, 0);
	vd_post_rx(&e->d, 1);
	expect(e, &p, OP_RW, 5000, 1234);
	assert_int_equal(p.len, 4096);
	assert_int_equal(e->writables, 1);
	assert_int_equal(vsock_host_send(e->d.dev, id, buf, sizeof(buf)), 4096);
}

static void test_credit_from_guest(void **state)
{
	struct env *e = *state;
	static uint8_t chunk[VSOCK_MAX_PAYLOAD];
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 1);
	id = open_conn(e, 1234, 65536);
	/* With plenty of room left, consuming is not announced. */
	vd_post_rx(&e->d, 1);
	vd_tx(&e->d, OP_RW, 1234, 5000, chunk, 4096, 0, 65536, 0);
	assert_int_equal(vsock_host_credit(e->d.dev, id, 4096), 0);
	assert_false(vd_rx(&e->d, &p));
	/* The rest of the window it was told (fwd_cnt 0). */
	for (unsigned i = 0; i < 3; i++)
		vd_tx(&e->d, OP_RW, 1234, 5000, chunk, sizeof(chunk), 0, 65536, 0);
	vd_tx(&e->d, OP_RW, 1234, 5000, chunk, sizeof(chunk) - 4096, 0, 65536, 0);
	assert_int_equal(e->got_len, VSOCK_CONN_BUF);
	assert_int_equal(e->closed, 0);
	/* The guest's view is now short of one packet: each credit goes out. */
	assert_int_equal(vsock_host_credit(e->d.dev, id, 100), 0);
	expect(e, &p, OP_CREDIT_UPDATE, 5000, 1234);
	assert_int_equal(p.fwd_cnt, 4196);
	vd_post_rx(&e->d, 1);
	assert_int_equal(vsock_host_credit(e->d.dev, id, VSOCK_MAX_PAYLOAD - 100), 0);
	expect(e, &p, OP_CREDIT_UPDATE, 5000, 1234);
	assert_int_equal(p.fwd_cnt, 4096 + VSOCK_MAX_PAYLOAD);
	assert_int_equal(vsock_host_credit(e->d.dev, id, VSOCK_CONN_BUF), -EINVAL);
	vd_tx(&e->d, OP_RW, 1234, 5000, chunk, sizeof(chunk), 0, 65536, 0);
	assert_int_equal(e->got_len, VSOCK_CONN_BUF + VSOCK_MAX_PAYLOAD);
	vd_post_rx(&e->d, 1);
	assert_int_equal(vsock_host_credit(e->d.dev, id, 4096), 0);
	expect(e, &p, OP_CREDIT_UPDATE, 5000, 1234);
	assert_int_equal(p.fwd_cnt, VSOCK_MAX_PAYLOAD + 8192);
	/* Past the credit it was told (8 KiB), though the host has read 4 KiB
	 * more (the update waits for an rx buffer): RST and closed. */
	assert_int_equal(vsock_host_credit(e->d.dev, id, 4096), 0);
	vd_tx(&e->d, OP_RW, 1234, 5000, chunk, 8192 + 1, 0, 65536, 0);
	vd_post_rx(&e->d, 1);
	expect(e, &p, OP_RST, 5000, 1234);
	assert_int_equal(e->closed, 1);
	assert_int_equal(e->closed_id, id);
	assert_int_equal(vsock_host_send(e->d.dev, id, "x", 1), 0);
}

static void test_credit_request(void **state)
{
	struct env *e = *state;
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 8);
	id = open_conn(e, 1234, 65536);
	vd_tx(&e->d, OP_RW, 1234, 5000, "abc", 3, 0, 65536, 0);
	assert_int_equal(vsock_host_credit(e->d.dev, id, 2), 0);
	vd_tx(&e->d, OP_CREDIT_REQ, 1234, 5000, NULL, 0, 0, 65536, 0);
	expect(e, &p, OP_CREDIT_UPDATE, 5000, 1234);
	assert_int_equal(p.buf_alloc, VSOCK_CONN_BUF);
	assert_int_equal(p.fwd_cnt, 2);
}

static void test_shutdown(void **state)
{
	struct env *e = *state;
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 16);
	/* The guest stops sending; the host still can, then shuts down. */
	id = open_conn(e, 1234, 65536);
	vd_tx(&e->d, OP_SHUTDOWN, 1234, 5000, NULL, 0, 2, 65536, 0);
	assert_int_equal(e->shut_flags, 2);
	assert_int_equal(e->shut_id, id);
	assert_int_equal(vsock_host_send(e->d.dev, id, "bye", 3), 3);
	assert_int_equal(vsock_host_shutdown(e->d.dev, id, 3), 0);
	expect(e, &p, OP_RW, 5000, 1234);
	expect(e, &p, OP_SHUTDOWN, 5000, 1234);
	assert_int_equal(p.flags, 3);
	assert_int_equal(vsock_host_send(e->d.dev, id, "x", 1), 0);
	vd_tx(&e->d, OP_RST, 1234, 5000, NULL, 0, 0, 65536, 0);
	assert_int_equal(e->closed, 1);
	assert_false(vd_rx(&e->d, &p)); /* no RST for an RST */
	/* The guest shuts both ways: we answer RST. */
	id = open_conn(e, 1235, 65536);
	vd_tx(&e->d, OP_SHUTDOWN, 1235, 5000, NULL, 0, 3, 65536, 0);
	expect(e, &p, OP_RST, 5000, 1235);
	assert_int_equal(e->closed, 2);
	assert_int_equal(e->closed_id, id);
	/* The host closes: data, SHUTDOWN, then the guest's RST frees it
	 * without telling the host again. */
	id = open_conn(e, 1236, 65536);
	assert_int_equal(vsock_host_send(e->d.dev, id, "last", 4), 4);
	assert_int_equal(vsock_host_close(e->d.dev, id), 0);
	assert_int_equal(vsock_host_close(e->d.dev, id), -ENOENT);
	expect(e, &p, OP_RW, 5000, 1236);
	expect(e, &p, OP_SHUTDOWN, 5000, 1236);
	assert_int_equal(p.flags, 3);
	vd_tx(&e->d, OP_RW, 1236, 5000, "late", 4, 0, 65536, 0); /* discarded */
	assert_int_equal(e->got_len, 0);
	vd_tx(&e->d, OP_RST, 1236, 5000, NULL, 0, 0, 65536, 0);
	assert_int_equal(e->closed, 2);
	vd_tx(&e->d, OP_RW, 1236, 5000, "gone", 4, 0, 65536, 0);
	expect(e, &p, OP_RST, 5000, 1236);
}

/* The guest stops receiving with data still queued for it: the data is
 * dropped and no rx buffer is spent on it. */
static void test_shutdown_rcv(void **state)
{
	struct env *e = *state;
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 1);
	id = open_conn(e, 1234, 65536);
	assert_int_equal(vsock_host_send(e->d.dev, id, "abc", 3), 3);
	vd_tx(&e->d, OP_SHUTDOWN, 1234, 5000, NULL, 0, 1, 65536, 0);
	assert_int_equal(e->shut_flags, 1);
	assert_int_equal(vsock_host_send(e->d.dev, id, "x", 1), 0);
	vd_post_rx(&e->d, 1);
	assert_false(vd_rx(&e->d, &p));
	vd_tx(&e->d, OP_REQUEST, 1, 5000, NULL, 0, 0, 65536, 0);
	expect(e, &p, OP_RESPONSE, 5000, 1);
	/* It can still send to the host. */
	vd_tx(&e->d, OP_RW, 1234, 5000, "up", 2, 0, 65536, 0);
	assert_int_equal(e->got_id, id);
}

static void test_refused(void **state)
{
	struct env *e = *state;
	struct pkt p;

	vd_post_rx(&e->d, 8);
	e->accept = 0;
	vd_tx(&e->d, OP_REQUEST, 1234, 7777, NULL, 0, 0, 65536, 0);
	assert_int_equal(e->connects, 1);
	expect(e, &p, OP_RST, 7777, 1234);
	assert_int_equal(e->closed, 0);
	/* Packets for a connection that does not exist. */
	vd_tx(&e->d, OP_RW, 1234, 7777, "x", 1, 0, 65536, 0);
	expect(e, &p, OP_RST, 7777, 1234);
	vd_tx(&e->d, OP_RESPONSE, 1, 2, NULL, 0, 0, 65536, 0);
	expect(e, &p, OP_RST, 2, 1);
}

static void test_heartbeat(void **state)
{
	struct env *e = *state;
	uint8_t b = 0xB7;
	struct pkt p;

	vd_post_rx(&e->d, 8);
	assert_int_equal(vsock_heartbeat_time(e->d.dev), 0);
	vd_tx(&e->d, OP_REQUEST, 1000, VSOCK_HEARTBEAT_PORT, NULL, 0, 0, 65536, 0);
	expect(e, &p, OP_RESPONSE, 9000, 1000);
	assert_int_equal(e->connects, 0); /* the device's own */
	vd_tx(&e->d, OP_RW, 1000, 9000, "\x01", 1, 0, 65536, 0);
	assert_false(vd_rx(&e->d, &p));
	assert_int_equal(e->heartbeats, 0);
	vd_tx(&e->d, OP_RW, 1000, 9000, &b, 1, 0, 65536, 0);
	expect(e, &p, OP_RW, 9000, 1000);
	assert_int_equal(p.len, 1);
	assert_int_equal(p.data[0], 0xB7);
	assert_int_equal(e->heartbeats, 1);
	assert_int_not_equal(vsock_heartbeat_time(e->d.dev), 0);
	vd_tx(&e->d, OP_SHUTDOWN, 1000, 9000, NULL, 0, 3, 65536, 1);
	expect(e, &p, OP_RST, 9000, 1000);
	assert_int_equal(e->closed, 0);
}

static void test_host_connect(void **state)
{
	struct env *e = *state;
	uint64_t id, id2;
	struct pkt p;

	vd_post_rx(&e->d, 8);
	assert_int_equal(vsock_host_connect(e->d.dev, 80, 3000, &id), 0);
	assert_int_equal(vsock_host_connect(e->d.dev, 80, 3000, &id2), -EBUSY);
	expect(e, &p, OP_REQUEST, 3000, 80);
	assert_int_equal(p.buf_alloc, VSOCK_CONN_BUF);
	assert_int_equal(vsock_host_send(e->d.dev, id, "x", 1), 0); /* not yet */
	vd_tx(&e->d, OP_RESPONSE, 80, 3000, NULL, 0, 0, 65536, 0);
	assert_int_equal(e->connected, 1);
	assert_int_equal(e->last_id, id);
	assert_int_equal(vsock_host_send(e->d.dev, id, "GET", 3), 3);
	expect(e, &p, OP_RW, 3000, 80);
	/* A second RESPONSE is a protocol error. */
	vd_tx(&e->d, OP_RESPONSE, 80, 3000, NULL, 0, 0, 65536, 0);
	expect(e, &p, OP_RST, 3000, 80);
	assert_int_equal(e->closed, 1);
	/* Refused by the guest. */
	assert_int_equal(vsock_host_connect(e->d.dev, 81, 3001, &id2), 0);
	expect(e, &p, OP_REQUEST, 3001, 81);
	vd_tx(&e->d, OP_RST, 81, 3001, NULL, 0, 0, 0, 0);
	assert_int_equal(e->closed, 2);
	assert_int_equal(e->closed_id, id2);
}

static void test_concurrent(void **state)
{
	struct env *e = *state;
	uint64_t id[16];
	uint32_t seen[16] = {0};
	struct pkt p;

	vd_post_rx(&e->d, 64);
	for (unsigned i = 0; i < 16; i++)
		id[i] = open_conn(e, 2000 + i, 65536);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 16; i++) {
			uint8_t b[2] = {(uint8_t)i, (uint8_t)round};

			e->got_len = 0;
			vd_tx(&e->d, OP_RW, 2000 + i, 5000, b, 2, 0, 65536, 0);
			assert_int_equal(e->got_id, id[i]);
			assert_memory_equal(e->got, b, 2);
			assert_int_equal(vsock_host_send(e->d.dev, id[i], b, 2), 2);
		}
		vd_post_rx(&e->d, 16);
	}
	while (vd_rx(&e->d, &p)) {
		unsigned i = p.dst_port - 2000;

		assert_int_equal(p.op, OP_RW);
		assert_true(i < 16);
		assert_int_equal(p.len, 2);
		assert_int_equal(p.data[0], i);
		assert_int_equal(p.data[1], seen[i]);
		seen[i]++;
	}
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(seen[i], 3);
}

static void test_backlog_until_rx(void **state)
{
	struct env *e = *state;
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 1);
	vd_tx(&e->d, OP_REQUEST, 1234, 5000, NULL, 0, 0, 65536, 0);
	id = e->last_id;
	expect(e, &p, OP_RESPONSE, 5000, 1234);
	assert_int_equal(vsock_host_send(e->d.dev, id, "queued", 6), 6);
	vd_tx(&e->d, OP_REQUEST, 1, 7, NULL, 0, 0, 0, 0); /* accepted, RESPONSE waits */
	assert_false(vd_rx(&e->d, &p));
	vd_post_rx(&e->d, 4);
	expect(e, &p, OP_RW, 5000, 1234);
	assert_memory_equal(p.data, "queued", 6);
	expect(e, &p, OP_RESPONSE, 7, 1);
}

static void test_malformed(void **state)
{
	struct env *e = *state;
	struct pkt q = {GUEST_CID, 3, 1234, 5000, 0, 1, OP_RW, 0, 65536, 0, {0}};
	uint8_t b[HDR];
	uint64_t id;
	struct pkt p;

	vd_post_rx(&e->d, 32);
	/* Short header: dropped. */
	vd_encode(&q, b);
	vd_tx_raw(&e->d, b, 20, NULL, 0);
	assert_false(vd_rx(&e->d, &p));
	id = open_conn(e, 1234, 65536);
	/* len larger than the chain: RST, and the connection dies. */
	q.len = 100;
	vd_encode(&q, b);
	vd_tx_raw(&e->d, b, HDR, (const uint8_t *)"abc", 3);
	expect(e, &p, OP_RST, 5000, 1234);
	assert_int_equal(e->closed, 1);
	assert_int_equal(e->closed_id, id);
	assert_int_equal(e->got_len, 0);
	/* Huge len. */
	id = open_conn(e, 1234, 65536);
	q.len = 0xffffffff;
	vd_encode(&q, b);
	vd_tx_raw(&e->d, b, HDR, (const uint8_t *)"abc", 3);
	expect(e, &p, OP_RST, 5000, 1234);
	/* Wrong source CID: dropped. */
	q.len = 0;
	q.src_cid = 99;
	vd_encode(&q, b);
	vd_tx_raw(&e->d, b, HDR, NULL, 0);
	assert_false(vd_rx(&e->d, &p));
	/* Bad type, bad ops: RST each. */
	q.src_cid = GUEST_CID;
	q.op = OP_REQUEST;
	q.type = 2;
	vd_encode(&q, b);
	vd_tx_raw(&e->d, b, HDR, NULL, 0);
	expect(e, &p, OP_RST, 5000, 1234);
	q.type = 1;
	q.op = 0;
	vd_encode(&q, b);
	vd_tx_raw(&e->d, b, HDR, NULL, 0);
	expect(e, &p, OP_RST, 5000, 1234);
	q.op = 99;
	vd_encode(&q, b);
	vd_tx_raw(&e->d, b, HDR, NULL, 0);
	expect(e, &p, OP_RST, 5000, 1234);
	assert_int_equal(e->connects, 2);
	/* REQUEST on a live connection kills it. */
	id = open_conn(e, 1234, 65536);
	vd_tx(&e->d, OP_REQUEST, 1234, 5000, NULL, 0, 0, 65536, 0);
	expect(e, &p, OP_RST, 5000, 1234);
	assert_int_equal(e->closed_id, id);
	assert_false(vd_rx(&e->d, &p));
	assert_false(vsock_mmio(e->d.dev)->broken);
	/* The device still works. */
	id = open_conn(e, 4321, 65536);
	vd_tx(&e->d, OP_RW, 4321, 5000, "ok", 2, 0, 65536, 0);
	assert_int_equal(e->got_id, id);
	assert_memory_equal(e->got, "ok", 2);
}

/* RSTs addressed from CID 2 (wrong destination) fail vd_rx()'s CID check, so
 * read the used ring by hand. */
static void test_wrong_dst_cid(void **state)
{
	struct env *e = *state;
	struct pkt q = {GUEST_CID, 2, 1234, 5000, 0, 1, OP_REQUEST, 0, 65536, 0, {0}};
	uint8_t b[HDR];
	uint16_t used_idx;
	struct pkt p;

	vd_post_rx(&e->d, 4);
	vd_encode(&q, b);
	vd_tx_raw(&e->d, b, HDR, NULL, 0);
	assert_int_equal(guestmem_read(&e->d.gm, USED(0) + 2, &used_idx, 2), 0);
	assert_int_equal(used_idx, 1);
	vd_decode(guestmem_ptr(&e->d.gm, RXBUF, HDR), &p);
	assert_int_equal(p.op, OP_RST);
	assert_int_equal(p.src_cid, 2);
	assert_int_equal(p.dst_port, 1234);
	assert_int_equal(e->connects, 0);
}

static void test_table_full(void **state)
{
	struct env *e = *state;
	uint64_t last = 0;
	struct pkt p;

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		vd_post_rx(&e->d, 1);
		last = open_conn(e, 10000 + i, 65536);
	}
	vd_post_rx(&e->d, 1);
	vd_tx(&e->d, OP_REQUEST, 1, 5000, NULL, 0, 0, 65536, 0);
	expect(e, &p, OP_RST, 5000, 1);
	assert_int_equal(e->connects, VSOCK_MAX_CONNS);
	assert_int_equal(vsock_host_connect(e->d.dev, 1, 2, &last), -ENOSPC);
	/* A connection the host let go is reclaimed for a new one. */
	assert_int_equal(vsock_host_close(e->d.dev, e->last_id), 0);
	vd_post_rx(&e->d, 1);
	expect(e, &p, OP_SHUTDOWN, 5000, 10000 + VSOCK_MAX_CONNS - 1);
	vd_post_rx(&e->d, 2);
	vd_tx(&e->d, OP_REQUEST, 1, 5000, NULL, 0, 0, 65536, 0);
	expect(e, &p, OP_RST, 5000, 10000 + VSOCK_MAX_CONNS - 1);
	expect(e, &p, OP_RESPONSE, 5000, 1);
}

static void test_guest_reset(void **state)
{
	struct env *e = *state;

	vd_post_rx(&e->d, 8);
	open_conn(e, 1, 65536);
	open_conn(e, 2, 65536);
	vd_tx(&e->d, OP_REQUEST, 3, 9000, NULL, 0, 0, 65536, 0);
	vd_init(&e->d); /* writes 0 to Status first */
	assert_int_equal(e->closed, 2);
	vd_post_rx(&e->d, 8);
	open_conn(e, 1, 65536);
}

static void test_bad_rx_buffers(void **state)
{
	struct env *e = *state;
	struct pkt p;

	/* A header split over two descriptors. (One too small for a header
	 * fails the queue: test_rx_header_short_buffers_break_queue.) */
	vd_put_desc(&e->d, 0, 1, RXBUF + RXSZ, 20, F_WRITE | F_NEXT, 2);
	vd_put_desc(&e->d, 0, 2, RXBUF + RXSZ + 20, RXSZ - 20, F_WRITE, 0);
	vd_post(&e->d, 0, 1);
	e->d.posted_rx = 3;
	vd_tx(&e->d, OP_REQUEST, 1234, 5000, NULL, 0, 0, 65536, 0);
	assert_true(vd_rx(&e->d, &p));
	assert_int_equal(p.op, OP_RESPONSE);
	assert_int_equal(p.dst_port, 1234);
	/* A broken rx ring fails the device instead of crashing. */
	vd_put_desc(&e->d, 0, 3, 0xfffffffff000ull, 64, F_WRITE, 0);
	vd_post(&e->d, 0, 3);
	assert_int_equal(vsock_host_send(e->d.dev, e->last_id, "x", 1), 1);
	assert_true(vsock_mmio(e->d.dev)->broken);
}

/* --- budgets: what a hostile guest can make the device do --------------- */

static uint16_t rx_used_idx(struct env *e)
{
	uint16_t idx;

	assert_int_equal(guestmem_read(&e->d.gm, USED(0) + 2, &idx, 2), 0);
	return idx;
}

/* Posts rx buffer `b` of `len` bytes (no kick). */
static void post_rx_len(struct env *e, uint16_t b, uint32_t len)
{
	vd_put_desc(&e->d, 0, b, RXBUF + (uint64_t)b * RXSZ, len, F_WRITE, 0);
	vd_post(&e->d, 0, b);
}

/* Rx buffers too short for a packet header are the driver's error: the
 * device fails instead of handing them back empty for the driver to post
 * again, forever. */
static void test_rx_header_short_buffers_break_queue(void **state)
{
	struct env *e = *state;
	uint32_t elem[2];
	uint64_t id;

	vd_post_rx(&e->d, 1);
	id = open_conn(e, 1234, 65536);
	for (uint16_t b = 1; b <= 8; b++)
		post_rx_len(e, b, HDR - 1);
	e->d.posted_rx = 9;
	vd_wr(&e->d, 0x050, 0);
	assert_int_equal(vsock_host_send(e->d.dev, id, "x", 1), 1);
	assert_true(vsock_mmio(e->d.dev)->broken);
	assert_false(vd_used(&e->d, elem));
}

/* Reposts the used tiny buffer and keeps the host's data coming, from
 * inside the device's delivery, as a guest's other vCPU would. */
static void repost_tiny(struct env *e, uint64_t id)
{
	static const uint8_t two[2];

	if (!e->reposts)
		return;
	e->reposts--;
	post_rx_len(e, (uint16_t)(e->d.posted_rx++ % QSIZE), HDR + 1);
	vsock_host_send(e->d.dev, id, two, sizeof(two));
}

/* Buffers of a header and one byte are valid, and a guest that keeps
 * posting them while the host keeps sending must not keep the caller in
 * the device: each call fills at most VSOCK_RX_BUDGET buffers, and the
 * next kick goes on where it stopped. */
static void test_rx_budget_tiny_buffers_do_not_spin(void **state)
{
	struct env *e = *state;
	static uint8_t big[VSOCK_CONN_BUF + 1];
	uint16_t before;
	uint64_t id;

	vd_post_rx(&e->d, 1);
	id = open_conn(e, 1234, 0x40000000);
	for (uint16_t b = 0; b < QSIZE; b++)
		post_rx_len(e, b, HDR + 1);
	e->d.posted_rx = QSIZE;
	e->on_writable = repost_tiny;
	e->reposts = 5 * VSOCK_RX_BUDGET;
	before = rx_used_idx(e);
	assert_true(vsock_host_send(e->d.dev, id, big, sizeof(big)) > 0);
	assert_true((uint16_t)(rx_used_idx(e) - before) <= VSOCK_RX_BUDGET);
	assert_true(e->reposts > 0);
	/* Reposts last for four more budgets: each kick takes one. */
	for (unsigned kick = 0; kick < 4; kick++) {
		uint16_t at = rx_used_idx(e);

		vd_wr(&e->d, 0x050, 0);
		assert_true((uint16_t)(rx_used_idx(e) - at) <= VSOCK_RX_BUDGET);
		assert_true(rx_used_idx(e) != at);
	}
	assert_false(vsock_mmio(e->d.dev)->broken);
}

/* The guest floods the heartbeat port without posting rx buffers: the
 * device answers one 0xB7 per connection, and what it queues stays within
 * VSOCK_MEM_MAX. */
static void test_heartbeat_flood_answered_once(void **state)
{
	struct env *e = *state;
	static uint8_t beats[4096];
	uint32_t win[64];
	unsigned echoed = 0;
	struct pkt p;

	memset(beats, VSOCK_HEARTBEAT_BYTE, sizeof(beats));
	vd_post_rx(&e->d, 64);
	for (uint32_t i = 0; i < 64; i++) {
		vd_tx(&e->d, OP_REQUEST, 1000 + i, VSOCK_HEARTBEAT_PORT, NULL, 0, 0, 0x40000000, 0);
		expect(e, &p, OP_RESPONSE, VSOCK_HEARTBEAT_PORT, 1000 + i);
		win[i] = p.buf_alloc;
	}
	for (uint32_t i = 0; i < 64; i++) {
		for (uint32_t sent = 0; sent + sizeof(beats) <= win[i]; sent += sizeof(beats))
			vd_tx(&e->d, OP_RW, 1000 + i, VSOCK_HEARTBEAT_PORT, beats, sizeof(beats), 0,
			      0x40000000, 0);
		assert_true(vsock_mem_bytes(e->d.dev) <= VSOCK_MEM_MAX);
	}
	assert_int_equal(e->heartbeats, 64);
	for (unsigned round = 0; round < 64; round++) {
		vd_post_rx(&e->d, 64);
		while (vd_rx(&e->d, &p)) {
			if (p.op != OP_RW)
				continue;
			for (uint32_t i = 0; i < p.len; i++)
				assert_int_equal(p.data[i], VSOCK_HEARTBEAT_BYTE);
			echoed += p.len;
		}
	}
	assert_int_equal(echoed, 64);
}

/* Every connection fills the window it was given toward a host that reads
 * nothing: the guest's credit stops before the device's total does. */
static void test_many_conns_guest_windows_capped(void **state)
{
	struct env *e = *state;
	static uint8_t chunk[VSOCK_MAX_PAYLOAD];
	uint64_t first = 0;
	uint32_t win = 0, first_win = 0;
	struct pkt p;

	e->discard = true;
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		uint32_t gp = 10000 + i;

		vd_post_rx(&e->d, 1);
		vd_tx(&e->d, OP_REQUEST, gp, 5000, NULL, 0, 0, 65536, 0);
		expect(e, &p, OP_RESPONSE, 5000, gp);
		win = p.buf_alloc;
		if (i == 0) {
			first = e->last_id;
			first_win = win;
		}
		for (uint32_t sent = 0; sent < win;) {
			uint32_t n = win - sent < sizeof(chunk) ? win - sent : sizeof(chunk);

			vd_tx(&e->d, OP_RW, gp, 5000, chunk, n, 0, 65536, 0);
			sent += n;
		}
	}
	assert_int_equal(e->closed, 0);
	assert_true(e->got_total <= VSOCK_MEM_MAX);
	assert_true(vsock_mem_bytes(e->d.dev) <= VSOCK_MEM_MAX);
	assert_true(win <= VSOCK_MEM_SHARE);
	/* Past the credit it was told: cut off. */
	vd_post_rx(&e->d, 1);
	vd_tx(&e->d, OP_RW, 10000 + VSOCK_MAX_CONNS - 1, 5000, chunk, 1, 0, 65536, 0);
	expect(e, &p, OP_RST, 5000, 10000 + VSOCK_MAX_CONNS - 1);
	assert_int_equal(e->closed, 1);
	/* The host reads the first connection's bytes: its credit comes back. */
	assert_int_equal(vsock_host_credit(e->d.dev, first, first_win), 0);
	vd_post_rx(&e->d, 1);
	expect(e, &p, OP_CREDIT_UPDATE, 5000, 10000);
	assert_int_equal(p.fwd_cnt, first_win);
	assert_true(p.buf_alloc - (first_win - p.fwd_cnt) >= VSOCK_MEM_SHARE);
}

/* The host queues all it may for every connection of a guest that posts
 * no rx buffers: the device's total stays within VSOCK_MEM_MAX, the later
 * connections get only their share, and delivery makes room again. */
static void test_many_conns_host_queues_capped(void **state)
{
	struct env *e = *state;
	static uint8_t big[VSOCK_CONN_BUF];
	static uint64_t ids[VSOCK_MAX_CONNS];
	uint64_t total = 0;
	size_t took = 0;
	struct pkt p;

	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		vd_post_rx(&e->d, 1);
		ids[i] = open_conn(e, 10000 + i, 0x40000000);
	}
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		took = vsock_host_send(e->d.dev, ids[i], big, sizeof(big));
		total += took;
		assert_true(vsock_mem_bytes(e->d.dev) <= VSOCK_MEM_MAX);
	}
	assert_true(total <= VSOCK_MEM_MAX);
	assert_true(took > 0 && took <= VSOCK_MEM_SHARE);
	assert_int_equal(vsock_host_send(e->d.dev, ids[VSOCK_MAX_CONNS - 1], big, 1), 0);
	vd_post_rx(&e->d, QSIZE);
	while (vd_rx(&e->d, &p))
		;
	assert_true(e->writables > 0);
}

/* Connection i's ports: 32 guest ports and 32 host ports that differ only
 * in their high bits. */
static void lookup_ports(unsigned i, uint32_t *gp, uint32_t *hp)
{
	*gp = (i % 32) << 16 | 7;
	*hp = 5000 + i / 32 * 1024;
}

/* Many connections, with ports chosen to share low bits, some closed and
 * their port pairs reused: every packet still reaches its own connection. */
static void test_conn_lookup_many_conns_and_closes(void **state)
{
	struct env *e = *state;
	static uint64_t ids[VSOCK_MAX_CONNS];
	const unsigned n = VSOCK_MAX_CONNS;
	struct pkt p;

	e->discard = true;
	for (unsigned i = 0; i < n; i++) {
		uint32_t gp, hp;

		lookup_ports(i, &gp, &hp);
		vd_post_rx(&e->d, 1);
		vd_tx(&e->d, OP_REQUEST, gp, hp, NULL, 0, 0, 65536, 0);
		expect(e, &p, OP_RESPONSE, hp, gp);
		ids[i] = e->last_id;
	}
	for (unsigned i = 0; i < n; i += 3) {
		uint32_t gp, hp;

		lookup_ports(i, &gp, &hp);
		vd_tx(&e->d, OP_RST, gp, hp, NULL, 0, 0, 65536, 0);
		assert_int_equal(e->closed_id, ids[i]);
		ids[i] = 0;
	}
	for (unsigned i = 0; i < n; i++) {
		uint32_t gp, hp;

		lookup_ports(i, &gp, &hp);
		e->got_id = 0;
		vd_tx(&e->d, OP_RW, gp, hp, "k", 1, 0, 65536, 0);
		if (ids[i]) {
			assert_int_equal(e->got_id, ids[i]);
			continue;
		}
		/* Gone: RST, then the pair is free for a new connection. */
		assert_int_equal(e->got_id, 0);
		vd_post_rx(&e->d, 1);
		expect(e, &p, OP_RST, hp, gp);
		vd_post_rx(&e->d, 1);
		vd_tx(&e->d, OP_REQUEST, gp, hp, NULL, 0, 0, 65536, 0);
		expect(e, &p, OP_RESPONSE, hp, gp);
		ids[i] = e->last_id;
	}
	for (unsigned i = 0; i < n; i++) {
		uint32_t gp, hp;
		uint64_t other;

		lookup_ports(i, &gp, &hp);
		vd_tx(&e->d, OP_RW, gp, hp, "k", 1, 0, 65536, 0);
		assert_int_equal(e->got_id, ids[i]);
		assert_int_equal(vsock_host_connect(e->d.dev, gp, hp, &other), -EBUSY);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_new_and_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handshake, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rw_both_ways, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_credit_to_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_queue_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_credit_from_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_credit_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_rcv, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_connect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backlog_until_rx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_dst_cid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guest_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_rx_buffers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_header_short_buffers_break_queue, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_rx_budget_tiny_buffers_do_not_spin, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_flood_answered_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_conns_guest_windows_capped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_conns_host_queues_capped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_conn_lookup_many_conns_and_closes, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
