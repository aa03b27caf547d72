/* The machine: memory, the EIF at the load offset, boot, devices on the bus.
 * One list of virtio-mmio devices drives what the guest is told (the cmdline
 * entries, the MP table's level-triggered lines, the DSDT with ACPI) and
 * where its MMIO accesses go, so it is announced exactly what exists. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nectl/eif.h"
#include "nectl/i8042.h"
#include "nectl/machine.h"
#include "nectl/nsm_virtio.h"
#include "nectl/pvpanic.h"
#include "nectl/uart.h"
#include "nectl/vsock.h"
#include "nectl/x86boot.h"

/* Nitro has two (vsock, then the NSM). */
#define MACHINE_MAX_VDEVS 2

/* A virtio-mmio device in its Nitro slot. */
struct machine_vdev {
	const char *name;
	struct x86_mmio_dev at;
	struct virtio_mmio *mmio;
};

_Static_assert(GUESTMEM_MAX_REGIONS >= MACHINE_MAX_REGIONS + 1,
	       "each region maps to one guest region, one of them split at the MMIO hole");

struct machine {
	struct machine_spec spec;
	struct guestmem gm;
	/* The enclave's memory: the donated regions, in donation order. */
	struct mem_region mem[MACHINE_MAX_REGIONS];
	unsigned nmem;
	uint64_t mem_size; /* their sum */
	uint64_t image_offset;
	bool huge;
	struct kvm_vm *vm;
	struct x86_boot_regs regs;
	struct uart uart;
	struct i8042 kbd;
	struct pvpanic pvpanic; /* with spec.acpi only: the DSDT describes it */
	struct vsock_dev *vsock;
	struct nsm *nsm_core; /* with spec.nsm */
	struct nsm_virtio *nsm_dev;
	struct machine_vdev vdevs[MACHINE_MAX_VDEVS];
	unsigned nvdevs;
	struct eif_image img;
	bool have_img;
	bool reset, poweroff, panicked;
	/* the vsock TX notify by ioeventfd, and the thread serving it */
	int tx_fd, stop_fd;
	pthread_t io;
	bool io_started;
};

/* Enclave memory offset o is guest physical o below the MMIO hole and
 * X86_HIGH_RAM_START + (o - X86_LOW_RAM_END) above it; a region across
 * X86_LOW_RAM_END becomes two guest regions. */
static void machine_map_guest(struct machine *m)
{
	uint64_t o = 0;

	m->gm.n = 0;
	for (unsigned i = 0; i < m->nmem; i++) {
		uint8_t *hva = m->mem[i].addr;

		for (uint64_t left = m->mem[i].size; left > 0;) {
			uint64_t piece = left, gpa = o;

			if (o < X86_LOW_RAM_END && piece > X86_LOW_RAM_END - o)
				piece = X86_LOW_RAM_END - o;
			if (o >= X86_LOW_RAM_END)
				gpa = X86_HIGH_RAM_START + (o - X86_LOW_RAM_END);
			m->gm.r[m->gm.n++] = (struct guestmem_region){gpa, piece, hva};
			hva += piece;
			o += piece;
			left -= piece;
		}
	}
}

static int machine_check_region(const struct mem_region *r, unsigned i, struct nectl_err *err)
{
	uintptr_t a = (uintptr_t)r[i].addr;

	if (!r[i].size || ((a | r[i].size) & 0xfff) || r[i].size > UINTPTR_MAX - a)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "memory region %u (%p, %llu bytes) is not a non-empty, "
				     "4 KiB-aligned range",
				     i, (void *)r[i].addr, (unsigned long long)r[i].size);
	for (unsigned j = 0; j < i; j++) {
		uintptr_t b = (uintptr_t)r[j].addr;

		if (a < b + r[j].size && b < a + r[i].size)
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "memory regions %u and %u overlap", j, i);
	}
	return 0;
}

