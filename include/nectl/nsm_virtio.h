/* The emulated enclave's NSM device (virtio device ID 33): one virtqueue, on
 * which Linux's nsm driver (drivers/misc/nsm.c) posts each request as a
 * device-readable chain followed by a device-writable 0x3000-byte chain; the
 * device answers through the NSM core (nectl/nsm.h) and returns both, the
 * request first (length 0), then the response (bytes written), with one
 * interrupt (../shared/reference/linux-ne-and-nsm-drivers.md §8.4).
 *
 * The guest is hostile: a request chain of more than NSM_REQUEST_MAX bytes
 * is answered with the core's error, a response chain is filled up to
 * 0x3000 bytes at most, a chain that is neither (or a request without its
 * response chain) is returned unused, and a malformed queue stops the
 * device until the guest resets it. Not locked: the bus lock serialises it
 * with the vCPUs, as for every device. */
#ifndef NECTL_NSM_VIRTIO_H
#define NECTL_NSM_VIRTIO_H

#include "nectl/guestmem.h"
#include "nectl/nsm.h"
#include "nectl/virtio.h"

#define NSM_DEVICE_ID	   33
#define NSM_QUEUE_SIZE	   2 /* as QEMU's: one request and its response */
#define NSM_RESPONSE_BYTES 0x3000

struct nsm_virtio;

/* NULL with errno ENOMEM. `core`, `gm` and the irq context must outlive it. */
struct nsm_virtio *nsm_virtio_new(struct nsm *core, const struct guestmem *gm,
				  void (*set_irq)(void *ctx, int level), void *irq_ctx);
void nsm_virtio_free(struct nsm_virtio *d);
struct virtio_mmio *nsm_virtio_mmio(struct nsm_virtio *d);
/* Requests answered, for tests and the record. */
uint64_t nsm_virtio_served(const struct nsm_virtio *d);

#endif
