/* The launch sequence every mode shares, in the NE driver's vocabulary, on
 * any accelerator (nectl/accel.h): create the enclave, map its memory, ask
 * the image load offset, stream the EIF there once, donate the regions in
 * order, add the vCPUs (given, or chosen by the accelerator), start with the
 * CID and the debug flag. It does not know which accelerator runs it. A
 * failure names its step; the caller then destroys the accelerator, which
 * undoes everything. */
#ifndef NECTL_LAUNCH_SEQ_H
#define NECTL_LAUNCH_SEQ_H

#include <stdbool.h>
#include <stdint.h>

#include "nectl/accel.h"

#define LAUNCH_MAX_CPUS 64

struct launch_spec {
	const char *eif_path;
	uint64_t memory_bytes;
	unsigned ncpus;		 /* with cpu_ids NULL: chosen by the accelerator */
	const uint32_t *cpu_ids; /* ncpus of them, or NULL */
	uint64_t cid;		 /* 0: the accelerator chooses */
	bool debug;
	uint64_t slot_uid; /* non-zero: the caller created the enclave already */
};

struct launch_result {
	uint64_t slot_uid, cid, eif_len, offset;
	struct mem_region r[ACCEL_MAX_REGIONS]; /* donation order */
	unsigned nr;
	uint32_t cpus[LAUNCH_MAX_CPUS];
	unsigned ncpus;
	/* monotonic ns when the EIF was in memory, and at the start */
	uint64_t t_loaded, t_started;
};

int launch_seq_run(struct accel *a, const struct launch_spec *spec, struct launch_result *out,
		   struct nectl_err *err);

#endif
