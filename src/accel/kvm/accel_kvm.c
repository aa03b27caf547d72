/* accel/kvm as an accelerator of its own (emulation): the launch sequence's
 * steps on nectl's machine with lax memory rules. Memory is one mapping,
 * hugepages when reserved (as the NE driver requires) and ordinary memory
 * otherwise, so an emulated enclave runs on any host; the machine then boots
 * the EIF it finds in that memory, as it does under the simulator. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "nectl/accel.h"

struct accel_kvm {
	struct accel a;
	struct machine_spec tmpl;
	struct machine *m;
	struct mem_region mem; /* the one mapping, ours */
	bool huge;
	struct mem_region donated[ACCEL_MAX_REGIONS];
	unsigned ndonated, ncpus;
	uint64_t offset;
	bool started, waited;
};

static struct accel_kvm *kvm_of(struct accel *a)
{
	return (struct accel_kvm *)a;
}

static int kvm_create(struct accel *a, uint64_t *slot_uid, struct nectl_err *err)
{
	(void)a;
	(void)err;
	*slot_uid = 1; /* one enclave per machine */
	return 0;
}

static int kvm_map_memory(struct accel *a, uint64_t bytes, struct mem_region *r, unsigned *n,
			  struct nectl_err *err)
{
	struct accel_kvm *k = kvm_of(a);
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	void *p;

	/* Never MAP_NORESERVE with hugepages: the mapping would succeed and
	 * the first touch fault. */
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags | MAP_HUGETLB, -1, 0);
	k->huge = p != MAP_FAILED;
	if (!k->huge)
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return nectl_err_sys(err, NECTL_ERR_MEM_AVAILABLE, errno,
				     "cannot allocate %llu MiB of enclave memory",
				     (unsigned long long)(bytes >> 20));
	k->mem = (struct mem_region){p, bytes};
	r[0] = k->mem;
	*n = 1;
	return 0;
}

static int kvm_load_offset(struct accel *a, uint64_t *offset, struct nectl_err *err)
{
	(void)err;
	*offset = kvm_of(a)->offset = MACHINE_EIF_OFFSET;
	return 0;
}

static int kvm_donate(struct accel *a, const struct mem_region *r, struct nectl_err *err)
{
	struct accel_kvm *k = kvm_of(a);

	if (k->ndonated >= ACCEL_MAX_REGIONS)
		return nectl_err_set(err, NECTL_ERR_MEM_AVAILABLE,
				     "at most %d memory regions per emulated enclave",
				     ACCEL_MAX_REGIONS);
	k->donated[k->ndonated++] = *r;
	return 0;
}

/* The host CPUs to pin to are the template's; here vCPUs are only counted. */
static int kvm_add_vcpu(struct accel *a, uint32_t *cpu, struct nectl_err *err)
{
	struct accel_kvm *k = kvm_of(a);

	(void)err;
	if (*cpu == ACCEL_CPU_AUTO)
		*cpu = k->ncpus;
	k->ncpus++;
	return 0;
}

static int kvm_start(struct accel *a, bool debug, uint64_t *cid, struct nectl_err *err)
{
	struct accel_kvm *k = kvm_of(a);
	struct machine_spec spec = k->tmpl;

	(void)debug; /* the console is the supervisor's to keep or not */
	if (*cid == 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "an emulated enclave's CID is chosen before its start");
	spec.memory = k->donated;
	spec.nmemory = k->ndonated;
	spec.image_offset = k->offset;
	spec.memory_huge = k->huge;
	spec.ncpus = k->ncpus;
	spec.cid = *cid;
	if (machine_create(&k->m, &spec, err) < 0 || machine_load_image(k->m, err) < 0 ||
	    (spec.ready && spec.ready(spec.ctx, k->m, err) < 0))
		return -1;
	if (machine_start(k->m, err) < 0)
		return -1;
	k->started = true;
	return 0;
}

static void kvm_wait(struct accel *a, struct accel_exit *out)
{
	struct accel_kvm *k = kvm_of(a);

	out->known = true;
	out->detail[0] = 0;
	machine_wait(k->m, &out->why, out->detail, sizeof(out->detail));
	k->waited = true;
}

static void kvm_stop(struct accel *a)
{
	struct accel_kvm *k = kvm_of(a);

	if (k->m)
		machine_stop(k->m);
}

static void kvm_destroy(struct accel *a)
{
	struct accel_kvm *k = kvm_of(a);

	if (k->m && k->started && !k->waited) {
		struct accel_exit e;

		machine_stop(k->m);
		kvm_wait(a, &e);
	}
	machine_destroy(k->m);
	if (k->mem.addr)
		munmap(k->mem.addr, k->mem.size);
	free(k);
}

static struct machine *kvm_machine(struct accel *a)
{
	return kvm_of(a)->m;
}

static void kvm_memory_text(const struct accel *a, char *buf, size_t len)
{
	const struct accel_kvm *k = (const struct accel_kvm *)a;

	snprintf(buf, len, "%llu MiB of %s", (unsigned long long)(k->mem.size >> 20),
		 k->huge ? "hugepages" : "anonymous memory");
}

static const struct accel_ops accel_kvm_ops = {
    .create = kvm_create,
    .map_memory = kvm_map_memory,
    .load_offset = kvm_load_offset,
    .donate = kvm_donate,
    .add_vcpu = kvm_add_vcpu,
    .start = kvm_start,
    .wait = kvm_wait,
    .stop = kvm_stop,
    .destroy = kvm_destroy,
    .machine = kvm_machine,
    .memory_text = kvm_memory_text,
};

int accel_kvm_new(struct accel **out, const struct machine_spec *tmpl, struct nectl_err *err)
{
	struct accel_kvm *k = calloc(1, sizeof(*k));

	if (!k)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	k->a.ops = &accel_kvm_ops;
	k->a.mode = "emulated";
	k->tmpl = *tmpl;
	*out = &k->a;
	return 0;
}
