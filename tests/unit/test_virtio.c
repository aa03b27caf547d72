/* The virtio-mmio transport and split virtqueues against a fake guest: two
 * malloc'd regions of guest memory, a driver that writes registers and rings
 * the way Linux does, and a device that echoes requests back. Malformed
 * queues must give -1 or a broken device, never a crash (run under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nectl/virtio.h"

#define REGION_SIZE 0x10000
#define R1_GPA	    0x100000 /* second region; [0x10000, 0x100000) is a hole */

#define F_NEXT	   1
#define F_WRITE	   2
#define F_INDIRECT 4

#define S_ACK	      1u
#define S_DRIVER      2u
#define S_DRIVER_OK   4u
#define S_FEATURES_OK 8u
#define S_NEEDS_RESET 64u

/* Guest addresses of queue q's rings. */
#define DESC(q)	 (0x1000 + 0x3000 * (uint64_t)(q))
#define AVAIL(q) (0x2000 + 0x3000 * (uint64_t)(q))
#define USED(q)	 (0x3000 + 0x3000 * (uint64_t)(q))
#define DATA	 0x8000

#define DEV_FEATURES ((1ull << 0) | (1ull << 3) | (1ull << 28)) /* 28: INDIRECT */
#define VERSION_1    (1ull << 32)

struct env {
	struct guestmem gm;
	struct virtio_mmio m;
	struct virtio_dev_ops ops;
	int irq_level;
	unsigned irq_calls;
	unsigned notified[VIRTIO_MMIO_MAX_QUEUES];
	unsigned resets;
	int last_pop;
	char got[64];
};

static struct env *env_of(void *dev)
{
	return dev;
}

static void fake_irq(void *ctx, int level)
{
	struct env *e = ctx;

	e->irq_level = level;
	e->irq_calls++;
}

static void fake_config(void *dev, uint32_t off, void *data, unsigned len)
{
	uint8_t *p = data;

	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(0xa0 + off + i);
}

/* Echoes every request upper-cased into the writable part. */
static void fake_notify(void *dev, unsigned queue)
{
	struct env *e = env_of(dev);
	struct virtq *q = &e->m.vq[queue];
	struct virtq_chain c;

	e->notified[queue]++;
	while ((e->last_pop = virtq_pop(q, &e->gm, &c)) == 1) {
		int64_t n;

		memset(e->got, 0, sizeof(e->got));
		n = virtq_chain_read(&c, &e->gm, 0, e->got, sizeof(e->got) - 1);
		assert_true(n >= 0);
		for (int64_t i = 0; i < n; i++)
			if (e->got[i] >= 'a' && e->got[i] <= 'z')
				e->got[i] -= 'a' - 'A';
		n = virtq_chain_write(&c, &e->gm, 0, e->got, (uint64_t)n);
		assert_true(n >= 0);
		assert_int_equal(virtq_push(q, &e->gm, c.head, (uint32_t)n), 0);
		virtio_mmio_interrupt(&e->m, 1);
	}
	if (e->last_pop < 0)
		virtio_mmio_fail(&e->m);
}

static void fake_reset(void *dev)
{
	env_of(dev)->resets++;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	e->gm.n = 2;
	e->gm.r[0] = (struct guestmem_region){0, REGION_SIZE, aligned_alloc(4096, REGION_SIZE)};
	e->gm.r[1] =
	    (struct guestmem_region){R1_GPA, REGION_SIZE, aligned_alloc(4096, REGION_SIZE)};
	if (!e->gm.r[0].hva || !e->gm.r[1].hva)
		return -1;
	memset(e->gm.r[0].hva, 0, REGION_SIZE);
	memset(e->gm.r[1].hva, 0, REGION_SIZE);
	e->ops = (struct virtio_dev_ops){
	    .device_id = 19,
	    .features = DEV_FEATURES,
	    .num_queues = 3,
	    .queue_max = 256,
	    .config_len = 8,
	    .config_read = fake_config,
	    .queue_notify = fake_notify,
	    .reset = fake_reset,
	};
	virtio_mmio_init(&e->m, &e->ops, e, &e->gm, fake_irq, e);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	free(e->gm.r[0].hva);
	free(e->gm.r[1].hva);
	free(e);
	return 0;
}

/* --- the driver side ---------------------------------------------------- */

static void wr(struct env *e, uint64_t off, uint32_t v)
{
	virtio_mmio_write(&e->m, off, &v, 4);
}

static uint32_t rd(struct env *e, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	virtio_mmio_read(&e->m, off, &v, 4);
	return v;
}

