/* The native launch sequence up to NE_START_ENCLAVE, in the NE driver's
 * vocabulary, on either NE device (nectl/ne_dev.h): create the enclave, plan
 * and map hugepage memory (nectl/hugeplan.h), ask the image load offset,
 * stream the EIF there once, donate the regions largest first, add vCPUs
 * (given, or chosen by the driver), start with the CID and the debug flag.
 * Every failure undoes what was done and names the step: E27 for memory,
 * E28 for the enclave, E29 for an ioctl (with the driver's error in words). */
#ifndef NECTL_NATIVE_H
#define NECTL_NATIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "nectl/err.h"
#include "nectl/hugeplan.h"
#include "nectl/memregion.h"
#include "nectl/ne_dev.h"

#define NATIVE_MAX_CPUS 64

struct native_spec {
	const char *eif_path;
	uint64_t memory_bytes;
	unsigned ncpus;		 /* with cpu_ids NULL: chosen by the driver */
	const uint32_t *cpu_ids; /* ncpus of them, or NULL */
	uint64_t cid;		 /* 0: the hypervisor chooses */
	bool debug;
	const char *sysfs;    /* where the NUMA nodes' hugepages are read ("/sys") */
	unsigned node;	      /* the CPU pool's NUMA node */
	uint64_t max_regions; /* the device's region limit for the plan (0: none) */
};

struct native_enclave {
	struct ne_vm *vm;
	uint64_t slot_uid, cid, eif_len;
	struct huge_plan plan;
	struct mem_region r[HUGE_MAX_SIZES]; /* donation order */
	unsigned nr;
	uint32_t cpus[NATIVE_MAX_CPUS];
	unsigned ncpus;
};

int native_start(struct ne_dev *d, const struct native_spec *spec, struct native_enclave *out,
		 struct nectl_err *err);
/* Closes the enclave (the only way to stop it) and unmaps its memory. */
void native_close(struct native_enclave *n);

#endif
