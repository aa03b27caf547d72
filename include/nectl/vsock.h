/* The emulated enclave's virtio-vsock device (virtio device ID 19): stream
 * connections between the guest and the parent at CID 3, carried over the
 * device's rx (0), tx (1) and event (2) queues.
 *
 * The device never does I/O. Whoever owns it supplies vsock_host_ops and
 * feeds host-side data back through the vsock_host_* calls; both directions
 * are bounded by credit, so a slow host socket slows the guest down and a
 * slow guest makes vsock_host_send accept less (the host then stops reading
 * its socket until `writable` is called).
 *
 * Addressing: the guest's CID is fixed at creation; the parent is CID 3 only.
 * CID 2 (VMADDR_CID_HOST) is not the parent on Nitro, so packets to it, like
 * packets to any other CID, are answered with RST (a connect fails at once
 * instead of timing out). Packets whose source is not the guest's CID are
 * dropped: there is nobody to answer.
 *
 * Port 9000 is the boot heartbeat and is served by the device itself: the
 * first 0xB7 byte the guest sends on a connection is echoed and reported
 * through `heartbeat`, once per connection, as nitro-cli's listener answers
 * it; later bytes are read and dropped.
 *
 * The guest is hostile, so what it can make the host hold is capped per
 * device (VSOCK_MEM_MAX, docs/hypervisor.md): bytes queued for it, plus the
 * credit it is given toward the host. Past the pool, a connection gets only
 * its share: vsock_host_send takes less and the guest's credit stops
 * growing, until bytes are delivered or consumed.
 *
 * Not locked: the caller serialises all calls on one device with the vCPU
 * accesses to its registers (one bus lock), as for virtio_mmio. Callbacks
 * run inside those calls and may call back into vsock_host_*. */
#ifndef NECTL_VSOCK_H
#define NECTL_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/guestmem.h"
#include "nectl/virtio.h"

#define VSOCK_DEVICE_ID	     19
#define VSOCK_PARENT_CID     3
#define VSOCK_TXQ	     1 /* the guest's transmit queue (virtio 1.2, 5.10.2) */
#define VSOCK_HEARTBEAT_PORT 9000
#define VSOCK_HEARTBEAT_BYTE 0xB7
#define VSOCK_MAX_CONNS	     1024
#define VSOCK_MAX_PAYLOAD    (64 * 1024)  /* per packet, either direction */
#define VSOCK_CONN_BUF	     (256 * 1024) /* host's receive window and send queue */

/* What a guest can make the device and its host hold, both ways: the queue
 * toward the guest (its capacity) and the window it is given toward the
 * host (which the host may have to buffer). Each connection always has
 * VSOCK_MEM_SHARE each way, so none is starved; beyond that connections
 * draw on one pool. 4 MiB + 1024 x 2 x 4 KiB = 12 MiB per enclave, where
 * the per-connection windows alone allowed 1024 x 2 x 256 KiB = 512 MiB; a
 * 4 MiB pool still gives 16 connections their full window at once. */
#define VSOCK_MEM_POOL	(4u << 20)
#define VSOCK_MEM_SHARE (4u << 10) /* per connection and direction */
#define VSOCK_MEM_MAX	(VSOCK_MEM_POOL + 2u * VSOCK_MEM_SHARE * VSOCK_MAX_CONNS)

/* SHUTDOWN flags, in both directions. */
#define VSOCK_SHUTDOWN_RCV  1u
#define VSOCK_SHUTDOWN_SEND 2u

struct vsock_host_ops {
	/* The guest connects to CID 3:port. Return 0 to accept, then call
	 * vsock_host_connected (here or later); -1 refuses with RST. */
	int (*connect)(void *ctx, uint32_t port, uint64_t conn_id);
	/* The guest answered a vsock_host_connect. */
	void (*connected)(void *ctx, uint64_t conn_id);
	/* Payload from the guest. The host owns it until it reports the bytes
	 * consumed with vsock_host_credit; until then they count against the
	 * guest's credit. */
	void (*data)(void *ctx, uint64_t conn_id, const void *buf, size_t len);
	/* vsock_host_send accepted less than asked and now has room again.
	 * May fire inside that very vsock_host_send call, before it returns the
	 * short count: mark "waiting for writable" before calling it. It never
	 * fires once the guest has shut down its receive side (see shutdown). */
	void (*writable)(void *ctx, uint64_t conn_id);
	/* The guest will not receive (RCV) or send (SEND) any more. */
	void (*shutdown)(void *ctx, uint64_t conn_id, uint32_t flags);
	/* The connection is gone; conn_id is dead from here on. */
	void (*closed)(void *ctx, uint64_t conn_id);
	/* The guest's boot heartbeat arrived. */
	void (*heartbeat)(void *ctx);
};

struct vsock_dev;

/* NULL with errno EINVAL for a CID outside [4, 0xfffffffe], ENOMEM. `gm`,
 * `ops` and `ctx` must outlive the device. */
struct vsock_dev *vsock_new(uint64_t guest_cid, const struct guestmem *gm,
			    void (*set_irq)(void *ctx, int level), void *irq_ctx,
			    const struct vsock_host_ops *ops, void *ctx);
/* Frees the device without calling back. */
void vsock_free(struct vsock_dev *dev);
/* The device's transport, for the MMIO bus. */
struct virtio_mmio *vsock_mmio(struct vsock_dev *dev);

/* All return 0 or -errno: ENOENT for an unknown or dead conn_id, EINVAL when
 * the connection is in the wrong state for the call. */
int vsock_host_connected(struct vsock_dev *dev, uint64_t conn_id);
/* Queues up to `len` bytes for the guest; returns how many were taken,
 * bounded by the guest's credit, VSOCK_CONN_BUF and the device's memory
 * cap (0 when the connection cannot carry data). */
size_t vsock_host_send(struct vsock_dev *dev, uint64_t conn_id, const void *buf, size_t len);
/* The host consumed `bytes` of what `data` delivered. */
int vsock_host_credit(struct vsock_dev *dev, uint64_t conn_id, uint32_t bytes);
/* Tells the guest the host will not receive/send any more (after the data
 * already queued). */
int vsock_host_shutdown(struct vsock_dev *dev, uint64_t conn_id, uint32_t flags);
/* The host is done: queued data is still delivered, then the guest is told
 * to close. No callback names conn_id afterwards. */
int vsock_host_close(struct vsock_dev *dev, uint64_t conn_id);
/* Opens host_port -> guest:guest_port; `connected` or `closed` follows.
 * EBUSY when the port pair is in use, ENOSPC when the table is full. */
int vsock_host_connect(struct vsock_dev *dev, uint32_t guest_port, uint32_t host_port,
		       uint64_t *conn_id);

/* Bytes the device now holds or has promised (see VSOCK_MEM_MAX): never
 * more than VSOCK_MEM_MAX. */
size_t vsock_mem_bytes(const struct vsock_dev *dev);

/* Monotonic time (ns) of the first heartbeat, 0 if none yet. */
uint64_t vsock_heartbeat_time(const struct vsock_dev *dev);

#endif