static void gw(struct env *e, uint64_t gpa, const void *src, size_t len)
{
	assert_int_equal(guestmem_write(&e->gm, gpa, src, len), 0);
}

static uint64_t gr(struct env *e, uint64_t gpa, size_t len)
{
	uint64_t v = 0;

	assert_int_equal(guestmem_read(&e->gm, gpa, &v, len), 0);
	return v;
}

static void put_desc(struct env *e, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t d[16];

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	gw(e, table + 16 * (uint64_t)i, d, sizeof(d));
}

/* Makes `head` available in a ring of `size` entries. */
static void post(struct env *e, uint64_t avail, uint16_t size, uint16_t head)
{
	uint16_t idx = (uint16_t)gr(e, avail + 2, 2);

	gw(e, avail + 4 + 2 * (uint64_t)(idx % size), &head, 2);
	idx++;
	gw(e, avail + 2, &idx, 2);
}

static void setup_queue(struct env *e, unsigned q, uint32_t size)
{
	wr(e, 0x030, q);
	assert_int_equal(rd(e, 0x034), 256);
	assert_int_equal(rd(e, 0x044), 0);
	wr(e, 0x038, size);
	wr(e, 0x080, (uint32_t)DESC(q));
	wr(e, 0x084, 0);
	wr(e, 0x090, (uint32_t)AVAIL(q));
	wr(e, 0x094, 0);
	wr(e, 0x0a0, (uint32_t)USED(q));
	wr(e, 0x0a4, 0);
	wr(e, 0x044, 1);
}

