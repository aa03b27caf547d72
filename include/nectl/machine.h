/* An emulated enclave's machine: enclave memory with the EIF written at the
 * NE driver's load offset, the kernel booted from the EIF found there (parsed
 * again, never trusted), the UART console, the i8042 reset, on nectl's KVM
 * accelerator. By default it is Nitro's machine: the virtio-mmio devices
 * announced by entries appended to the EIF's cmdline, CPUs and interrupt
 * controllers in an MP table, no ACPI; ACPI tables are an option. */
#ifndef NECTL_MACHINE_H
#define NECTL_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/eif.h"
#include "nectl/memregion.h"
#include "nectl/err.h"
#include "nectl/kvm.h"
#include "nectl/nsm.h"
#include "nectl/virtio.h"
#include "nectl/vsock.h"

/* Where the NE driver (and so nectl) writes the EIF in enclave memory. */
#define MACHINE_EIF_OFFSET (8ull << 20)
/* Donated memory regions a machine takes (the NE driver's plan maps at most
 * nine, one per hugepage size). */
#define MACHINE_MAX_REGIONS 16

struct machine;

struct machine_spec {
	/* For messages only: the machine never opens it (the launch writes the
	 * EIF into enclave memory, machine_load_image finds it there). */
	const char *image_name;
	/* The enclave's memory, as the launch sequence donated it (accel_kvm.c
	 * in emulation, the simulated hypervisor behind the NE model): these
	 * regions concatenated in donation order, mapped into the guest from
	 * physical 0 upward (skipping the 32-bit MMIO hole). The machine never
	 * allocates, unmaps or frees them; they must outlive it. */
	const struct mem_region *memory;
	unsigned nmemory;      /* 1 to MACHINE_MAX_REGIONS */
	uint64_t image_offset; /* where the EIF was written */
	bool memory_huge;      /* the regions are hugetlb mappings */
	unsigned ncpus;
	uint64_t cid; /* the enclave's vsock CID (>= 4) */
	const int
	    *host_cpus; /* ncpus entries: vCPU i runs on host CPU host_cpus[i]; NULL: anywhere */
	/* Called from vCPU threads with the bus lock held; must not block. */
	void (*console)(void *ctx, const uint8_t *buf, size_t len);
	void *ctx;
	/* The parent's side of vsock (NULL: every guest connection is refused;
	 * the heartbeat is answered either way). Ops run under the bus lock. */
	const struct vsock_host_ops *vsock_ops;
	void *vsock_ctx;
	/* A device met a malformed queue and stopped until the guest resets it
	 * (called once per breakage, under the bus lock; must not block). */
	void (*device_broken)(void *ctx, const char *device);
	/* ACPI tables too (MADT, a DSDT describing the devices, S5 power-off):
	 * not Nitro's machine, for debugging kernels that need them. An image
	 * that boots only with them would not boot on Nitro. */
	bool acpi;
	/* Called by the accelerator that creates the machine (nectl/accel.h),
	 * once the image is loaded and before any vCPU runs: the parent's side
	 * of vsock attaches here. An error stops the start. May be NULL. */
	int (*ready)(void *ctx, struct machine *m, struct nectl_err *err);
	/* The NSM (virtio ID 33 at 0xd0001000, IRQ 6), as on Nitro: this
	 * template gives the signer, module ID, debug flag and PCR3/PCR4; the
	 * machine measures PCR0/1/2 (and PCR8 of a signed image) from the EIF
	 * it loads, as the Nitro hypervisor does. NULL: no NSM. */
	const struct nsm_cfg *nsm;
};

/* What the guest's driver did with one of the machine's virtio-mmio devices,
 * as the device itself saw it. */
struct machine_probe {
	enum virtio_probe stage;
	uint32_t status_seen; /* every driver status bit the device accepted */
	char announced[64];   /* its cmdline entry: "virtio_mmio.device=4K@0xd0000000:5" */
};

enum machine_exit {
	MACHINE_EXIT_RESET,    /* the guest rebooted (reboot=k): an enclave's normal end */
	MACHINE_EXIT_POWEROFF, /* the guest powered off (ACPI S5: only with spec.acpi) */
	MACHINE_EXIT_STOPPED,  /* the host stopped it */
	MACHINE_EXIT_TRIPLE_FAULT,
	MACHINE_EXIT_KVM_ERROR,
	MACHINE_EXIT_PANIC, /* the guest's kernel wrote pvpanic (only with spec.acpi) */
};

struct machine;

/* With spec.memory, each region must be non-empty, 4 KiB aligned in address
 * and size, and apart from the others (NECTL_ERR_INVALID_ARG), and the image
 * offset inside their sum (NECTL_ERR_MEM_REQUEST). */
int machine_create(struct machine **out, const struct machine_spec *spec, struct nectl_err *err);
/* The enclave's memory in donation order (emulated: one region; donated:
 * spec.memory), all of it or nothing (0) when max is too small, and where
 * in it the EIF goes (the NE driver's image load offset). */
unsigned machine_memory_regions(const struct machine *m, struct mem_region *r, unsigned max);
uint64_t machine_image_offset(const struct machine *m);
/* Parses the EIF found at the image offset and prepares the boot; once,
 * before machine_start. NECTL_ERR_EIF for an image that will not boot. */
int machine_load_image(struct machine *m, struct nectl_err *err);
/* "hugepages" or "anonymous memory": what backs the enclave's memory. */
const char *machine_memory_kind(const struct machine *m);
/* The image as parsed from enclave memory (PCRs, signature, metadata);
 * valid until machine_destroy. */
const struct eif_image *machine_image(const struct machine *m);
/* The vsock device, for the parent's side; call into it under the bus lock. */
struct vsock_dev *machine_vsock(struct machine *m);
/* How far the guest got with the virtio-mmio device `name` ("vsock"); -1 when
 * the machine has none. Takes the bus lock. */
int machine_device_probe(struct machine *m, const char *name, struct machine_probe *out);
/* void * so they can be handed out as callbacks. */
void machine_bus_lock(void *m);
void machine_bus_unlock(void *m);
/* Starts the vCPUs; machine_wait then blocks until the machine stops, with
 * detail saying more for errors. machine_run does both. */
int machine_start(struct machine *m, struct nectl_err *err);
void machine_wait(struct machine *m, enum machine_exit *why, char *detail, size_t len);
int machine_run(struct machine *m, enum machine_exit *why, char *detail, size_t len,
		struct nectl_err *err);
/* Safe from any thread. */
void machine_stop(struct machine *m);
void machine_destroy(struct machine *m);

#endif
