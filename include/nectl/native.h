/* The NE device (nectl/ne_dev.h: /dev/nitro_enclaves, or the driver model)
 * as an accelerator (nectl/accel.h) for the launch sequence
 * (nectl/launch_seq.h): memory planned before anything is mapped
 * (nectl/hugeplan.h), one hugetlb mapping per page size, largest first;
 * E27 for memory, E28 for the enclave, E29 for an ioctl (with the driver's
 * error in words). Destroying it closes the enclave, the only way to stop
 * it, and unmaps its memory. */
#ifndef NECTL_NATIVE_H
#define NECTL_NATIVE_H

#include <stdint.h>

#include "nectl/accel.h"
#include "nectl/err.h"
#include "nectl/hugeplan.h"
#include "nectl/ne_dev.h"

struct ne_accel_cfg {
	const char *sysfs;    /* where the NUMA nodes' hugepages are read ("/sys") */
	unsigned node;	      /* the CPU pool's NUMA node */
	uint64_t max_regions; /* the device's region limit for the plan (0: none) */
};

/* `d` must outlive the accelerator. */
int accel_ne_new(struct accel **out, struct ne_dev *d, const struct ne_accel_cfg *cfg,
		 struct nectl_err *err);
/* The memory plan (after map_memory), and the enclave (after create). */
const struct huge_plan *accel_ne_plan(const struct accel *a);
struct ne_vm *accel_ne_vm(const struct accel *a);

#endif
