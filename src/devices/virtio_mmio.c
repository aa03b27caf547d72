/* virtio_mmio.c: the virtio-mmio (version 2) register file and device status.
 *
 * A driver brings a device up in this order (virtio 1.x, 3.1.1): write 0 to
 * Status (reset), set ACKNOWLEDGE, then DRIVER; read DeviceFeatures (two
 * 32-bit halves chosen by DeviceFeaturesSel), write the subset it accepts to
 * DriverFeatures, set FEATURES_OK and read Status back to see whether the
 * device agreed; for each queue select it, read QueueNumMax, write QueueNum
 * and the three ring addresses, and write 1 to QueueReady; finally set
 * DRIVER_OK. From then on it kicks queues through QueueNotify and
 * acknowledges interrupts through InterruptACK.
 *
 * What this file decides for a hostile or buggy guest:
 *  - registers below 0x100 take only aligned 4-byte accesses; anything else
 *    reads as 0 and writes are dropped;
 *  - the device offers no transport features but VIRTIO_F_VERSION_1 (no
 *    INDIRECT, EVENT_IDX or packed rings, whatever the device asks for);
 *  - FEATURES_OK sticks only if the driver's features are a subset of the
 *    device's and include VERSION_1; DriverFeatures is frozen after that;
 *    DRIVER_OK sticks only together with FEATURES_OK;
 *  - queue registers are writable only while the queue is not ready;
 *  - enabling a queue whose size is not a power of two <= QueueNumMax, or
 *    whose rings are misaligned or outside guest memory, fails the device;
 *  - a failed (broken) device shows DEVICE_NEEDS_RESET and ignores kicks
 *    until the guest resets it. The configuration-change interrupt that
 *    announces it is raised at once if DRIVER_OK is set, otherwise when the
 *    driver sets DRIVER_OK (the spec requires it only after DRIVER_OK, and a
 *    driver that has not finished probing may have no handler yet).
 * It also records how far a driver got (any access, the magic value read,
 * DRIVER_OK accepted), so the machine can say why a guest never used the
 * device: a kernel that never probed it, rather than text the guest printed.
 * The caller serialises all calls on one device (one bus lock). */
#include <endian.h>
#include <string.h>

#include "nectl/virtio.h"

#define VIRTIO_MMIO_MAGIC  0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4c54434e /* "NCTL" */

enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_CONFIG_GENERATION = 0x0fc,
	REG_CONFIG = 0x100,
	REG_END = 0x200,
};

#define STATUS_ACKNOWLEDGE	  1u
#define STATUS_DRIVER		  2u
#define STATUS_DRIVER_OK	  4u
#define STATUS_FEATURES_OK	  8u
#define STATUS_DEVICE_NEEDS_RESET 64u
#define STATUS_FAILED		  128u
#define STATUS_DRIVER_BITS                                                                         \
	(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK | STATUS_FEATURES_OK | STATUS_FAILED)

#define INT_USED_BUFFER 1u
#define INT_CONFIG	2u

#define VIRTIO_F_VERSION_1 (1ull << 32)
/* Bits 24..41 belong to the transport and ring layout (spec 6). */
#define TRANSPORT_FEATURES (((1ull << 42) - 1) & ~((1ull << 24) - 1))

static uint64_t device_features(const struct virtio_mmio *m)
{
	return (m->ops->features & ~TRANSPORT_FEATURES) | VIRTIO_F_VERSION_1;
}

static unsigned num_queues(const struct virtio_mmio *m)
{
	unsigned n = m->ops->num_queues;

	return n < VIRTIO_MMIO_MAX_QUEUES ? n : VIRTIO_MMIO_MAX_QUEUES;
}

static uint16_t queue_max(const struct virtio_mmio *m)
{
	return m->ops->queue_max < VIRTQ_MAX_SIZE ? m->ops->queue_max : VIRTQ_MAX_SIZE;
}

/* The selected queue, or NULL if QueueSel names none. */
static struct virtq *sel_queue(struct virtio_mmio *m)
{
	return m->queue_sel < num_queues(m) ? &m->vq[m->queue_sel] : NULL;
}

static void probe_reached(struct virtio_mmio *m, enum virtio_probe p)
{
	if (m->probe < p)
		m->probe = p;
}

enum virtio_probe virtio_mmio_probe(const struct virtio_mmio *m)
{
	return m->probe;
}

const char *virtio_probe_name(enum virtio_probe p)
{
	static const char *const names[] = {"never-probed", "touched", "probed", "driver-ok"};

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "unknown";
}

