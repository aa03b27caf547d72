/* An accelerator: what runs an enclave, in the NE driver's vocabulary. The
 * launch sequence (nectl/launch_seq.h) drives every mode through this table
 * and never knows which one it drives:
 *   - the real /dev/nitro_enclaves (accel/nitro, ne_accel.c): hugetlb memory
 *     only, the driver's rules, the Nitro hypervisor boots the EIF;
 *   - the NE driver model (src/sim) behind the same table, whose
 *     NE_START_ENCLAVE boots accel/kvm over the donated memory;
 *   - accel/kvm directly (emulation, accel_kvm.c), with lax memory rules:
 *     hugepages when reserved, ordinary memory otherwise.
 * Calls are made from one thread, in the order of the sequence; `wait` runs
 * on a thread of its own and `stop` may be called from any thread. */
#ifndef NECTL_ACCEL_H
#define NECTL_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/err.h"
#include "nectl/machine.h"
#include "nectl/memregion.h"

#define ACCEL_MAX_REGIONS MACHINE_MAX_REGIONS

/* How the enclave ended, as far as the accelerator can tell: a machine of
 * nectl's own knows why; the Nitro hypervisor only says that it ended. */
struct accel_exit {
	bool known;
	enum machine_exit why;
	char detail[256];
};

struct accel;

struct accel_ops {
	/* NE_CREATE_VM: the enclave's slot (its uid). */
	int (*create)(struct accel *a, uint64_t *slot_uid, struct nectl_err *err);
	/* Maps `bytes` of enclave memory as this accelerator requires it, in
	 * donation order; the accelerator owns the mappings from here on. */
	int (*map_memory)(struct accel *a, uint64_t bytes, struct mem_region *r, unsigned *n,
			  struct nectl_err *err);
	/* NE_GET_IMAGE_LOAD_INFO: where the EIF goes in enclave memory. */
	int (*load_offset)(struct accel *a, uint64_t *offset, struct nectl_err *err);
	/* NE_SET_USER_MEMORY_REGION */
	int (*donate)(struct accel *a, const struct mem_region *r, struct nectl_err *err);
	/* NE_ADD_VCPU: *cpu is the CPU asked for (auto: ACCEL_CPU_AUTO); the
	 * one given is written back. */
	int (*add_vcpu)(struct accel *a, uint32_t *cpu, struct nectl_err *err);
	/* NE_START_ENCLAVE: *cid 0 gets one assigned and written back. */
	int (*start)(struct accel *a, bool debug, uint64_t *cid, struct nectl_err *err);
	/* Blocks until the enclave has ended (by itself, or after stop). */
	void (*wait)(struct accel *a, struct accel_exit *out);
	/* Makes wait return soon; the enclave ends at destroy at the latest. */
	void (*stop)(struct accel *a);
	/* Ends the enclave if it still runs (closing is the only way to stop a
	 * Nitro enclave) and gives back its memory. NULL-safe. */
	void (*destroy)(struct accel *a);
	/* nectl's own machine running the enclave (emulated, simulated), for
	 * the parent's side of its vsock and what its devices saw; NULL when
	 * the Nitro hypervisor runs it. Valid after start. */
	struct machine *(*machine)(struct accel *a);
	/* "128 x 2 MiB hugepages on node 0": what backs the enclave. */
	void (*memory_text)(const struct accel *a, char *buf, size_t len);
};

#define ACCEL_CPU_AUTO UINT32_MAX

struct accel {
	const struct accel_ops *ops;
	const char *mode; /* describe's Mode: "emulated", "simulated", "native" */
};

static inline void accel_destroy(struct accel *a)
{
	if (a)
		a->ops->destroy(a);
}

/* accel/kvm directly (emulation): `tmpl` is the machine as the supervisor
 * wants it (console, vsock host side, ACPI, host CPUs to pin to); memory,
 * CPU count, CID and image offset come from the launch sequence. */
int accel_kvm_new(struct accel **out, const struct machine_spec *tmpl, struct nectl_err *err);

#endif
