/* A fake guest driver for the virtio-vsock device, shared by the vsock and
 * forward tests: it drives the device the way Linux's
 * vmw_vsock_virtio_transport does (rx buffers posted ahead, one packet per
 * tx chain, header and payload in separate descriptors) on fake guest
 * memory. Every call runs on the test's thread with whatever lock the test
 * needs already held. */
#ifndef VSOCKDRV_H
#define VSOCKDRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/vsock.h"

/* Guest memory layout: three queues, one tx chain at a time, rx buffer i
 * at RXBUF + i * RXSZ. */
#define QSIZE	  128
#define DESC(q)	  (0x1000 + 0x3000 * (uint64_t)(q))
#define AVAIL(q)  (0x2000 + 0x3000 * (uint64_t)(q))
#define USED(q)	  (0x3000 + 0x3000 * (uint64_t)(q))
#define TXBUF	  0x10000 /* header; payload follows at +0x100 */
#define RXBUF	  0x40000
#define RXSZ	  (44 + 4096)
#define GUEST_CID 16
#define HDR	  44

#define F_NEXT	1
#define F_WRITE 2

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE, OP_CREDIT_REQ };

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
	uint8_t data[4096];
};

struct vdrv {
	struct guestmem gm;
	struct vsock_dev *dev; /* the test creates it on gm */
	uint16_t avail_idx[3], used_seen[3], posted_rx;
};

/* Zeroed guest memory of `size` bytes at GPA 0; -1 when out of memory. */
int vd_mem_init(struct vdrv *d, size_t size);
void vd_mem_free(struct vdrv *d);

void vd_wr(struct vdrv *d, uint64_t off, uint32_t v);
uint32_t vd_rd(struct vdrv *d, uint64_t off);
void vd_write(struct vdrv *d, uint64_t gpa, const void *src, size_t len);
void vd_put_desc(struct vdrv *d, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next);
void vd_post(struct vdrv *d, unsigned q, uint16_t head);

/* Resets the device and brings it up with fresh queues; no rx buffers. */
void vd_init(struct vdrv *d);
/* Posts n rx buffers of RXSZ, one descriptor each, and kicks. */
void vd_post_rx(struct vdrv *d, unsigned n);

void vd_encode(const struct pkt *p, uint8_t *b);
/* The header only; p->data is left alone. */
void vd_decode(const uint8_t *b, struct pkt *p);

/* Sends raw bytes as one tx chain: `hlen` header bytes, then the payload
 * in a second descriptor when there is any. */
void vd_tx_raw(struct vdrv *d, const uint8_t *b, uint32_t hlen, const uint8_t *pay, uint32_t plen);
/* One packet from GUEST_CID to the host (CID 3). */
void vd_tx(struct vdrv *d, uint16_t op, uint32_t sport, uint32_t dport, const void *pay,
	   uint32_t len, uint32_t flags, uint32_t buf_alloc, uint32_t fwd);

/* The next used rx entry (buffer id, length); false if none. */
bool vd_used(struct vdrv *d, uint32_t elem[2]);
/* Takes the next rx packet the device wrote, checking its addressing;
 * false if none. */
bool vd_rx(struct vdrv *d, struct pkt *p);

#endif
