/* The emulated device's host side seen through the parent-side vsock
 * interface (pvsock_from_device): every call reaches the device with its
 * arguments and its result comes back unchanged, and the lock is the one
 * given. The guest is the fake driver of vsockdrv.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nectl/pvsock.h"
#include "vsockdrv.h"

#define MEM_SIZE 0x200000

struct env {
	struct vdrv d;
	struct pvsock pv;
	unsigned locks, unlocks, connects, connected;
	uint64_t last_id;
	size_t got;
};

static void no_irq(void *ctx, int level)
{
	(void)ctx;
	(void)level;
}

static void count_lock(void *ctx)
{
	((struct env *)ctx)->locks++;
}

static void count_unlock(void *ctx)
{
	((struct env *)ctx)->unlocks++;
}

/* Accepts later: the test answers through the pvsock. */
static int h_connect(void *ctx, uint32_t port, uint64_t id)
{
	struct env *e = ctx;

	e->connects++;
	e->last_id = id;
	return 0;
}

static void h_connected(void *ctx, uint64_t id)
{
	struct env *e = ctx;

	e->connected++;
	e->last_id = id;
}

static void h_data(void *ctx, uint64_t id, const void *buf, size_t len)
{
	((struct env *)ctx)->got += len;
}

static const struct vsock_host_ops host_ops = {
    .connect = h_connect, .connected = h_connected, .data = h_data};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || vd_mem_init(&e->d, MEM_SIZE) < 0)
		return -1;
	e->d.dev = vsock_new(GUEST_CID, &e->d.gm, no_irq, NULL, &host_ops, e);
	if (!e->d.dev)
		return -1;
	pvsock_from_device(&e->pv, e->d.dev, count_lock, count_unlock, e);
	vd_init(&e->d);
	vd_post_rx(&e->d, 16);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	vsock_free(e->d.dev);
	vd_mem_free(&e->d);
	free(e);
	return 0;
}

static void expect(struct env *e, struct pkt *p, uint16_t op, uint32_t sport, uint32_t dport)
{
	assert_true(vd_rx(&e->d, p));
	assert_int_equal(p->op, op);
	assert_int_equal(p->src_port, sport);
	assert_int_equal(p->dst_port, dport);
}

static void test_lock_is_the_given_one(void **state)
{
	struct env *e = *state;

	assert_ptr_equal(e->pv.t, e->d.dev);
	assert_ptr_equal(e->pv.lock_ctx, e);
	pvsock_lock(&e->pv);
	pvsock_unlock(&e->pv);
	assert_int_equal(e->locks, 1);
	assert_int_equal(e->unlocks, 1);
}

/* The guest connects, the host accepts through the pvsock, data flows both
 * ways, credit is checked by the device, and the host shuts down and
 * closes. */
static void test_guest_connection(void **state)
{
	struct env *e = *state;
	struct pkt p;
	uint64_t id;

	vd_tx(&e->d, OP_REQUEST, 1234, 5000, NULL, 0, 0, 65536, 0);
	assert_int_equal(e->connects, 1);
	id = e->last_id;
	assert_false(vd_rx(&e->d, &p));
	assert_int_equal(pvsock_send(&e->pv, id, "x", 1), 0); /* not yet accepted */
	assert_int_equal(pvsock_connected(&e->pv, id), 0);
	expect(e, &p, OP_RESPONSE, 5000, 1234);
	assert_int_equal(pvsock_connected(&e->pv, id), -EINVAL);
	assert_int_equal(pvsock_connected(&e->pv, 12345), -ENOENT);

	vd_tx(&e->d, OP_RW, 1234, 5000, "hello", 5, 0, 65536, 0);
	assert_int_equal(e->got, 5);
	assert_int_equal(pvsock_credit(&e->pv, id, 6), -EINVAL);
	assert_int_equal(pvsock_credit(&e->pv, id, 5), 0);
	assert_int_equal(pvsock_credit(&e->pv, 12345, 1), -ENOENT);
	assert_int_equal(pvsock_send(&e->pv, id, "world", 5), 5);
	expect(e, &p, OP_RW, 5000, 1234);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "world", 5);

	assert_int_equal(pvsock_shutdown(&e->pv, id, VSOCK_SHUTDOWN_SEND), 0);
	expect(e, &p, OP_SHUTDOWN, 5000, 1234);
	assert_int_equal(p.flags, VSOCK_SHUTDOWN_SEND);
	assert_int_equal(pvsock_shutdown(&e->pv, 12345, VSOCK_SHUTDOWN_SEND), -ENOENT);
	assert_int_equal(pvsock_close(&e->pv, id), 0);
	expect(e, &p, OP_SHUTDOWN, 5000, 1234);
	assert_int_equal(p.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
	assert_int_equal(pvsock_close(&e->pv, id), -ENOENT);
}

/* The host connects into the enclave through the pvsock. */
static void test_host_connection(void **state)
{
	struct env *e = *state;
	uint64_t id, id2;
	struct pkt p;

	assert_int_equal(pvsock_connect(&e->pv, 80, 3000, &id), 0);
	assert_int_equal(pvsock_connect(&e->pv, 80, 3000, &id2), -EBUSY);
	expect(e, &p, OP_REQUEST, 3000, 80);
	vd_tx(&e->d, OP_RESPONSE, 80, 3000, NULL, 0, 0, 65536, 0);
	assert_int_equal(e->connected, 1);
	assert_int_equal(e->last_id, id);
	assert_int_equal(pvsock_send(&e->pv, id, "GET", 3), 3);
	expect(e, &p, OP_RW, 3000, 80);
	assert_memory_equal(p.data, "GET", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lock_is_the_given_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guest_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_connection, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
