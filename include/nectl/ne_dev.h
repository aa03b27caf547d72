/* The NE device as the native launch uses it, behind one interface: the
 * kernel's /dev/nitro_enclaves (its ioctls), or the driver model of src/sim
 * for hosts without Nitro hardware, chosen only explicitly
 * (NECTL_NE_DEVICE=sim). Calls return 0 or the errno the ioctl sets (a
 * standard errno, or NE_ERR_* 256-275: ne_err_words says them). */
#ifndef NECTL_NE_DEV_H
#define NECTL_NE_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "nectl/accel.h"
#include "nectl/err.h"
#include "nectl/sim.h"

#define NE_DEV_PATH "/dev/nitro_enclaves"

struct ne_dev;
struct ne_vm;

/* The real device at `path` (NULL: NE_DEV_PATH). NECTL_ERR_FILE with
 * nitro-cli's words when it cannot be opened (E19). */
int ne_dev_open(const char *path, struct ne_dev **out, struct nectl_err *err);
/* The driver model over `t` with its pool set to `pool` and the host's page
 * facts (sim_pages_host) unless `pages` is given. */
int ne_dev_open_sim(const struct sim_topology *t, const char *pool, sim_page_fn pages, void *ctx,
		    struct ne_dev **out, struct nectl_err *err);
/* What a simulated enclave's NE_START_ENCLAVE hands the simulated
 * hypervisor: the memory as donated, in order, and the rest of the start. */
struct ne_sim_boot {
	const struct mem_region *memory;
	unsigned nmemory;
	uint64_t image_offset;
	unsigned ncpus;
	uint64_t cid;
	bool debug;
};

/* The simulated hypervisor (src/sim/sim_hv.c: accel/kvm over the donated
 * memory). boot returns 0 or the errno NE_START_ENCLAVE then fails with,
 * saying why in `why`; it calls ne_vm_ended when the enclave ends. halt
 * stops and joins it (at the enclave's last close). */
struct ne_sim_hv_ops {
	int (*boot)(void *hv, struct ne_vm *vm, const struct ne_sim_boot *b, char *why, size_t len);
	void (*halt)(void *hv);
	struct machine *(*machine)(void *hv);
	void (*exit)(void *hv, struct accel_exit *out);
};
/* Without one, a simulated start only changes the model's state (tests). */
void ne_dev_sim_hypervisor(struct ne_dev *d, const struct ne_sim_hv_ops *ops, void *hv);

/* The model only: the core of `cpu` is held by another enclave. */
void ne_dev_sim_hold_core(struct ne_dev *d, unsigned cpu);

/* "native" or "simulated", for describe's Mode. */
const char *ne_dev_mode(const struct ne_dev *d);
void ne_dev_close(struct ne_dev *d);

int ne_create_vm(struct ne_dev *d, struct ne_vm **out, uint64_t *slot_uid);
int ne_add_vcpu(struct ne_vm *vm, uint32_t *cpu);
int ne_image_load_info(struct ne_vm *vm, uint64_t *offset);
int ne_set_memory(struct ne_vm *vm, uintptr_t addr, uint64_t size);
int ne_start(struct ne_vm *vm, bool debug, uint64_t *cid);
/* Polls with EPOLLHUP once the enclave has ended (and from then on). */
int ne_vm_fd(const struct ne_vm *vm);
/* The simulated enclave's end (its accelerator stopped); nothing for the
 * real device, whose hypervisor says so itself. */
void ne_vm_ended(struct ne_vm *vm);
/* Why the last call failed beyond its errno (the simulated hypervisor's
 * words), or "". */
const char *ne_vm_why(const struct ne_vm *vm);
/* How it ended: known only for the simulated hypervisor. */
void ne_vm_exit(const struct ne_vm *vm, struct accel_exit *out);
/* The simulated hypervisor's machine, or NULL. */
struct machine *ne_vm_machine(const struct ne_vm *vm);
/* Closing is the only way to stop an enclave. */
void ne_vm_close(struct ne_vm *vm);

#endif
