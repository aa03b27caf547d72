/* fuzz_virtq.c: a hostile driver against the virtio-mmio transport and the
 * virtqueue walker. The input is a script of register accesses and guest
 * memory pokes, followed by the initial contents of guest memory:
 *
 *   u8 nops, then nops ops of 6 bytes: u8 ctl, u8 reg, u32 val (LE);
 *   the rest: bytes of region 0 (gpa 0, 32 KiB), then region 1 (gpa
 *   0x10000, 32 KiB); what is missing is zero.
 *
 * ctl bits 0-1 pick the op: 0 MMIO write, 1 MMIO read, 2 poke the u16
 * (val & 0xffff) at region-0 offset (val >> 16) & ~1, 3 a device-side event
 * (val & 3: 0 interrupt with bits val >> 8, 1 virtio_mmio_fail, 2 move the
 * selected queue's indices to val >> 16 as after long use). For MMIO, the
 * offset is reg * 4 + (ctl >> 4 & 3) and ctl >> 2 & 3 picks the width
 * (4, 1, 2, 8). The device echoes every chain it pops.
 *
 * Besides crashes it traps on broken promises: popped chains stay inside
 * guest memory with readable buffers first, the interrupt line follows
 * InterruptStatus, and DRIVER_OK or a ready queue never stands on features
 * or rings the transport should have refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nectl/virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REGION_SIZE 0x8000
#define R1_GPA	    0x10000
#define OP_SIZE	    6
#define VERSION_1   (1ull << 32)
#define OFFERED	    (VERSION_1 | 1ull | (1ull << 5))

struct fuzz_dev {
	struct guestmem gm;
	struct virtio_mmio m;
	int level;
};

static void fuzz_irq(void *ctx, int level)
{
	struct fuzz_dev *d = ctx;

	if (level == d->level) /* the transport only reports changes */
		abort();
	d->level = level;
}

static void fuzz_config(void *dev, uint32_t off, void *data, unsigned len)
{
	if (off >= 8 || len > 8 - off)
		abort();
	memset(data, 0x5a, len);
}

static void fuzz_check_chain(const struct fuzz_dev *d, const struct virtq_chain *c)
{
	uint64_t r = 0, w = 0;

	if (c->n > VIRTQ_MAX_CHAIN)
		abort();
	for (unsigned i = 0; i < c->n; i++) {
		const struct virtq_buf *b = &c->buf[i];

		if (b->len == 0 || !guestmem_ptr(&d->gm, b->gpa, b->len))
			abort();
		if (!b->writable && w)
			abort();
		*(b->writable ? &w : &r) += b->len;
	}
	if (r != c->readable_len || w != c->writable_len)
		abort();
}

static void fuzz_echo(struct fuzz_dev *d, struct virtq *q, const struct virtq_chain *c)
{
	uint8_t buf[512];
	int64_t n = virtq_chain_read(c, &d->gm, c->readable_len / 3, buf, sizeof(buf));

	if (n < 0 || (uint64_t)n > sizeof(buf))
		abort();
	n = virtq_chain_write(c, &d->gm, c->writable_len / 4, buf, (uint64_t)n);
	if (n < 0 || (uint64_t)n > c->writable_len)
		abort();
	if (virtq_push(q, &d->gm, c->head, (uint32_t)n) < 0)
		abort(); /* the rings were checked when the queue was enabled */
}

static void fuzz_notify(void *dev, unsigned queue)
{
	struct fuzz_dev *d = dev;
	struct virtq *q = &d->m.vq[queue];
	struct virtq_chain c;
	int r = 0;

	if (queue >= 2 || !q->ready)
		abort();
	for (unsigned i = 0; i < 2 * VIRTQ_MAX_SIZE && (r = virtq_pop(q, &d->gm, &c)) == 1; i++) {
		fuzz_check_chain(d, &c);
		fuzz_echo(d, q, &c);
		virtio_mmio_interrupt(&d->m, 1);
	}
	if (r < 0)
		virtio_mmio_fail(&d->m);
}