static void set_irq(struct virtio_mmio *m, int level)
{
	if (m->set_irq)
		m->set_irq(m->irq_ctx, level);
}

void virtio_mmio_init(struct virtio_mmio *m, const struct virtio_dev_ops *ops, void *dev,
		      const struct guestmem *gm, void (*set_irq_fn)(void *ctx, int level),
		      void *irq_ctx)
{
	memset(m, 0, sizeof(*m));
	m->ops = ops;
	m->dev = dev;
	m->gm = gm;
	m->set_irq = set_irq_fn;
	m->irq_ctx = irq_ctx;
}

void virtio_mmio_interrupt(struct virtio_mmio *m, uint32_t bits)
{
	uint32_t old = m->interrupt_status;

	bits &= INT_USED_BUFFER | INT_CONFIG;
	if (!bits)
		return;
	if (bits & INT_CONFIG)
		m->config_generation++;
	m->interrupt_status |= bits;
	if (!old)
		set_irq(m, 1);
}

void virtio_mmio_fail(struct virtio_mmio *m)
{
	if (m->broken)
		return;
	m->broken = true;
	m->status |= STATUS_DEVICE_NEEDS_RESET;
	if (m->on_broken)
		m->on_broken(m->broken_ctx);
	if (m->status & STATUS_DRIVER_OK)
		virtio_mmio_interrupt(m, INT_CONFIG);
}

static void reset(struct virtio_mmio *m)
{
	bool irq = m->interrupt_status != 0;

	m->status = 0;
	m->dev_features_sel = 0;
	m->drv_features_sel = 0;
	m->queue_sel = 0;
	m->drv_features = 0;
	m->interrupt_status = 0;
	m->broken = false;
	memset(m->vq, 0, sizeof(m->vq));
	if (irq)
		set_irq(m, 0);
	if (m->ops->reset)
		m->ops->reset(m->dev);
}

static bool features_acceptable(const struct virtio_mmio *m)
{
	return !(m->drv_features & ~device_features(m)) && (m->drv_features & VIRTIO_F_VERSION_1);
}

static void write_status(struct virtio_mmio *m, uint32_t val)
{
	uint32_t old = m->status;

	if (val == 0) {
		reset(m);
		return;
	}
	val &= STATUS_DRIVER_BITS;
	if ((val & STATUS_FEATURES_OK) && !(old & STATUS_FEATURES_OK) && !features_acceptable(m))
		val &= ~STATUS_FEATURES_OK;
	/* Without agreed features the device must not start. */
	if (!(val & STATUS_FEATURES_OK))
		val &= ~STATUS_DRIVER_OK;
	m->status = val | (old & STATUS_DEVICE_NEEDS_RESET);
	m->status_seen |= val;
	if (val & STATUS_DRIVER_OK)
		probe_reached(m, VIRTIO_PROBE_DRIVER_OK);
	if (m->broken && (val & STATUS_DRIVER_OK) && !(old & STATUS_DRIVER_OK))
		virtio_mmio_interrupt(m, INT_CONFIG);
	/* Kicks before DRIVER_OK were not delivered: the device may look at
	 * its rings now (the NSM's hwrng queues a request that early). */
	if (!m->broken && (val & STATUS_DRIVER_OK) && !(old & STATUS_DRIVER_OK) &&
	    m->ops->driver_ok)
		m->ops->driver_ok(m->dev);
}

static void write_driver_features(struct virtio_mmio *m, uint32_t val)
{
	unsigned shift;

	if (m->status & STATUS_FEATURES_OK || m->drv_features_sel > 1)
		return;
	shift = 32 * m->drv_features_sel;
	m->drv_features = (m->drv_features & ~(0xffffffffull << shift)) | ((uint64_t)val << shift);
}

static void enable_queue(struct virtio_mmio *m, struct virtq *q, uint32_t val)
{
	if (!val) {
		q->ready = false;
		return;
	}
	if (q->ready)
		return;
	if (q->size > queue_max(m) || !virtq_rings_ok(q, m->gm)) {
		virtio_mmio_fail(m);
		return;
	}
	q->last_avail = 0;
	q->used_idx = 0;
	q->ready = true;
}

static void set_half(uint64_t *addr, bool high, uint32_t val)
{
	if (high)
		*addr = (*addr & 0xffffffffull) | ((uint64_t)val << 32);
	else
		*addr = (*addr & ~0xffffffffull) | val;
}

