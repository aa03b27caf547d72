/* The launch sequence (nectl/launch_seq.h), the same steps as nitro-cli's
 * enclave process, over whichever accelerator runs the enclave. */
#include <string.h>
#include <time.h>

#include "nectl/enclave.h"
#include "nectl/launch_seq.h"

static uint64_t launch_seq_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int launch_seq_memory(struct accel *a, const struct launch_spec *s, struct launch_result *o,
			     struct nectl_err *err)
{
	const struct accel_ops *ops = a->ops;

	if (ops->map_memory(a, s->memory_bytes, o->r, &o->nr, err) < 0 ||
	    ops->load_offset(a, &o->offset, err) < 0 ||
	    enclave_write_eif(s->eif_path, o->r, o->nr, o->offset, &o->eif_len, err) < 0)
		return -1;
	o->t_loaded = launch_seq_now();
	for (unsigned i = 0; i < o->nr; i++)
		if (ops->donate(a, &o->r[i], err) < 0)
			return -1;
	return 0;
}

static int launch_seq_vcpus(struct accel *a, const struct launch_spec *s, struct launch_result *o,
			    struct nectl_err *err)
{
	if (s->ncpus > LAUNCH_MAX_CPUS)
		return nectl_err_set(err, NECTL_ERR_CPU_COUNT, "at most %d CPUs per enclave",
				     LAUNCH_MAX_CPUS);
	for (unsigned i = 0; i < s->ncpus; i++) {
		uint32_t cpu = s->cpu_ids ? s->cpu_ids[i] : ACCEL_CPU_AUTO;

		if (a->ops->add_vcpu(a, &cpu, err) < 0)
			return -1;
		o->cpus[o->ncpus++] = cpu;
	}
	return 0;
}

int launch_seq_run(struct accel *a, const struct launch_spec *s, struct launch_result *o,
		   struct nectl_err *err)
{
	memset(o, 0, sizeof(*o));
	o->slot_uid = s->slot_uid;
	if ((!o->slot_uid && a->ops->create(a, &o->slot_uid, err) < 0) ||
	    launch_seq_memory(a, s, o, err) < 0 || launch_seq_vcpus(a, s, o, err) < 0)
		return -1;
	o->cid = s->cid;
	if (a->ops->start(a, s->debug, &o->cid, err) < 0)
		return -1;
	o->t_started = launch_seq_now();
	return 0;
}
