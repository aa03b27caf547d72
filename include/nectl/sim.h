/* A model of the Linux NE driver (drivers/virt/nitro_enclaves) for hosts
 * without Nitro hardware: the same checks in the kernel's order, with the
 * same errno and NE_ERR_* values, over a configurable parent topology
 * (../shared/reference/linux-ne-and-nsm-drivers.md §4-§6, §13). Calls return
 * 0 or the errno the ioctl would set (a standard errno, or NE_ERR_* 256-275).
 * What backs an address (hugetlb page size, NUMA node) comes from a callback:
 * /proc/self/smaps and move_pages(2) on a real host (sim_pages_host), or a
 * test's own. Not thread-safe: the caller serialises, as the driver's
 * mutexes do. */
#ifndef NECTL_SIM_H
#define NECTL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/err.h"

#define SIM_MAX_CORES	      256
#define SIM_MAX_THREADS	      8
#define SIM_MAX_REGIONS	      1024 /* user regions recorded per enclave */
#define SIM_IMAGE_LOAD_OFFSET (8ull << 20)
#define SIM_MIN_MEMORY	      (64ull << 20)
#define SIM_FIRST_AUTO_CID    16

struct sim_core {
	unsigned id; /* topology_core_id */
	int node;
	unsigned nthreads;
	unsigned cpus[SIM_MAX_THREADS];
};

/* The parent instance as the driver sees it. */
struct sim_topology {
	struct sim_core cores[SIM_MAX_CORES];
	unsigned ncores;
	unsigned nr_cpu_ids;	  /* possible CPUs */
	uint64_t max_mem_regions; /* SLOT_ALLOC's reply (its real value is unverified) */
};

/* What backs one user address: 0, or an errno (EFAULT: unmapped). */
struct sim_page {
	bool huge;     /* hugetlb */
	uint64_t size; /* the page's size as the driver would see it */
	int node;      /* its NUMA node */
};
/* Called for each page of one NE_SET_USER_MEMORY_REGION in turn; `region` is
 * that call's start address, so an answer may be reused within the call
 * (the driver holds the process's mappings still for its duration). */
typedef int (*sim_page_fn)(void *ctx, uintptr_t region, uintptr_t addr, struct sim_page *out);

/* The host's own answer: the mapping's KernelPageSize in /proc/self/smaps
 * (an address inside a larger hugepage than its alignment sees a tail
 * page, as the driver does) and the page's node from move_pages(2). The page
 * is faulted in first, as the driver's get_user_pages does. */
int sim_pages_host(void *ctx, uintptr_t region, uintptr_t addr, struct sim_page *out);

/* c6i.2xlarge-like: 4 cores x 2 threads, siblings i and i+4, one node. */
void sim_topology_default(struct sim_topology *t);
/* NECTL_NE_DEVICE's value: "sim" (the default above) or "sim:FILE" (a JSON
 * topology, src/sim/sim_config.c), with the CPU pool to set, and whether the
 * enclave is reached over vsock loopback instead of a simulated hypervisor. */
int sim_topology_load(const char *spec, struct sim_topology *t, char *pool, size_t len,
		      bool *loopback, struct nectl_err *err);

struct sim_ne;
struct sim_enclave;

struct sim_ne *sim_ne_new(const struct sim_topology *t, sim_page_fn pages, void *ctx);
void sim_ne_free(struct sim_ne *d);
/* Writing ne_cpus: 0, EPERM (an enclave exists), EINVAL (the pool rules:
 * online, one node, not CPU 0's core, full cores), or the parse error.
 * The old pool is gone even when the new one is refused, as in the driver. */
int sim_ne_set_pool(struct sim_ne *d, const char *cpulist);

/* The core of `cpu` belongs to an enclave outside this model (another
 * supervisor's simulated enclave): out of the pool, as a core moved into an
 * enclave is in the driver. Unknown CPUs are ignored. */
void sim_ne_hold_core(struct sim_ne *d, unsigned cpu);

/* NE_CREATE_VM: the enclave and its non-zero slot uid. */
int sim_ne_create_vm(struct sim_ne *d, struct sim_enclave **out, uint64_t *slot_uid);
/* NE_ADD_VCPU: *vcpu 0 picks one (a thread of a core already claimed, else
 * the lowest free core); the chosen id is written back. */
int sim_ne_add_vcpu(struct sim_enclave *e, uint32_t *vcpu);
int sim_ne_image_load_info(struct sim_enclave *e, uint64_t flags, uint64_t *offset);
int sim_ne_set_memory(struct sim_enclave *e, uint64_t flags, uint64_t size, uintptr_t addr);
/* NE_START_ENCLAVE: *cid 0 gets one assigned (>= 16, unused). */
int sim_ne_start(struct sim_enclave *e, uint64_t flags, uint64_t *cid);
/* The enclave ended by itself (the device's out-of-band event). */
void sim_ne_stopped(struct sim_enclave *e);
/* EPOLLHUP: only after the enclave ended, and from then on. */
bool sim_ne_hup(const struct sim_enclave *e);
uint64_t sim_ne_memory(const struct sim_enclave *e); /* bytes donated */
/* Last close: cores back to the pool, memory unpinned. */
void sim_ne_release(struct sim_enclave *e);

#endif