/* Registers of the selected queue; dropped for no queue or a ready one. */
static void write_queue(struct virtio_mmio *m, uint64_t off, uint32_t val)
{
	struct virtq *q = sel_queue(m);

	if (!q)
		return;
	if (off == REG_QUEUE_READY) {
		enable_queue(m, q, val);
		return;
	}
	if (q->ready)
		return;
	switch (off) {
	case REG_QUEUE_NUM:
		/* Out-of-range sizes are kept so QueueReady can refuse them. */
		q->size = val <= VIRTQ_MAX_SIZE ? (uint16_t)val : 0;
		break;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		set_half(&q->desc, off == REG_QUEUE_DESC_HIGH, val);
		break;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		set_half(&q->avail, off == REG_QUEUE_DRIVER_HIGH, val);
		break;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		set_half(&q->used, off == REG_QUEUE_DEVICE_HIGH, val);
		break;
	}
}

static void notify(struct virtio_mmio *m, uint32_t queue)
{
	if (m->broken || !(m->status & STATUS_DRIVER_OK) || queue >= num_queues(m))
		return;
	if (!m->vq[queue].ready || !m->ops->queue_notify)
		return;
	m->ops->queue_notify(m->dev, queue);
}

static void ack(struct virtio_mmio *m, uint32_t bits)
{
	uint32_t old = m->interrupt_status;

	m->interrupt_status &= ~bits;
	if (old && !m->interrupt_status)
		set_irq(m, 0);
}

static void write_reg(struct virtio_mmio *m, uint64_t off, uint32_t val)
{
	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		m->dev_features_sel = val;
		break;
	case REG_DRIVER_FEATURES:
		write_driver_features(m, val);
		break;
	case REG_DRIVER_FEATURES_SEL:
		m->drv_features_sel = val;
		break;
	case REG_QUEUE_SEL:
		m->queue_sel = val;
		break;
	case REG_QUEUE_NOTIFY:
		notify(m, val);
		break;
	case REG_INTERRUPT_ACK:
		ack(m, val);
		break;
	case REG_STATUS:
		write_status(m, val);
		break;
	default:
		write_queue(m, off, val);
		break;
	}
}

static uint32_t read_reg(struct virtio_mmio *m, uint64_t off)
{
	struct virtq *q = sel_queue(m);

	switch (off) {
	case REG_MAGIC:
		probe_reached(m, VIRTIO_PROBE_MAGIC);
		return VIRTIO_MMIO_MAGIC;
	case REG_VERSION:
		return 2;
	case REG_DEVICE_ID:
		return m->ops->device_id;
	case REG_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		if (m->dev_features_sel > 1)
			return 0;
		return (uint32_t)(device_features(m) >> (32 * m->dev_features_sel));
	case REG_QUEUE_NUM_MAX:
		return q ? queue_max(m) : 0;
	case REG_QUEUE_READY:
		return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS:
		return m->interrupt_status;
	case REG_STATUS:
		return m->status;
	case REG_CONFIG_GENERATION:
		return m->config_generation;
	default:
		return 0; /* write-only and reserved registers */
	}
}

static bool config_access_ok(const struct virtio_mmio *m, uint64_t off, unsigned len)
{
	uint64_t rel = off - REG_CONFIG;

	if (len != 1 && len != 2 && len != 4 && len != 8)
		return false;
	return rel < m->ops->config_len && len <= m->ops->config_len - rel;
}

void virtio_mmio_read(struct virtio_mmio *m, uint64_t off, void *data, unsigned len)
{
	uint32_t val;

	probe_reached(m, VIRTIO_PROBE_TOUCHED);
	memset(data, 0, len);
	if (off >= REG_CONFIG && off < REG_END) {
		if (config_access_ok(m, off, len) && m->ops->config_read)
			m->ops->config_read(m->dev, (uint32_t)(off - REG_CONFIG), data, len);
		return;
	}
	if (off >= REG_CONFIG || len != 4 || (off & 3))
		return;
	val = htole32(read_reg(m, off));
	memcpy(data, &val, sizeof(val));
}

void virtio_mmio_write(struct virtio_mmio *m, uint64_t off, const void *data, unsigned len)
{
	uint32_t val;

	probe_reached(m, VIRTIO_PROBE_TOUCHED);
	/* The device configuration is read-only for the guest: no device has
	 * writable fields, so config writes are dropped with the rest. */
	if (off >= REG_CONFIG || len != 4 || (off & 3))
		return;
	memcpy(&val, data, sizeof(val));
	write_reg(m, off, le32toh(val));
}