/* What Linux's virtio_mmio and virtio core do when probing a device. */
static void driver_init(struct env *e, uint32_t qsize)
{
	uint64_t f;

	wr(e, 0x070, 0);
	wr(e, 0x070, S_ACK);
	wr(e, 0x070, S_ACK | S_DRIVER);
	wr(e, 0x014, 1);
	f = (uint64_t)rd(e, 0x010) << 32;
	wr(e, 0x014, 0);
	f |= rd(e, 0x010);
	assert_true(f & VERSION_1);
	f &= VERSION_1 | (1ull << 3); /* the driver knows bit 3 only */
	wr(e, 0x024, 1);
	wr(e, 0x020, (uint32_t)(f >> 32));
	wr(e, 0x024, 0);
	wr(e, 0x020, (uint32_t)f);
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(rd(e, 0x070), S_ACK | S_DRIVER | S_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++) {
		setup_queue(e, q, qsize);
		assert_int_equal(rd(e, 0x044), 1);
	}
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

/* --- transport ---------------------------------------------------------- */

static void test_identity(void **state)
{
	struct env *e = *state;

	assert_int_equal(rd(e, 0x000), 0x74726976);
	assert_int_equal(rd(e, 0x004), 2);
	assert_int_equal(rd(e, 0x008), 19);
	assert_int_not_equal(rd(e, 0x00c), 0);
	/* Only VERSION_1 of the transport bits is offered, never INDIRECT. */
	wr(e, 0x014, 0);
	assert_int_equal(rd(e, 0x010), (1u << 0) | (1u << 3));
	wr(e, 0x014, 1);
	assert_int_equal(rd(e, 0x010), 1);
	wr(e, 0x014, 2);
	assert_int_equal(rd(e, 0x010), 0);
}

static void test_init_sequence(void **state)
{
	struct env *e = *state;

	driver_init(e, 128);
	assert_int_equal(rd(e, 0x070), 0xf);
	assert_int_equal(e->m.drv_features, VERSION_1 | (1ull << 3));
	assert_int_equal(e->resets, 1);
	for (unsigned q = 0; q < 3; q++) {
		assert_true(e->m.vq[q].ready);
		assert_int_equal(e->m.vq[q].size, 128);
		assert_int_equal(e->m.vq[q].desc, DESC(q));
		assert_int_equal(e->m.vq[q].avail, AVAIL(q));
		assert_int_equal(e->m.vq[q].used, USED(q));
	}
	/* A queue past num_queues has no size and cannot be enabled. */
	wr(e, 0x030, 3);
	assert_int_equal(rd(e, 0x034), 0);
	wr(e, 0x044, 1);
	assert_int_equal(rd(e, 0x044), 0);
	assert_false(e->m.broken);
}

static void test_features_rejected(void **state)
{
	struct env *e = *state;

	/* A feature the device does not offer (bit 1). */
	wr(e, 0x070, S_ACK | S_DRIVER);
	wr(e, 0x024, 1);
	wr(e, 0x020, 1);
	wr(e, 0x024, 0);
	wr(e, 0x020, 1u << 1);
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(rd(e, 0x070), S_ACK | S_DRIVER);
	/* DRIVER_OK does not stick without FEATURES_OK. */
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	assert_int_equal(rd(e, 0x070), S_ACK | S_DRIVER);
	/* INDIRECT (28) is masked from the offer, so asking for it fails. */
	wr(e, 0x020, 1u << 28);
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(rd(e, 0x070), S_ACK | S_DRIVER);
	/* No VERSION_1: a legacy driver. */
	wr(e, 0x024, 1);
	wr(e, 0x020, 0);
	wr(e, 0x024, 0);
	wr(e, 0x020, 1);
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(rd(e, 0x070), S_ACK | S_DRIVER);
	/* A subset is accepted, and then frozen. */
	wr(e, 0x024, 1);
	wr(e, 0x020, 1);
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(rd(e, 0x070), S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(e, 0x024, 0);
	wr(e, 0x020, 0xffffffff);
	assert_int_equal(e->m.drv_features, VERSION_1 | 1);
}

static void test_notify(void **state)
{
	struct env *e = *state;

	wr(e, 0x070, 0);
	setup_queue(e, 0, 8);
	wr(e, 0x050, 0);
	assert_int_equal(e->notified[0], 0); /* not DRIVER_OK yet */
	driver_init(e, 8);
	wr(e, 0x050, 1);
	assert_int_equal(e->notified[1], 1);
	wr(e, 0x050, 3);
	wr(e, 0x050, 0xffffffff);
	assert_int_equal(e->notified[0] + e->notified[1] + e->notified[2], 1);
	wr(e, 0x030, 2);
	wr(e, 0x044, 0); /* disabled queues are not kicked */
	wr(e, 0x050, 2);
	assert_int_equal(e->notified[2], 0);
	virtio_mmio_fail(&e->m);
	wr(e, 0x050, 1);
	assert_int_equal(e->notified[1], 1);
}

static void test_roundtrip(void **state)
{
	struct env *e = *state;
	char reply[16] = {0};

	driver_init(e, 8);
	gw(e, DATA, "hello ", 6);
	gw(e, DATA + 0x100, "world", 5);
	put_desc(e, DESC(0), 5, DATA, 6, F_NEXT, 2);
	put_desc(e, DESC(0), 2, DATA + 0x100, 5, F_NEXT, 7);
	put_desc(e, DESC(0), 7, DATA + 0x200, 16, F_WRITE, 0);
	post(e, AVAIL(0), 8, 5);
	wr(e, 0x050, 0);

	assert_int_equal(e->last_pop, 0);
	assert_string_equal(e->got, "HELLO WORLD");
	assert_int_equal(guestmem_read(&e->gm, DATA + 0x200, reply, 11), 0);
	assert_memory_equal(reply, "HELLO WORLD", 11);
	assert_int_equal(gr(e, USED(0) + 2, 2), 1);
	assert_int_equal(gr(e, USED(0) + 4, 4), 5);
	assert_int_equal(gr(e, USED(0) + 8, 4), 11);
	assert_int_equal(rd(e, 0x060), 1);
	assert_int_equal(e->irq_level, 1);

	/* A second request fills the next used slot. */
	put_desc(e, DESC(0), 0, DATA, 2, F_NEXT, 1);
	put_desc(e, DESC(0), 1, DATA + 0x300, 4, F_WRITE, 0);
	post(e, AVAIL(0), 8, 0);
	wr(e, 0x050, 0);
	assert_int_equal(gr(e, USED(0) + 2, 2), 2);
	assert_int_equal(gr(e, USED(0) + 12, 4), 0);
	assert_int_equal(gr(e, USED(0) + 16, 4), 2);
	assert_int_equal(e->irq_calls, 1); /* the line was already up */

	wr(e, 0x064, 1);
	assert_int_equal(rd(e, 0x060), 0);
	assert_int_equal(e->irq_level, 0);
}

static void test_interrupt_ack(void **state)
{
	struct env *e = *state;
	uint32_t gen = rd(e, 0x0fc);

	virtio_mmio_interrupt(&e->m, 0);
	assert_int_equal(e->irq_calls, 0);
	virtio_mmio_interrupt(&e->m, 1 | 2 | 8);
	assert_int_equal(rd(e, 0x060), 3);
	assert_int_equal(e->irq_level, 1);
	assert_int_not_equal(rd(e, 0x0fc), gen);
	wr(e, 0x064, 2);
	assert_int_equal(rd(e, 0x060), 1);
	assert_int_equal(e->irq_level, 1);
	wr(e, 0x064, 1);
	assert_int_equal(rd(e, 0x060), 0);
	assert_int_equal(e->irq_level, 0);
	assert_int_equal(e->irq_calls, 2);
}

static void test_reset(void **state)
{
	struct env *e = *state;

	driver_init(e, 16);
	virtio_mmio_interrupt(&e->m, 1);
	virtio_mmio_fail(&e->m);
	assert_true(rd(e, 0x070) & S_NEEDS_RESET);
	wr(e, 0x070, 0);
	assert_int_equal(rd(e, 0x070), 0);
	assert_int_equal(rd(e, 0x060), 0);
	assert_int_equal(e->irq_level, 0);
	assert_false(e->m.broken);
	assert_int_equal(e->m.drv_features, 0);
	assert_int_equal(e->resets, 2);
	for (unsigned q = 0; q < 3; q++) {
		assert_false(e->m.vq[q].ready);
		assert_int_equal(e->m.vq[q].size, 0);
		assert_int_equal(e->m.vq[q].desc, 0);
	}
	/* And it comes up again. */
	driver_init(e, 16);
	assert_int_equal(rd(e, 0x070), 0xf);
}

static void test_bad_widths(void **state)
{
	struct env *e = *state;
	uint8_t b[8];
	uint16_t h = 0xffff;
	uint32_t v = 1;

	memset(b, 0xff, sizeof(b));
	virtio_mmio_read(&e->m, 0x000, b, 2);
	assert_int_equal(b[0] | b[1], 0);
	virtio_mmio_read(&e->m, 0x002, b, 4);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	virtio_mmio_read(&e->m, 0x200, b, 4);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	virtio_mmio_read(&e->m, UINT64_MAX - 1, b, 4);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	virtio_mmio_write(&e->m, 0x070, &h, 2);
	virtio_mmio_write(&e->m, 0x071, &v, 4);
	virtio_mmio_write(&e->m, 0x170, &v, 4);
	assert_int_equal(rd(e, 0x070), 0);
}

static void test_config(void **state)
{
	struct env *e = *state;
	uint8_t b[8] = {0};
	uint64_t q;

	virtio_mmio_read(&e->m, 0x100, &q, 8);
	assert_int_equal(q, 0xa7a6a5a4a3a2a1a0ull);
	virtio_mmio_read(&e->m, 0x106, b, 2);
	assert_int_equal(b[0], 0xa6);
	assert_int_equal(b[1], 0xa7);
	/* Past config_len, across it, or an odd width: zeros. */
	memset(b, 0xff, sizeof(b));
	virtio_mmio_read(&e->m, 0x106, b, 4);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	memset(b, 0xff, sizeof(b));
	virtio_mmio_read(&e->m, 0x1fc, b, 4);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	memset(b, 0xff, sizeof(b));
	virtio_mmio_read(&e->m, 0x100, b, 3);
	assert_int_equal(b[0] | b[1] | b[2], 0);
}

/* --- what the driver did (the machine's probe record) -------------------- */

static void test_probe_never(void **state)
{
	struct env *e = *state;

	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_NONE);
	assert_string_equal(virtio_probe_name(virtio_mmio_probe(&e->m)), "never-probed");
	assert_int_equal(e->m.status_seen, 0);
}

/* An access that is not a probe (a config read, a stray write) is only a
 * touch; reading the magic value is what a driver's probe does first. */
static void test_probe_touch_then_magic(void **state)
{
	struct env *e = *state;
	uint8_t b;

	virtio_mmio_read(&e->m, 0x100, &b, 1);
	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_TOUCHED);
	assert_string_equal(virtio_probe_name(VIRTIO_PROBE_TOUCHED), "touched");
	wr(e, 0x030, 0);
	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_TOUCHED);
	assert_int_equal(rd(e, 0x000), 0x74726976);
	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_MAGIC);
	assert_string_equal(virtio_probe_name(VIRTIO_PROBE_MAGIC), "probed");
	/* Another register read does not lower it. */
	rd(e, 0x008);
	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_MAGIC);
}

