/* virtq.c: split virtqueue walking and used-ring updates.
 *
 * The rings live in guest memory and the guest may rewrite them at any time
 * from another vCPU, so every field is fetched exactly once into host memory
 * before it is checked and used, and every guest address goes through
 * guestmem_ptr. Policy for what the guest hands us:
 *  - avail->idx may run at most `size` entries ahead of what we consumed;
 *  - a chain has at most min(size, VIRTQ_MAX_CHAIN) descriptors, which also
 *    ends any loop through `next`;
 *  - readable descriptors come before writable ones (spec 2.7.4.2);
 *  - INDIRECT is never offered, so a descriptor carrying it is malformed;
 *  - zero-length descriptors are allowed (drivers may emit them for empty
 *    headers) but carry no bytes: they count toward the chain length and the
 *    direction order, their address is not looked at, and they are not
 *    recorded in the chain's buffer list.
 * Anything else yields -1 and leaves the queue untouched; the caller marks
 * the device broken (virtio_mmio_fail). */
#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "nectl/virtio.h"

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

/* Guest layout of one descriptor (little-endian). */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Offsets within the avail and used rings. */
#define AVAIL_IDX      2
#define AVAIL_RING     4
#define USED_IDX       2
#define USED_RING      4
#define USED_ELEM_SIZE 8

bool virtq_rings_ok(const struct virtq *q, const struct guestmem *gm)
{
	uint64_t n = q->size;

	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return false;
	if ((q->desc & 15) || (q->avail & 1) || (q->used & 3))
		return false;
	/* Each range includes the event word at the ring's end. */
	return guestmem_ptr(gm, q->desc, 16 * n) && guestmem_ptr(gm, q->avail, 6 + 2 * n) &&
	       guestmem_ptr(gm, q->used, 6 + USED_ELEM_SIZE * n);
}

/* One 16-bit fetch, so the guest cannot change the value between our check
 * and our use. The host pointer is checked for alignment as well, since the
 * atomic builtins need it and guest regions need not be mapped aligned. */
static int load_le16(const struct guestmem *gm, uint64_t gpa, int order, uint16_t *v)
{
	const uint16_t *p = guestmem_ptr(gm, gpa, sizeof(*p));

	if (!p || ((uintptr_t)p & (sizeof(*p) - 1)))
		return -1;
	*v = le16toh(__atomic_load_n(p, order));
	return 0;
}

static int read_desc(const struct virtq *q, const struct guestmem *gm, uint16_t i,
		     struct virtq_desc *d)
{
	struct virtq_desc raw;

	if (guestmem_read(gm, q->desc + 16 * (uint64_t)i, &raw, sizeof(raw)) < 0)
		return -1;
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
	return 0;
}

/* Records one descriptor in the chain; `seen_writable` tracks the order. */
static int add_desc(struct virtq_chain *c, const struct guestmem *gm, const struct virtq_desc *d,
		    bool *seen_writable)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	struct virtq_buf *b;

	if (d->flags & VIRTQ_DESC_F_INDIRECT)
		return -1;
	if (!writable && *seen_writable)
		return -1;
	*seen_writable |= writable;
	if (d->len == 0)
		return 0;
	if (!guestmem_ptr(gm, d->addr, d->len))
		return -1;
	b = &c->buf[c->n++];
	b->gpa = d->addr;
	b->len = d->len;
	b->writable = writable;
	if (writable)
		c->writable_len += d->len;
	else
		c->readable_len += d->len;
	return 0;
}

static int walk_chain(const struct virtq *q, const struct guestmem *gm, uint16_t head,
		      struct virtq_chain *c)
{
	unsigned max = q->size < VIRTQ_MAX_CHAIN ? q->size : VIRTQ_MAX_CHAIN;
	bool seen_writable = false;
	uint16_t i = head;