/* Donated memory, checked: the guest's memory is exactly these bytes. */
static int machine_adopt(struct machine *m, struct nectl_err *err)
{
	const struct machine_spec *s = &m->spec;

	if (!s->memory || !s->nmemory || s->nmemory > MACHINE_MAX_REGIONS)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "%u memory regions (1..%u taken)",
				     s->nmemory, MACHINE_MAX_REGIONS);
	m->mem_size = 0;
	for (unsigned i = 0; i < s->nmemory; i++) {
		if (machine_check_region(s->memory, i, err) < 0)
			return -1;
		m->mem[i] = s->memory[i];
		m->mem_size += s->memory[i].size;
	}
	m->nmem = s->nmemory;
	m->huge = s->memory_huge;
	m->image_offset = s->image_offset;
	if (m->image_offset >= m->mem_size)
		return nectl_err_set(err, NECTL_ERR_MEM_REQUEST,
				     "the image offset %llu is beyond the %llu bytes of "
				     "enclave memory",
				     (unsigned long long)m->image_offset,
				     (unsigned long long)m->mem_size);
	return 0;
}

static int machine_memory_setup(struct machine *m, struct nectl_err *err)
{
	if (machine_adopt(m, err) < 0)
		return -1;
	machine_map_guest(m);
	return 0;
}

/* The image's extent in enclave memory: its sections' end, as far as the
 * header says (the machine never learns the file's size, as Nitro does not). */
static uint64_t machine_image_end(const struct eif_image *img)
{
	uint64_t end = EIF_HEADER_SIZE;

	for (unsigned i = 0; i < img->num_sections; i++) {
		const struct eif_section *s = &img->sections[i];

		if (s->offset + EIF_SECTION_HEADER_SIZE + s->size > end)
			end = s->offset + EIF_SECTION_HEADER_SIZE + s->size;
	}
	return end;
}

/* Reads a piece of the initrd's destination from the EIF's source. */
struct machine_copy {
	const struct eif_source *src;
	uint64_t off;
};

static int machine_copy_piece(void *ctx, uint8_t *hva, uint64_t at, uint64_t len)
{
	const struct machine_copy *c = ctx;

	return c->src->read_at(c->src->ctx, c->off + at, hva, (size_t)len) < 0 ? -1 : 0;
}

/* The ramdisks, contiguous, at the top of low memory: the kernel unpacks them
 * as one initramfs. Copied before the kernel is placed, which may overwrite
 * the EIF they come from; source and destination may both span regions. */
static int machine_place_initrd(struct machine *m, const struct eif_source *src,
				const struct eif_image *img, uint64_t *gpa, uint64_t *len,
				struct nectl_err *err)
{
	uint64_t total = 0, dst;
	uint64_t top = m->mem_size < X86_LOW_RAM_END ? m->mem_size : X86_LOW_RAM_END;

	for (unsigned i = 0; i < img->num_sections; i++)
		if (img->sections[i].type == EIF_SECTION_RAMDISK)
			total += img->sections[i].size;
	if (total + m->image_offset + machine_image_end(img) > top)
		return nectl_err_set(err, NECTL_ERR_MEM_REQUEST,
				     "enclave memory (%llu MiB) is too small for the image",
				     (unsigned long long)(m->mem_size >> 20));
	dst = (top - total) & ~0xfffull;
	*gpa = dst;
	*len = total;
	for (unsigned i = 0; i < img->num_sections; i++) {
		const struct eif_section *s = &img->sections[i];
		struct machine_copy c = {src, s->offset + EIF_SECTION_HEADER_SIZE};

		if (s->type != EIF_SECTION_RAMDISK)
			continue;
		if (guestmem_span(&m->gm, dst, s->size, machine_copy_piece, &c) != 0)
			return nectl_err_set(err, NECTL_ERR_EIF,
					     "ramdisk section %u is out of range", i);
		dst += s->size;
	}
	return 0;
}

/* The bzImage, contiguous for x86_boot_setup: always a heap copy, wherever
 * the regions meet, so that there is one path, and placing the kernel may
 * overwrite the EIF it came from. */
