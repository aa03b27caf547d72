/* The fake virtio-vsock guest driver (see vsockdrv.h). */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vsockdrv.h"

int vd_mem_init(struct vdrv *d, size_t size)
{
	d->gm.n = 1;
	d->gm.r[0] = (struct guestmem_region){0, size, aligned_alloc(4096, size)};
	if (!d->gm.r[0].hva)
		return -1;
	memset(d->gm.r[0].hva, 0, size);
	return 0;
}

void vd_mem_free(struct vdrv *d)
{
	free(d->gm.r[0].hva);
}

void vd_wr(struct vdrv *d, uint64_t off, uint32_t v)
{
	virtio_mmio_write(vsock_mmio(d->dev), off, &v, 4);
}

uint32_t vd_rd(struct vdrv *d, uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(vsock_mmio(d->dev), off, &v, 4);
	return v;
}

void vd_write(struct vdrv *d, uint64_t gpa, const void *src, size_t len)
{
	assert_int_equal(guestmem_write(&d->gm, gpa, src, len), 0);
}

void vd_put_desc(struct vdrv *d, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	uint8_t b[16];

	memcpy(b, &addr, 8);
	memcpy(b + 8, &len, 4);
	memcpy(b + 12, &flags, 2);
	memcpy(b + 14, &next, 2);
	vd_write(d, DESC(q) + 16 * (uint64_t)i, b, sizeof(b));
}

void vd_post(struct vdrv *d, unsigned q, uint16_t head)
{
	uint16_t idx = d->avail_idx[q];

	vd_write(d, AVAIL(q) + 4 + 2 * (uint64_t)(idx % QSIZE), &head, 2);
	d->avail_idx[q] = ++idx;
	vd_write(d, AVAIL(q) + 2, &idx, 2);
}

void vd_init(struct vdrv *d)
{
	vd_wr(d, 0x070, 0);
	vd_wr(d, 0x070, 1);
	vd_wr(d, 0x070, 3);
	vd_wr(d, 0x024, 1);
	vd_wr(d, 0x020, 1); /* VERSION_1 */
	vd_wr(d, 0x024, 0);
	vd_wr(d, 0x020, 0);
	vd_wr(d, 0x070, 11);
	assert_int_equal(vd_rd(d, 0x070), 11);
	for (unsigned q = 0; q < 3; q++) {
		/* Fresh rings, as a driver allocates them zeroed. */
		memset(d->gm.r[0].hva + DESC(q), 0, 0x3000);
		vd_wr(d, 0x030, q);
		vd_wr(d, 0x038, QSIZE);
		vd_wr(d, 0x080, (uint32_t)DESC(q));
		vd_wr(d, 0x090, (uint32_t)AVAIL(q));
		vd_wr(d, 0x0a0, (uint32_t)USED(q));
		vd_wr(d, 0x044, 1);
	}
	vd_wr(d, 0x070, 15);
	memset(d->avail_idx, 0, sizeof(d->avail_idx));
	memset(d->used_seen, 0, sizeof(d->used_seen));
	d->posted_rx = 0;
}

void vd_post_rx(struct vdrv *d, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t b = d->posted_rx++ % QSIZE;

		vd_put_desc(d, 0, b, RXBUF + (uint64_t)b * RXSZ, RXSZ, F_WRITE, 0);
		vd_post(d, 0, b);
	}
	vd_wr(d, 0x050, 0);
}

void vd_encode(const struct pkt *p, uint8_t *b)
{
	uint64_t v64;
	uint32_t v32;
	uint16_t v16;

	v64 = htole64(p->src_cid), memcpy(b, &v64, 8);
	v64 = htole64(p->dst_cid), memcpy(b + 8, &v64, 8);
	v32 = htole32(p->src_port), memcpy(b + 16, &v32, 4);
	v32 = htole32(p->dst_port), memcpy(b + 20, &v32, 4);
	v32 = htole32(p->len), memcpy(b + 24, &v32, 4);
	v16 = htole16(p->type), memcpy(b + 28, &v16, 2);
	v16 = htole16(p->op), memcpy(b + 30, &v16, 2);
	v32 = htole32(p->flags), memcpy(b + 32, &v32, 4);
	v32 = htole32(p->buf_alloc), memcpy(b + 36, &v32, 4);
	v32 = htole32(p->fwd_cnt), memcpy(b + 40, &v32, 4);
}