/* Linux's full bring-up reaches DRIVER_OK; a later reset keeps the record. */
static void test_probe_driver_ok(void **state)
{
	struct env *e = *state;

	assert_int_equal(rd(e, 0x000), 0x74726976);
	driver_init(e, 8);
	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_DRIVER_OK);
	assert_string_equal(virtio_probe_name(VIRTIO_PROBE_DRIVER_OK), "driver-ok");
	assert_int_equal(e->m.status_seen, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	wr(e, 0x070, 0);
	assert_int_equal(rd(e, 0x070), 0);
	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_DRIVER_OK);
	assert_int_equal(e->m.status_seen, 0xf);
}

/* A driver that stops short: DRIVER_OK written without agreed features does
 * not stick, so the device never went live. */
static void test_probe_stops_short(void **state)
{
	struct env *e = *state;

	assert_int_equal(rd(e, 0x000), 0x74726976);
	wr(e, 0x070, S_ACK);
	wr(e, 0x070, S_ACK | S_DRIVER);
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK); /* no VERSION_1 */
	assert_int_equal(rd(e, 0x070), S_ACK | S_DRIVER);
	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_MAGIC);
	assert_int_equal(e->m.status_seen, S_ACK | S_DRIVER);
	/* A value out of range still has a name. */
	assert_string_equal(virtio_probe_name((enum virtio_probe)99), "unknown");
}

