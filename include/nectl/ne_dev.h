/* The NE device as the native launch uses it, behind one interface: the
 * kernel's /dev/nitro_enclaves (its ioctls), or the driver model of src/sim
 * for hosts without Nitro hardware, chosen only explicitly
 * (NECTL_NE_DEVICE=sim). Calls return 0 or the errno the ioctl sets (a
 * standard errno, or NE_ERR_* 256-275: ne_err_words says them). */
#ifndef NECTL_NE_DEV_H
#define NECTL_NE_DEV_H

#include <stdbool.h>
#include <stdint.h>

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
/* Closing is the only way to stop an enclave. */
void ne_vm_close(struct ne_vm *vm);

#endif