void vd_decode(const uint8_t *b, struct pkt *p)
{
	memcpy(&p->src_cid, b, 8);
	memcpy(&p->dst_cid, b + 8, 8);
	memcpy(&p->src_port, b + 16, 4);
	memcpy(&p->dst_port, b + 20, 4);
	memcpy(&p->len, b + 24, 4);
	memcpy(&p->type, b + 28, 2);
	memcpy(&p->op, b + 30, 2);
	memcpy(&p->flags, b + 32, 4);
	memcpy(&p->buf_alloc, b + 36, 4);
	memcpy(&p->fwd_cnt, b + 40, 4);
	p->src_cid = le64toh(p->src_cid);
	p->dst_cid = le64toh(p->dst_cid);
	p->src_port = le32toh(p->src_port);
	p->dst_port = le32toh(p->dst_port);
	p->len = le32toh(p->len);
	p->type = le16toh(p->type);
	p->op = le16toh(p->op);
	p->flags = le32toh(p->flags);
	p->buf_alloc = le32toh(p->buf_alloc);
	p->fwd_cnt = le32toh(p->fwd_cnt);
}

void vd_tx_raw(struct vdrv *d, const uint8_t *b, uint32_t hlen, const uint8_t *pay, uint32_t plen)
{
	uint16_t h = (uint16_t)((d->avail_idx[1] * 2) % QSIZE);

	vd_write(d, TXBUF, b, hlen);
	if (plen)
		vd_write(d, TXBUF + 0x100, pay, plen);
	vd_put_desc(d, 1, h, TXBUF, hlen, plen ? F_NEXT : 0, (uint16_t)(h + 1));
	if (plen)
		vd_put_desc(d, 1, (uint16_t)(h + 1), TXBUF + 0x100, plen, 0, 0);
	vd_post(d, 1, h);
	vd_wr(d, 0x050, 1);
}

void vd_tx(struct vdrv *d, uint16_t op, uint32_t sport, uint32_t dport, const void *pay,
	   uint32_t len, uint32_t flags, uint32_t buf_alloc, uint32_t fwd)
{
	struct pkt p = {GUEST_CID, 3, sport, dport, len, 1, op, flags, buf_alloc, fwd, {0}};
	uint8_t b[HDR];

	vd_encode(&p, b);
	vd_tx_raw(d, b, HDR, pay, len);
}

bool vd_used(struct vdrv *d, uint32_t elem[2])
{
	uint16_t used_idx, i = d->used_seen[0];

	assert_int_equal(guestmem_read(&d->gm, USED(0) + 2, &used_idx, 2), 0);
	if (used_idx == i)
		return false;
	assert_int_equal(guestmem_read(&d->gm, USED(0) + 4 + 8 * (uint64_t)(i % QSIZE), elem, 8),
			 0);
	d->used_seen[0]++;
	return true;
}

bool vd_rx(struct vdrv *d, struct pkt *p)
{
	uint32_t elem[2];
	uint8_t *b;

	if (!vd_used(d, elem))
		return false;
	assert_true(elem[1] >= HDR && elem[1] <= RXSZ);
	b = guestmem_ptr(&d->gm, RXBUF + (uint64_t)elem[0] * RXSZ, RXSZ);
	assert_non_null(b);
	vd_decode(b, p);
	assert_int_equal(elem[1], HDR + p->len);
	memcpy(p->data, b + HDR, p->len);
	assert_int_equal(p->src_cid, 3);
	assert_int_equal(p->dst_cid, GUEST_CID);
	assert_int_equal(p->type, 1);
	return true;
}