static const struct virtio_dev_ops fuzz_ops = {
    .device_id = 33,
    .features = 1ull | (1ull << 5) | (1ull << 28) | (1ull << 29),
    .num_queues = 2,
    .queue_max = 16,
    .config_len = 8,
    .config_read = fuzz_config,
    .queue_notify = fuzz_notify,
};

static void fuzz_check_state(const struct fuzz_dev *d)
{
	const struct virtio_mmio *m = &d->m;

	if (d->level != (m->interrupt_status != 0))
		abort();
	if ((m->status & 8) && ((m->drv_features & ~OFFERED) || !(m->drv_features & VERSION_1)))
		abort();
	if ((m->status & 4) && !(m->status & 8))
		abort();
	if (m->broken != !!(m->status & 64))
		abort();
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		if (m->vq[i].ready &&
		    (i >= 2 || m->vq[i].size > 16 || !virtq_rings_ok(&m->vq[i], &d->gm)))
			abort();
}

static void fuzz_device_event(struct fuzz_dev *d, uint32_t val)
{
	struct virtq *q = &d->m.vq[d->m.queue_sel % VIRTIO_MMIO_MAX_QUEUES];

	switch (val & 3) {
	case 0:
		virtio_mmio_interrupt(&d->m, val >> 8);
		break;
	case 1:
		virtio_mmio_fail(&d->m);
		break;
	case 2:
		q->last_avail = (uint16_t)(val >> 16);
		q->used_idx = (uint16_t)(val >> 16);
		break;
	}
}

static void fuzz_mmio(struct fuzz_dev *d, uint8_t ctl, uint8_t reg, uint32_t val)
{
	static const unsigned widths[4] = {4, 1, 2, 8};
	uint64_t off = (uint64_t)reg * 4 + ((ctl >> 4) & 3);
	unsigned len = widths[(ctl >> 2) & 3];
	uint8_t buf[8];

	if (ctl & 1) {
		virtio_mmio_read(&d->m, off, buf, len);
		if (off == 0 && len == 4 && memcmp(buf, "virt", 4))
			abort();
		return;
	}
	memcpy(buf, &val, 4);
	memcpy(buf + 4, &val, 4);
	virtio_mmio_write(&d->m, off, buf, len);
}

static void fuzz_op(struct fuzz_dev *d, const uint8_t *op)
{
	uint32_t val = op[2] | op[3] << 8 | (uint32_t)op[4] << 16 | (uint32_t)op[5] << 24;
	uint16_t v16 = (uint16_t)val;

	switch (op[0] & 3) {
	case 0:
	case 1:
		fuzz_mmio(d, op[0], op[1], val);
		break;
	case 2:
		memcpy(d->gm.r[0].hva + ((val >> 16) & (REGION_SIZE - 2)), &v16, 2);
		break;
	case 3:
		fuzz_device_event(d, val);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t mem[2][REGION_SIZE] __attribute__((aligned(4096)));
	struct fuzz_dev d = {0};
	size_t nops, rest;

	if (size < 1)
		return 0;
	nops = data[0];
	if (nops > (size - 1) / OP_SIZE)
		nops = (size - 1) / OP_SIZE;
	rest = size - 1 - nops * OP_SIZE;
	if (rest > sizeof(mem))
		rest = sizeof(mem);
	memset(mem, 0, sizeof(mem));
	memcpy(mem, data + 1 + nops * OP_SIZE, rest);
	d.gm.n = 2;
	d.gm.r[0] = (struct guestmem_region){0, REGION_SIZE, mem[0]};
	d.gm.r[1] = (struct guestmem_region){R1_GPA, REGION_SIZE, mem[1]};
	virtio_mmio_init(&d.m, &fuzz_ops, &d, &d.gm, fuzz_irq, &d);
	for (size_t i = 0; i < nops; i++) {
		fuzz_op(&d, data + 1 + i * OP_SIZE);
		fuzz_check_state(&d);
	}
	return 0;
}