static int machine_read_kernel(const struct eif_source *src, const struct eif_section *k,
			       uint8_t **out, struct nectl_err *err)
{
	int rc;

	/* It runs below the MMIO hole: no bigger kernel can boot. */
	if (k->size > X86_LOW_RAM_END)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "the kernel section (%llu bytes) is "
				     "larger than low memory",
				     (unsigned long long)k->size);
	*out = malloc(k->size ? (size_t)k->size : 1);
	if (!*out)
		return nectl_err_set(err, NECTL_ERR_MEM_AVAILABLE,
				     "out of memory for the %llu-byte kernel",
				     (unsigned long long)k->size);
	rc = src->read_at(src->ctx, k->offset + EIF_SECTION_HEADER_SIZE, *out, (size_t)k->size);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		return nectl_err_set(err, NECTL_ERR_EIF, "the kernel section is out of range");
	}
	return 0;
}

static int machine_boot_setup(struct machine *m, const uint8_t *kernel, size_t kernel_len,
			      uint64_t initrd, uint64_t initrd_len, struct nectl_err *err)
{
	struct x86_mmio_dev devs[MACHINE_MAX_VDEVS];

	for (unsigned i = 0; i < m->nvdevs; i++)
		devs[i] = m->vdevs[i].at;
	return x86_boot_setup(&m->gm,
			      &(struct x86_boot_spec){.bzimage = kernel,
						      .bzimage_len = kernel_len,
						      .cmdline = m->img.cmdline,
						      .initrd_gpa = initrd,
						      .initrd_len = initrd_len,
						      .ncpus = m->spec.ncpus,
						      .devs = devs,
						      .ndevs = m->nvdevs,
						      .acpi = m->spec.acpi,
						      .uart = true,
						      .pvpanic = true},
			      &m->regs, err);
}

static int machine_nsm_create(struct machine *m, const struct eif_image *img,
			      struct nectl_err *err);

/* The EIF that the launch wrote at the load offset, parsed from enclave
 * memory (never trusted: the section table bounds everything by the memory
 * after the offset, whichever regions it lies in), then the boot prepared
 * from it, as the Nitro hypervisor does. */
int machine_load_image(struct machine *m, struct nectl_err *err)
{
	struct eif_source src;
	struct eif_image *img = &m->img;
	uint64_t initrd = 0, initrd_len = 0;
	uint8_t *kernel = NULL;
	const struct eif_section *k;
	const char *name = m->spec.image_name ? m->spec.image_name : "the enclave image";
	int rc;

	if (m->have_img)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "the image is already loaded");
	eif_source_from_regions(&src, m->mem, m->nmem, m->image_offset, name);
	if (eif_read(&src, img, NULL, err) < 0)
		return -1;
	m->have_img = true;
	if (img->arch != EIF_ARCH_X86_64)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s is an %s image; this hypervisor runs x86_64", name,
				     eif_arch_name(img->arch));
	k = &img->sections[eif_image_find(img, EIF_SECTION_KERNEL)];
	if (machine_place_initrd(m, &src, img, &initrd, &initrd_len, err) < 0 ||
	    (m->spec.nsm && machine_nsm_create(m, img, err) < 0) ||
	    machine_read_kernel(&src, k, &kernel, err) < 0)
		return -1;
	rc = machine_boot_setup(m, kernel, (size_t)k->size, initrd, initrd_len, err);
	free(kernel);
	return rc;
}

/* The ACPI sleep control register, there only with ACPI (the FADT names
 * it): S5 is a power-off, which ends the run; other sleep states are not
 * offered (_S5 is the only one in the DSDT). */
static void machine_sleep_write(struct machine *m, uint8_t v)
{
	if ((v & X86_ACPI_SLP_EN) && ((v >> 2) & 7) == X86_ACPI_SLP_TYP_S5) {
		m->poweroff = true;
		kvm_vm_stop(m->vm, KVM_STOP_REQUESTED);
	}
}

