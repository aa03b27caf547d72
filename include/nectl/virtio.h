/* The virtio-mmio transport (version 2) and split virtqueues, shared by the
 * emulated enclave's devices (vsock, NSM). Everything read from guest memory
 * is validated: a malformed queue marks the device broken instead of crashing
 * or stalling the host. */
#ifndef NECTL_VIRTIO_H
#define NECTL_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "nectl/guestmem.h"

#define VIRTQ_MAX_SIZE		 1024 /* queue sizes accepted from the guest */
#define VIRTQ_MAX_CHAIN		 64   /* descriptors in one chain */
#define VIRTIO_MMIO_MAX_QUEUES	 4
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050 /* the register a queue kick writes */

struct virtq {
	uint16_t size; /* guest-chosen, power of two, <= the device's max */
	bool ready;
	uint64_t desc, avail, used; /* guest physical addresses */
	uint16_t last_avail;	    /* next avail ring index to consume */
	uint16_t used_idx;	    /* next used ring index to fill */
};

struct virtq_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable; /* device writes (VIRTQ_DESC_F_WRITE) */
};

struct virtq_chain {
	uint16_t head;
	unsigned n;
	struct virtq_buf buf[VIRTQ_MAX_CHAIN];
	uint64_t readable_len, writable_len; /* totals of each kind */
};

/* Whether the queue's size is a power of two in [1, VIRTQ_MAX_SIZE] and its
 * three rings, at that size, lie in guest memory with the alignment the spec
 * requires (16, 2, 4). The transport checks this when the guest enables the
 * queue; virtq_pop and virtq_push check it again so they are safe on a queue
 * set up by any other path. */
bool virtq_rings_ok(const struct virtq *q, const struct guestmem *gm);
/* 1: a chain was taken; 0: the ring is empty; -1: the queue or chain is
 * malformed (out-of-range addresses, loops, too long, a readable buffer after
 * a writable one, indirect descriptors not offered, head out of range). */
int virtq_pop(struct virtq *q, const struct guestmem *gm, struct virtq_chain *c);
/* Returns a chain with `written` bytes written into it; -1 if the used ring is
 * out of guest memory. */
int virtq_push(struct virtq *q, const struct guestmem *gm, uint16_t head, uint32_t written);
/* Copy out of the chain's readable buffers / into its writable ones, starting
 * `off` bytes into that part; returns bytes copied or -1 on a bad address. */
int64_t virtq_chain_read(const struct virtq_chain *c, const struct guestmem *gm, uint64_t off,
			 void *dst, uint64_t len);
int64_t virtq_chain_write(const struct virtq_chain *c, const struct guestmem *gm, uint64_t off,
			  const void *src, uint64_t len);
/* The `len` readable bytes at `off`, in place in guest memory, when one
 * buffer holds them all; NULL otherwise (copy them with virtq_chain_read).
 * The guest may change them meanwhile: read each byte once. */
const uint8_t *virtq_chain_span(const struct virtq_chain *c, const struct guestmem *gm,
				uint64_t off, uint64_t len);

/* What a device plugs into the transport. */
struct virtio_dev_ops {
	uint32_t device_id; /* e.g. 19 vsock, 33 NSM */
	uint64_t features;  /* device features; VIRTIO_F_VERSION_1 is added */
	unsigned num_queues;
	uint16_t queue_max;
	uint32_t config_len;
	void (*config_read)(void *dev, uint32_t off, void *data, unsigned len);
	void (*queue_notify)(void *dev, unsigned queue); /* the guest kicked a queue */
	void (*reset)(void *dev);			 /* the guest reset the device */
	/* The driver set DRIVER_OK (optional): kicks sent before it were not
	 * delivered, so a device may scan its rings here. */
	void (*driver_ok)(void *dev);
};

/* How far the guest's driver got with a device, never lowered (a reset does
 * not undo it): the machine's own record of what the kernel did, which no
 * text printed in the guest can fake. */
enum virtio_probe {
	VIRTIO_PROBE_NONE,	/* the window was never accessed */
	VIRTIO_PROBE_TOUCHED,	/* accessed, but the magic value never read */
	VIRTIO_PROBE_MAGIC,	/* a driver read the magic value: it probed the device */
	VIRTIO_PROBE_DRIVER_OK, /* the device went live (DRIVER_OK accepted) */
};

/* Not locked: whoever owns the bus serializes vCPU register accesses with the
 * device's own virtio_mmio_interrupt/virtio_mmio_fail calls. */
struct virtio_mmio {
	const struct virtio_dev_ops *ops;
	void *dev;
	const struct guestmem *gm;
	void (*set_irq)(void *ctx, int level); /* level-triggered line */
	void *irq_ctx;
	uint32_t status, dev_features_sel, drv_features_sel, queue_sel;
	uint64_t drv_features;
	uint32_t interrupt_status;
	uint32_t config_generation;
	bool broken; /* set once a malformed access or queue was seen */
	enum virtio_probe probe;
	uint32_t status_seen; /* every driver status bit the device ever accepted */
	/* Told once per breakage (under the bus lock; must not block). */
	void (*on_broken)(void *ctx);
	void *broken_ctx;
	struct virtq vq[VIRTIO_MMIO_MAX_QUEUES];
};

void virtio_mmio_init(struct virtio_mmio *m, const struct virtio_dev_ops *ops, void *dev,
		      const struct guestmem *gm, void (*set_irq)(void *ctx, int level),
		      void *irq_ctx);
/* Register accesses at offset `off` within the device's 0x200-byte window
 * (the config space starts at 0x100). Bad widths or offsets read as 0 and
 * are otherwise ignored. */
void virtio_mmio_read(struct virtio_mmio *m, uint64_t off, void *data, unsigned len);
void virtio_mmio_write(struct virtio_mmio *m, uint64_t off, const void *data, unsigned len);
/* The device used buffers (bit 0) or changed its config (bit 1). */
void virtio_mmio_interrupt(struct virtio_mmio *m, uint32_t bits);
/* Marks the device broken (DEVICE_NEEDS_RESET) after a malformed queue. */
void virtio_mmio_fail(struct virtio_mmio *m);
/* How far the guest's driver got (see enum virtio_probe). */
enum virtio_probe virtio_mmio_probe(const struct virtio_mmio *m);
/* "never-probed", "touched", "probed" or "driver-ok". */
const char *virtio_probe_name(enum virtio_probe p);

#endif