/* A bad-width access is dropped, but it still is an access. */
static void test_probe_bad_width(void **state)
{
	struct env *e = *state;
	uint16_t v = 0;

	virtio_mmio_read(&e->m, 0x000, &v, 2);
	assert_int_equal(v, 0);
	assert_int_equal(virtio_mmio_probe(&e->m), VIRTIO_PROBE_TOUCHED);
}

/* --- queue setup refused ------------------------------------------------ */

static void enable_with(struct env *e, uint32_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(e, 0x070, 0);
	wr(e, 0x030, 0);
	wr(e, 0x038, size);
	wr(e, 0x080, (uint32_t)desc);
	wr(e, 0x084, (uint32_t)(desc >> 32));
	wr(e, 0x090, (uint32_t)avail);
	wr(e, 0x094, (uint32_t)(avail >> 32));
	wr(e, 0x0a0, (uint32_t)used);
	wr(e, 0x0a4, (uint32_t)(used >> 32));
	wr(e, 0x044, 1);
}

static void assert_refused(struct env *e)
{
	assert_int_equal(rd(e, 0x044), 0);
	assert_true(e->m.broken);
	assert_true(rd(e, 0x070) & S_NEEDS_RESET);
}

static void test_queue_refused(void **state)
{
	struct env *e = *state;

	enable_with(e, 128, DESC(0), AVAIL(0), USED(0));
	assert_int_equal(rd(e, 0x044), 1);
	assert_false(e->m.broken);

	enable_with(e, 100, DESC(0), AVAIL(0), USED(0)); /* not a power of two */
	assert_refused(e);
	enable_with(e, 512, DESC(0), AVAIL(0), USED(0)); /* > QueueNumMax */
	assert_refused(e);
	enable_with(e, 0, DESC(0), AVAIL(0), USED(0));
	assert_refused(e);
	enable_with(e, 0x10000, DESC(0), AVAIL(0), USED(0));
	assert_refused(e);
	enable_with(e, 256, REGION_SIZE - 0x800, AVAIL(0), USED(0)); /* desc runs off */
	assert_refused(e);
	enable_with(e, 8, DESC(0), 0x20000, USED(0)); /* avail in the hole */
	assert_refused(e);
	enable_with(e, 8, DESC(0), AVAIL(0), R1_GPA + REGION_SIZE - 8); /* used runs off */
	assert_refused(e);
	enable_with(e, 8, DESC(0), AVAIL(0), 0xfffffffffffffff0ull); /* wraps */
	assert_refused(e);
	enable_with(e, 8, DESC(0) + 8, AVAIL(0), USED(0)); /* misaligned */
	assert_refused(e);
	enable_with(e, 8, DESC(0), AVAIL(0) + 1, USED(0));
	assert_refused(e);
	enable_with(e, 8, DESC(0), AVAIL(0), USED(0) + 2);
	assert_refused(e);
	/* Refused before DRIVER_OK: the config interrupt comes with DRIVER_OK. */
	assert_int_equal(rd(e, 0x060), 0);
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	assert_int_equal(rd(e, 0x060), 0); /* FEATURES_OK was never agreed */
	e->m.drv_features = VERSION_1;
	wr(e, 0x070, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	assert_int_equal(rd(e, 0x060), 2);
	assert_int_equal(e->irq_level, 1);

	/* Rings in the second region are fine. */
	enable_with(e, 8, R1_GPA, R1_GPA + 0x1000, R1_GPA + 0x2000);
	assert_int_equal(rd(e, 0x044), 1);
	assert_false(e->m.broken);
}

static void test_queue_regs_locked(void **state)
{
	struct env *e = *state;

	driver_init(e, 16);
	wr(e, 0x030, 1);
	wr(e, 0x038, 32);
	wr(e, 0x080, 0x5000);
	wr(e, 0x094, 1);
	assert_int_equal(e->m.vq[1].size, 16);
	assert_int_equal(e->m.vq[1].desc, DESC(1));
	assert_int_equal(e->m.vq[1].avail, AVAIL(1));
	/* Disabled, it can be set up again. */
	wr(e, 0x044, 0);
	wr(e, 0x038, 32);
	wr(e, 0x044, 1);
	assert_int_equal(rd(e, 0x044), 1);
	assert_int_equal(e->m.vq[1].size, 32);
}

static void count_broken(void *ctx)
{
	(*(int *)ctx)++;
}

static void test_fail_after_driver_ok(void **state)
{
	struct env *e = *state;
	int broken = 0;

	e->m.on_broken = count_broken;
	e->m.broken_ctx = &broken;
	driver_init(e, 8);
	put_desc(e, DESC(0), 0, 0x50000, 4, 0, 0); /* in the hole */
	post(e, AVAIL(0), 8, 0);
	wr(e, 0x050, 0);
	assert_int_equal(e->last_pop, -1);
	assert_true(e->m.broken);
	/* Told once, however often the guest kicks the broken queue. */
	wr(e, 0x050, 0);
	assert_int_equal(broken, 1);
	assert_int_equal(rd(e, 0x070), 0xf | S_NEEDS_RESET);
	assert_int_equal(rd(e, 0x060), 2);
	assert_int_equal(e->irq_level, 1);
	/* The guest cannot clear NEEDS_RESET except by resetting. */
	wr(e, 0x070, 0xf);
	assert_true(rd(e, 0x070) & S_NEEDS_RESET);
	assert_int_equal(gr(e, USED(0) + 2, 2), 0);
}

/* --- the virtqueue on its own ------------------------------------------- */

static struct virtq make_q(uint16_t size)
{
	return (struct virtq){
	    .size = size, .ready = true, .desc = DESC(0), .avail = AVAIL(0), .used = USED(0)};
}

static void test_pop_empty_and_not_ready(void **state)
{
	struct env *e = *state;
	struct virtq q = make_q(8);
	struct virtq_chain c;

	assert_int_equal(virtq_pop(&q, &e->gm, &c), 0);
	q.ready = false;
	post(e, AVAIL(0), 8, 0);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), 0);
	assert_int_equal(virtq_push(&q, &e->gm, 0, 0), -1);
}