static void machine_pio(void *ctx, uint16_t port, bool is_write, uint8_t *data, unsigned len)
{
	struct machine *m = ctx;

	if (port >= UART_COM1_BASE && port < UART_COM1_BASE + 8) {
		if (is_write)
			uart_write(&m->uart, port - UART_COM1_BASE, data[0]);
		else
			uart_read_bytes(&m->uart, port - UART_COM1_BASE, data, len);
	} else if (port == I8042_DATA_PORT || port == I8042_CMD_PORT) {
		if (is_write)
			i8042_write(&m->kbd, port, data[0]);
		else
			i8042_read_bytes(&m->kbd, port, data, len);
	} else if (port == PVPANIC_PORT && m->spec.acpi) {
		if (is_write) {
			pvpanic_write(&m->pvpanic, data[0]);
		} else {
			/* Byte-wide: nothing answers past it. */
			memset(data, 0xff, len);
			data[0] = pvpanic_read(&m->pvpanic);
		}
	} else if (port == X86_ACPI_SLEEP_PORT && m->spec.acpi) {
		if (is_write) {
			machine_sleep_write(m, data[0]);
		} else {
			/* Byte-wide, as the UART's: nothing answers past it. */
			memset(data, 0xff, len);
			data[0] = 0; /* sleep status: never woken */
		}
	} else if (!is_write) {
		/* Nothing there: a floating bus reads all ones. */
		memset(data, 0xff, len);
	}
}

/* A device owns its whole slot: past its registers, it reads 0. */
static void machine_mmio(void *ctx, uint64_t gpa, bool is_write, uint8_t *data, unsigned len)
{
	struct machine *m = ctx;

	for (unsigned i = 0; i < m->nvdevs; i++) {
		const struct machine_vdev *d = &m->vdevs[i];

		if (gpa < d->at.base || gpa - d->at.base >= d->at.size)
			continue;
		if (is_write)
			virtio_mmio_write(d->mmio, gpa - d->at.base, data, len);
		else
			virtio_mmio_read(d->mmio, gpa - d->at.base, data, len);
		return;
	}
	if (!is_write)
		memset(data, 0xff, len);
}

static void machine_nsm_irq(void *ctx, int level)
{
	struct machine *m = ctx;

	if (m->vm)
		kvm_vm_irq(m->vm, NITRO_NSM_IRQ, level);
}

/* The NSM in its Nitro slot, its boot PCRs measured from the image. */
static int machine_nsm_create(struct machine *m, const struct eif_image *img, struct nectl_err *err)
{
	struct nsm_cfg cfg = *m->spec.nsm;

	memcpy(cfg.pcrs[0], img->pcrs.pcr0, NSM_PCR_LEN);
	memcpy(cfg.pcrs[1], img->pcrs.pcr1, NSM_PCR_LEN);
	memcpy(cfg.pcrs[2], img->pcrs.pcr2, NSM_PCR_LEN);
	if (img->pcrs.has_pcr8)
		memcpy(cfg.pcrs[8], img->pcrs.pcr8, NSM_PCR_LEN);
	if (nsm_new(&m->nsm_core, &cfg, err) < 0)
		return -1;
	m->nsm_dev = nsm_virtio_new(m->nsm_core, &m->gm, machine_nsm_irq, m);
	if (!m->nsm_dev)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	m->vdevs[m->nvdevs++] = (struct machine_vdev){
	    "nsm", {NITRO_NSM_MMIO, NITRO_MMIO_SLOT, NITRO_NSM_IRQ}, nsm_virtio_mmio(m->nsm_dev)};
	return 0;
}

static void machine_vsock_irq(void *ctx, int level)
{
	struct machine *m = ctx;

	if (m->vm)
		kvm_vm_irq(m->vm, NITRO_VSOCK_IRQ, level);
}

/* Without a parent side, guest connections are refused with RST (the
 * device itself answers the heartbeat). */
static int machine_vsock_refuse(void *ctx, uint32_t port, uint64_t conn_id)
{
	(void)ctx;
	(void)port;
	(void)conn_id;
	return -1;
}

static const struct vsock_host_ops machine_vsock_none = {.connect = machine_vsock_refuse};

static void machine_console(void *ctx, const uint8_t *buf, size_t len)
{
	struct machine *m = ctx;

	if (m->spec.console)
		m->spec.console(m->spec.ctx, buf, len);
}