	c->head = head;
	c->n = 0;
	c->readable_len = 0;
	c->writable_len = 0;
	for (unsigned count = 0; count < max; count++) {
		struct virtq_desc d;

		if (i >= q->size || read_desc(q, gm, i, &d) < 0)
			return -1;
		if (add_desc(c, gm, &d, &seen_writable) < 0)
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
	return -1; /* too long, or a loop */
}

int virtq_pop(struct virtq *q, const struct guestmem *gm, struct virtq_chain *c)
{
	uint16_t avail_idx, head;
	uint64_t slot;

	if (!q->ready)
		return 0;
	if (!virtq_rings_ok(q, gm))
		return -1;
	/* Acquire: the ring entry and descriptors are read after the index
	 * that publishes them. */
	if (load_le16(gm, q->avail + AVAIL_IDX, __ATOMIC_ACQUIRE, &avail_idx) < 0)
		return -1;
	if ((uint16_t)(avail_idx - q->last_avail) > q->size)
		return -1;
	if (avail_idx == q->last_avail)
		return 0;
	slot = q->avail + AVAIL_RING + 2 * (uint64_t)(q->last_avail & (q->size - 1));
	if (load_le16(gm, slot, __ATOMIC_RELAXED, &head) < 0)
		return -1;
	if (walk_chain(q, gm, head, c) < 0)
		return -1;
	q->last_avail++;
	return 1;
}

int virtq_push(struct virtq *q, const struct guestmem *gm, uint16_t head, uint32_t written)
{
	uint32_t elem[2] = {htole32(head), htole32(written)};
	uint16_t *idx;
	uint64_t slot;

	if (!q->ready || !virtq_rings_ok(q, gm) || head >= q->size)
		return -1;
	slot = q->used + USED_RING + USED_ELEM_SIZE * (uint64_t)(q->used_idx & (q->size - 1));
	idx = guestmem_ptr(gm, q->used + USED_IDX, sizeof(*idx));
	if (!idx || ((uintptr_t)idx & (sizeof(*idx) - 1)))
		return -1;
	if (guestmem_write(gm, slot, elem, sizeof(elem)) < 0)
		return -1;
	q->used_idx++;
	/* Release: the element and the bytes written into the buffers are
	 * visible before the index that hands them to the driver. */
	__atomic_store_n(idx, htole16(q->used_idx), __ATOMIC_RELEASE);
	return 0;
}

/* Copies between `host` and the chain's buffers of one direction, starting
 * `off` bytes into that direction's concatenated bytes. */
static int64_t chain_copy(const struct virtq_chain *c, const struct guestmem *gm, uint64_t off,
			  uint8_t *host, uint64_t len, bool to_guest)
{
	uint64_t done = 0;

	for (unsigned i = 0; i < c->n && i < VIRTQ_MAX_CHAIN && done < len; i++) {
		const struct virtq_buf *b = &c->buf[i];
		uint64_t n;
		uint8_t *p;

		if (b->writable != to_guest)
			continue;
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		n = b->len - off;
		if (n > len - done)
			n = len - done;
		/* The whole buffer, so gpa + off cannot wrap past the check. */
		p = guestmem_ptr(gm, b->gpa, b->len);
		if (!p)
			return -1;
		p += off;
		if (to_guest)
			memcpy(p, host + done, n);
		else
			memcpy(host + done, p, n);
		done += n;
		off = 0;
	}
	return (int64_t)done;
}

int64_t virtq_chain_read(const struct virtq_chain *c, const struct guestmem *gm, uint64_t off,
			 void *dst, uint64_t len)
{
	return chain_copy(c, gm, off, dst, len, false);
}

int64_t virtq_chain_write(const struct virtq_chain *c, const struct guestmem *gm, uint64_t off,
			  const void *src, uint64_t len)
{
	/* chain_copy only reads from `host` when copying to the guest. */
	return chain_copy(c, gm, off, (uint8_t *)(uintptr_t)src, len, true);
}

const uint8_t *virtq_chain_span(const struct virtq_chain *c, const struct guestmem *gm,
				uint64_t off, uint64_t len)
{
	for (unsigned i = 0; i < c->n && i < VIRTQ_MAX_CHAIN; i++) {
		const struct virtq_buf *b = &c->buf[i];
		uint8_t *p;

		if (b->writable)
			continue;
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		if (len > b->len - off)
			return NULL;
		p = guestmem_ptr(gm, b->gpa, b->len);
		return p ? p + off : NULL;
	}
	return NULL;
}