static void test_pop_chain_layout(void **state)
{
	struct env *e = *state;
	struct virtq q = make_q(8);
	struct virtq_chain c;
	char buf[8];

	put_desc(e, DESC(0), 3, DATA, 4, F_NEXT, 4);
	put_desc(e, DESC(0), 4, 0xdeadbeef0000ull, 0, F_NEXT, 6); /* empty: skipped */
	put_desc(e, DESC(0), 6, R1_GPA, 3, F_NEXT, 1);
	put_desc(e, DESC(0), 1, R1_GPA + 8, 10, F_WRITE | F_NEXT, 0);
	put_desc(e, DESC(0), 0, REGION_SIZE - 2, 2, F_WRITE, 0); /* ends at the end */
	gw(e, DATA, "abcd", 4);
	gw(e, R1_GPA, "efg", 3);
	post(e, AVAIL(0), 8, 3);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.readable_len, 7);
	assert_int_equal(c.writable_len, 12);
	assert_false(c.buf[1].writable);
	assert_true(c.buf[2].writable);
	assert_int_equal(c.buf[3].gpa, REGION_SIZE - 2);

	/* Reads and writes start at an offset and cross buffers. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(virtq_chain_read(&c, &e->gm, 2, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "cdefg", 5);
	assert_int_equal(virtq_chain_read(&c, &e->gm, 7, buf, 1), 0);
	assert_int_equal(virtq_chain_write(&c, &e->gm, 9, "WXYZ", 4), 3);
	assert_int_equal(gr(e, R1_GPA + 17, 1), 'W');
	assert_int_equal(gr(e, REGION_SIZE - 2, 2), 'X' | 'Y' << 8);
	assert_int_equal(virtq_chain_write(&c, &e->gm, 100, "W", 1), 0);

	/* In place only within one readable buffer; never the writable part. */
	assert_memory_equal(virtq_chain_span(&c, &e->gm, 1, 3), "bcd", 3);
	assert_memory_equal(virtq_chain_span(&c, &e->gm, 4, 3), "efg", 3);
	assert_null(virtq_chain_span(&c, &e->gm, 2, 3)); /* crosses into "efg" */
	assert_null(virtq_chain_span(&c, &e->gm, 5, 3)); /* past the readable part */
	assert_null(virtq_chain_span(&c, &e->gm, 7, 1));
	assert_null(virtq_chain_span(&c, &e->gm, 0, UINT64_MAX));

	assert_int_equal(virtq_push(&q, &e->gm, c.head, 3), 0);
	assert_int_equal(gr(e, USED(0) + 2, 2), 1);
	assert_int_equal(virtq_push(&q, &e->gm, 8, 0), -1); /* head >= size */
	assert_int_equal(virtq_pop(&q, &e->gm, &c), 0);
}