static void machine_uart_irq(void *ctx, int level)
{
	struct machine *m = ctx;

	if (m->vm)
		kvm_vm_irq(m->vm, UART_COM1_IRQ, level);
}

static void machine_reset(void *ctx)
{
	struct machine *m = ctx;

	m->reset = true;
	kvm_vm_stop(m->vm, KVM_STOP_REQUESTED);
}

/* The kernel is going down: stop now rather than wait out panic=N. */
static void machine_panicked(void *ctx, uint8_t events)
{
	struct machine *m = ctx;

	(void)events;
	m->panicked = true;
	kvm_vm_stop(m->vm, KVM_STOP_REQUESTED);
}

static void machine_vsock_broken(void *ctx)
{
	struct machine *m = ctx;

	if (m->spec.device_broken)
		m->spec.device_broken(m->spec.ctx, "virtio-vsock");
}

static int machine_vsock_create(struct machine *m, struct nectl_err *err)
{
	const struct vsock_host_ops *ops =
	    m->spec.vsock_ops ? m->spec.vsock_ops : &machine_vsock_none;

	m->vsock = vsock_new(m->spec.cid, &m->gm, machine_vsock_irq, m, ops, m->spec.vsock_ctx);
	if (!m->vsock)
		return nectl_err_sys(err, NECTL_ERR_INVALID_ARG, errno, "enclave CID %llu",
				     (unsigned long long)m->spec.cid);
	vsock_mmio(m->vsock)->on_broken = machine_vsock_broken;
	vsock_mmio(m->vsock)->broken_ctx = m;
	m->vdevs[m->nvdevs++] = (struct machine_vdev){
	    "vsock", {NITRO_VSOCK_MMIO, NITRO_MMIO_SLOT, NITRO_VSOCK_IRQ}, vsock_mmio(m->vsock)};
	return 0;
}

/* The virtio-vsock TX notify bypasses the bus: the kernel signals an eventfd
 * and the vCPU runs on at once, as with vhost, while this thread runs the
 * queue under the bus lock. RX notifies stay bus exits: the guest gives
 * buffers back, and filling them at once on its own vCPU is quicker than a
 * hand-over (host -> guest measured 0.84 of vhost with both, 0.99 without). */
static void *machine_io_thread(void *arg)
{
	struct machine *m = arg;
	const uint32_t q = VSOCK_TXQ;

	for (;;) {
		struct pollfd p[2] = {{.fd = m->tx_fd, .events = POLLIN},
				      {.fd = m->stop_fd, .events = POLLIN}};
		uint64_t v;

		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents)
			return NULL;
		if (!p[0].revents || read(m->tx_fd, &v, sizeof(v)) != sizeof(v))
			continue;
		kvm_vm_bus_lock(m->vm);
		virtio_mmio_write(vsock_mmio(m->vsock), VIRTIO_MMIO_QUEUE_NOTIFY, &q, sizeof(q));
		kvm_vm_bus_unlock(m->vm);
	}
}

/* Once the VM stopped: afterwards no device code runs, as the owner of the
 * vsock host side expects once machine_wait returned. */
