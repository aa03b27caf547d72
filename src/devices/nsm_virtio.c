/* The NSM's virtio side (nectl/nsm_virtio.h): requests from the queue to the
 * NSM core and its answers back, in the order Linux's nsm driver checks. */
#include <errno.h>
#include <stdlib.h>

#include "nectl/nsm_virtio.h"

#define NSM_QUEUE 0

struct nsm_virtio {
	struct virtio_mmio mmio;
	struct nsm *core;
	const struct guestmem *gm;
	uint64_t served;
	/* One more byte than a request may have: a longer one is seen as such
	 * and answered with the core's error. */
	uint8_t req[NSM_REQUEST_MAX + 1];
	uint8_t resp[NSM_RESPONSE_BYTES];
};

/* Answers the request in `a` into the writable part of `b` (which may be
 * `a` itself); returns the bytes written. */
static uint32_t nsm_virtio_answer(struct nsm_virtio *d, const struct virtq_chain *a,
				  const struct virtq_chain *b)
{
	uint64_t want = a->readable_len < sizeof(d->req) ? a->readable_len : sizeof(d->req);
	uint64_t cap = b->writable_len < sizeof(d->resp) ? b->writable_len : sizeof(d->resp);
	size_t len = 0;
	int64_t got = virtq_chain_read(a, d->gm, 0, d->req, want);

	if (got < 0 || (uint64_t)got != want ||
	    nsm_handle(d->core, d->req, (size_t)want, d->resp, (size_t)cap, &len) < 0)
		return 0;
	if (virtq_chain_write(b, d->gm, 0, d->resp, len) != (int64_t)len)
		return 0;
	d->served++;
	return (uint32_t)len;
}

/* One request: its own chain with both parts, or a readable chain and the
 * writable chain after it. 1 done, 0 the ring is empty, -1 broken. */
static int nsm_virtio_one(struct nsm_virtio *d, struct virtq *q)
{
	struct virtq_chain a, b;
	int r = virtq_pop(q, d->gm, &a);

	if (r <= 0)
		return r;
	if (a.writable_len && a.readable_len)
		return virtq_push(q, d->gm, a.head, nsm_virtio_answer(d, &a, &a)) < 0 ? -1 : 1;
	if (!a.readable_len) /* a response chain with no request: unused */
		return virtq_push(q, d->gm, a.head, 0) < 0 ? -1 : 1;
	r = virtq_pop(q, d->gm, &b);
	if (r < 0)
		return -1;
	if (r == 0 || !b.writable_len || b.readable_len) {
		/* No response chain to answer in: both go back unused. */
		if (virtq_push(q, d->gm, a.head, 0) < 0 ||
		    (r && virtq_push(q, d->gm, b.head, 0) < 0))
			return -1;
		return 1;
	}
	/* The request first (nothing written), then the response. */
	if (virtq_push(q, d->gm, a.head, 0) < 0 ||
	    virtq_push(q, d->gm, b.head, nsm_virtio_answer(d, &a, &b)) < 0)
		return -1;
	return 1;
}

static void nsm_virtio_serve(struct nsm_virtio *d)
{
	struct virtq *q = &d->mmio.vq[NSM_QUEUE];
	bool any = false;
	int r = 0;

	if (!q->ready)
		return;
	/* At most a queue's worth per kick: the guest cannot keep a vCPU here. */
	for (unsigned i = 0; i < q->size && (r = nsm_virtio_one(d, q)) > 0; i++)
		any = true;
	if (r < 0) {
		virtio_mmio_fail(&d->mmio);
		return;
	}
	if (any)
		virtio_mmio_interrupt(&d->mmio, 1);
}

static void nsm_virtio_notify(void *dev, unsigned queue)
{
	if (queue == NSM_QUEUE)
		nsm_virtio_serve(dev);
}

static void nsm_virtio_driver_ok(void *dev)
{
	nsm_virtio_serve(dev);
}

static const struct virtio_dev_ops nsm_virtio_ops = {
    .device_id = NSM_DEVICE_ID,
    .features = 0,
    .num_queues = 1,
    .queue_max = NSM_QUEUE_SIZE,
    .config_len = 0,
    .queue_notify = nsm_virtio_notify,
    .driver_ok = nsm_virtio_driver_ok,
};

struct nsm_virtio *nsm_virtio_new(struct nsm *core, const struct guestmem *gm,
				  void (*set_irq)(void *ctx, int level), void *irq_ctx)
{
	struct nsm_virtio *d = calloc(1, sizeof(*d));

	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	d->core = core;
	d->gm = gm;
	virtio_mmio_init(&d->mmio, &nsm_virtio_ops, d, gm, set_irq, irq_ctx);
	return d;
}

void nsm_virtio_free(struct nsm_virtio *d)
{
	free(d);
}

struct virtio_mmio *nsm_virtio_mmio(struct nsm_virtio *d)
{
	return &d->mmio;
}

uint64_t nsm_virtio_served(const struct nsm_virtio *d)
{
	return d->served;
}