static void test_ring_wraps(void **state)
{
	struct env *e = *state;
	struct virtq q = make_q(4);
	struct virtq_chain c;
	uint16_t idx = 65534;

	/* The 16-bit indices wrap; entries come from idx % size. */
	q.last_avail = 65534;
	q.used_idx = 65535;
	gw(e, AVAIL(0) + 2, &idx, 2);
	put_desc(e, DESC(0), 1, DATA, 1, 0, 0);
	put_desc(e, DESC(0), 2, DATA, 2, 0, 0);
	post(e, AVAIL(0), 4, 1);
	post(e, AVAIL(0), 4, 2);
	assert_int_equal(gr(e, AVAIL(0) + 2, 2), 0);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), 1);
	assert_int_equal(c.head, 1);
	assert_int_equal(virtq_push(&q, &e->gm, c.head, 0), 0);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), 1);
	assert_int_equal(c.head, 2);
	assert_int_equal(virtq_push(&q, &e->gm, c.head, 0), 0);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), 0);
	assert_int_equal(q.last_avail, 0);
	assert_int_equal(gr(e, USED(0) + 2, 2), 1);
	assert_int_equal(gr(e, USED(0) + 4 + 8 * 3, 4), 1); /* slot 65535 % 4 */
	assert_int_equal(gr(e, USED(0) + 4, 4), 2);
}

/* Pops once from a queue of `size` whose ring holds `head`; the pop must
 * fail and leave the queue where it was. */
static void expect_malformed(struct env *e, uint16_t size, uint16_t head)
{
	struct virtq q = make_q(size);
	struct virtq_chain c;

	post(e, AVAIL(0), size, head);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
	assert_int_equal(q.last_avail, 0);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
}

static void test_bad_addr(void **state)
{
	struct env *e = *state;

	put_desc(e, DESC(0), 0, 0x20000, 16, 0, 0);
	expect_malformed(e, 8, 0);
}

static void test_len_wraps(void **state)
{
	struct env *e = *state;

	/* addr + len wraps to 0x100, which is guest memory. */
	put_desc(e, DESC(0), 0, 0xffffffffffffff00ull, 0x200, 0, 0);
	expect_malformed(e, 8, 0);
}

static void test_len_too_long(void **state)
{
	struct env *e = *state;

	put_desc(e, DESC(0), 0, DATA, 0xffffffff, F_WRITE, 0);
	expect_malformed(e, 8, 0);
}

static void test_loop(void **state)
{
	struct env *e = *state;

	put_desc(e, DESC(0), 0, DATA, 4, F_NEXT, 1);
	put_desc(e, DESC(0), 1, DATA, 4, F_NEXT, 0);
	expect_malformed(e, 8, 0);
}

static void test_self_loop(void **state)
{
	struct env *e = *state;

	put_desc(e, DESC(0), 2, DATA, 0, F_NEXT, 2);
	expect_malformed(e, 8, 2);
}

static void test_chain_limit(void **state)
{
	struct env *e = *state;
	struct virtq q = make_q(128);
	struct virtq_chain c;

	/* 64 descriptors are fine, 65 are not. */
	for (uint16_t i = 0; i < 65; i++)
		put_desc(e, DESC(0), i, DATA + i, 1, F_NEXT, (uint16_t)(i + 1));
	put_desc(e, DESC(0), 64, DATA, 1, 0, 0);
	post(e, AVAIL(0), 128, 1);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), 1);
	assert_int_equal(c.n, 64);
	assert_int_equal(c.readable_len, 64);
	post(e, AVAIL(0), 128, 0);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
	assert_int_equal(q.last_avail, 1);
}