static void machine_io_stop(struct machine *m)
{
	uint64_t one = 1;

	if (!m->io_started)
		return;
	if (write(m->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(m->io, NULL);
	m->io_started = false;
}

static int machine_io_setup(struct machine *m, struct nectl_err *err)
{
	m->tx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->tx_fd < 0 || m->stop_fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "eventfd");
	return kvm_vm_ioeventfd(m->vm, NITRO_VSOCK_MMIO + VIRTIO_MMIO_QUEUE_NOTIFY, 4, VSOCK_TXQ,
				m->tx_fd, err);
}

int machine_create(struct machine **out, const struct machine_spec *spec, struct nectl_err *err)
{
	struct machine *m = calloc(1, sizeof(*m));
	struct kvm_bus bus;

	if (!m)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	m->spec = *spec;
	m->tx_fd = m->stop_fd = -1;
	bus = (struct kvm_bus){.pio = machine_pio, .mmio = machine_mmio, .ctx = m};
	uart_init(&m->uart, machine_console, machine_uart_irq, m);
	i8042_init(&m->kbd, machine_reset, m);
	pvpanic_init(&m->pvpanic, machine_panicked, m);
	if (machine_memory_setup(m, err) < 0 || machine_vsock_create(m, err) < 0 ||
	    kvm_vm_create(&m->vm, &m->gm, spec->ncpus, &bus, err) < 0 ||
	    machine_io_setup(m, err) < 0) {
		machine_destroy(m);
		return -1;
	}
	if (spec->host_cpus)
		kvm_vm_pin(m->vm, spec->host_cpus, spec->ncpus);
	*out = m;
	return 0;
}

unsigned machine_memory_regions(const struct machine *m, struct mem_region *r, unsigned max)
{
	if (max < m->nmem)
		return 0;
	memcpy(r, m->mem, m->nmem * sizeof(*r));
	return m->nmem;
}

uint64_t machine_image_offset(const struct machine *m)
{
	return m->image_offset;
}

const char *machine_memory_kind(const struct machine *m)
{
	return m->huge ? "hugepages" : "anonymous memory";
}

const struct eif_image *machine_image(const struct machine *m)
{
	return &m->img;
}

struct vsock_dev *machine_vsock(struct machine *m)
{
	return m->vsock;
}

int machine_device_probe(struct machine *m, const char *name, struct machine_probe *out)
{
	for (unsigned i = 0; i < m->nvdevs; i++) {
		const struct machine_vdev *d = &m->vdevs[i];

		if (strcmp(d->name, name) != 0)
			continue;
		kvm_vm_bus_lock(m->vm);
		out->stage = virtio_mmio_probe(d->mmio);
		out->status_seen = d->mmio->status_seen;
		kvm_vm_bus_unlock(m->vm);
		x86_mmio_dev_cmdline(&d->at, out->announced, sizeof(out->announced));
		return 0;
	}
	return -1;
}

void machine_bus_lock(void *m)
{
	kvm_vm_bus_lock(((struct machine *)m)->vm);
}

void machine_bus_unlock(void *m)
{
	kvm_vm_bus_unlock(((struct machine *)m)->vm);
}

int machine_start(struct machine *m, struct nectl_err *err)
{
	if (!m->have_img)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "no image loaded to start");
	if (pthread_create(&m->io, NULL, machine_io_thread, m) != 0)
		return nectl_err_set(err, NECTL_ERR_FILE, "cannot start the device I/O thread");
	m->io_started = true;
	return kvm_vm_start(m->vm, &m->regs, err);
}

int machine_run(struct machine *m, enum machine_exit *why, char *detail, size_t len,
		struct nectl_err *err)
{
	if (machine_start(m, err) < 0)
		return -1;
	machine_wait(m, why, detail, len);
	return 0;
}

void machine_wait(struct machine *m, enum machine_exit *why, char *detail, size_t len)
{
	enum kvm_stop stop = kvm_vm_wait(m->vm, detail, len);

	machine_io_stop(m);

	if (stop == KVM_STOP_SHUTDOWN)
		*why = MACHINE_EXIT_TRIPLE_FAULT;
	else if (stop == KVM_STOP_INTERNAL)
		*why = MACHINE_EXIT_KVM_ERROR;
	else
		*why = m->panicked   ? MACHINE_EXIT_PANIC
		       : m->poweroff ? MACHINE_EXIT_POWEROFF
		       : m->reset    ? MACHINE_EXIT_RESET
				     : MACHINE_EXIT_STOPPED;
}

void machine_stop(struct machine *m)
{
	kvm_vm_stop(m->vm, KVM_STOP_REQUESTED);
}

void machine_destroy(struct machine *m)
{
	if (!m)
		return;
	machine_io_stop(m);
	kvm_vm_destroy(m->vm);
	if (m->tx_fd >= 0)
		close(m->tx_fd);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	if (m->vsock)
		vsock_free(m->vsock);
	nsm_virtio_free(m->nsm_dev);
	nsm_free(m->nsm_core);
	if (m->have_img)
		eif_image_free(&m->img);
	/* Donated memory belongs to whoever donated it. */
	free(m);
}