static void test_chain_limit_small_queue(void **state)
{
	struct env *e = *state;

	/* A queue of 4 holds at most 4 descriptors per chain. */
	for (uint16_t i = 0; i < 4; i++)
		put_desc(e, DESC(0), i, DATA, 1, F_NEXT, (uint16_t)((i + 1) % 4));
	expect_malformed(e, 4, 0);
}

static void test_next_out_of_range(void **state)
{
	struct env *e = *state;

	put_desc(e, DESC(0), 0, DATA, 4, F_NEXT, 8);
	expect_malformed(e, 8, 0);
}

static void test_head_out_of_range(void **state)
{
	struct env *e = *state;

	put_desc(e, DESC(0), 0, DATA, 4, 0, 0);
	expect_malformed(e, 8, 8);
}

static void test_write_then_read(void **state)
{
	struct env *e = *state;

	put_desc(e, DESC(0), 0, DATA, 4, F_WRITE | F_NEXT, 1);
	put_desc(e, DESC(0), 1, DATA + 4, 4, 0, 0);
	expect_malformed(e, 8, 0);
}

static void test_indirect(void **state)
{
	struct env *e = *state;

	put_desc(e, DESC(0), 0, DATA, 32, F_INDIRECT, 0);
	expect_malformed(e, 8, 0);
}

static void test_avail_jump(void **state)
{
	struct env *e = *state;
	struct virtq q = make_q(8);
	struct virtq_chain c;
	uint16_t idx = 9;

	put_desc(e, DESC(0), 0, DATA, 4, 0, 0);
	gw(e, AVAIL(0) + 2, &idx, 2);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
	idx = 0xffff; /* "behind" us is a jump too */
	gw(e, AVAIL(0) + 2, &idx, 2);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
	idx = 8; /* exactly a full ring is fine */
	gw(e, AVAIL(0) + 2, &idx, 2);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), 1);
}

static void test_spans_gap(void **state)
{
	struct env *e = *state;
	struct virtq q = make_q(8);
	struct virtq_chain c;

	/* The end of region 0 and the start of region 1 are both memory,
	 * but one buffer may not run from one into the hole after it. */
	put_desc(e, DESC(0), 0, REGION_SIZE - 8, 16, 0, 0);
	expect_malformed(e, 8, 0);
	put_desc(e, DESC(0), 1, R1_GPA - 8, 16, 0, 0);
	post(e, AVAIL(0), 8, 1);
	q.last_avail = 1;
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
}

static void test_rings_outside(void **state)
{
	struct env *e = *state;
	struct virtq q = make_q(8);
	struct virtq_chain c;

	/* A queue set up by hand, bypassing the transport's checks. */
	q.used = 0x30000;
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
	assert_int_equal(virtq_push(&q, &e->gm, 0, 0), -1);
	q = make_q(6);
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
	q = make_q(8);
	q.desc = UINT64_MAX - 15;
	assert_int_equal(virtq_pop(&q, &e->gm, &c), -1);
}

static void test_chain_bad_buffer(void **state)
{
	struct env *e = *state;
	struct virtq_chain c = {.n = 1, .buf = {{0x20000, 4, true}}, .writable_len = 4};
	char b[4] = {0};

	/* A chain not from virtq_pop still goes through the translation. */
	assert_int_equal(virtq_chain_write(&c, &e->gm, 0, b, 4), -1);
	c.buf[0] = (struct virtq_buf){UINT64_MAX - 1, 4, false};
	assert_int_equal(virtq_chain_read(&c, &e->gm, 2, b, 2), -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_probe_never),
	    T(test_probe_touch_then_magic),
	    T(test_probe_driver_ok),
	    T(test_probe_stops_short),
	    T(test_probe_bad_width),
	    T(test_identity),
	    T(test_init_sequence),
	    T(test_features_rejected),
	    T(test_notify),
	    T(test_roundtrip),
	    T(test_interrupt_ack),
	    T(test_reset),
	    T(test_bad_widths),
	    T(test_config),
	    T(test_queue_refused),
	    T(test_queue_regs_locked),
	    T(test_fail_after_driver_ok),
	    T(test_pop_empty_and_not_ready),
	    T(test_pop_chain_layout),
	    T(test_ring_wraps),
	    T(test_bad_addr),
	    T(test_len_wraps),
	    T(test_len_too_long),
	    T(test_loop),
	    T(test_self_loop),
	    T(test_chain_limit),
	    T(test_chain_limit_small_queue),
	    T(test_next_out_of_range),
	    T(test_head_out_of_range),
	    T(test_write_then_read),
	    T(test_indirect),
	    T(test_avail_jump),
	    T(test_spans_gap),
	    T(test_rings_outside),
	    T(test_chain_bad_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
