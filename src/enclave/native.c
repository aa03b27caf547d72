/* The native launch sequence (nectl/native.h): the same steps as nitro-cli's
 * enclave process, with the memory planned before anything is mapped. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <linux/mman.h>

#include "nectl/enclave.h"
#include "nectl/native.h"
#include "nectl/nitro.h"

/* "NE_SET_USER_MEMORY_REGION: NE_ERR_...: words", or strerror. */
static int native_ioctl_fail(struct nectl_err *err, enum nectl_kind kind, const char *what, int rc)
{
	const char *words = ne_err_words(rc);

	return nectl_err_set(err, kind, "%s failed: %s", what, words ? words : strerror(rc));
}

static unsigned native_log2(uint64_t v)
{
	unsigned n = 0;

	while (v > 1)
		v >>= 1, n++;
	return n;
}

/* One hugetlb mapping per page size of the plan, largest first. */
static int native_map(struct native_enclave *n, struct nectl_err *err)
{
	for (unsigned i = 0; i < n->plan.n; i++) {
		uint64_t page = n->plan.items[i].page_size;
		uint64_t size = page * n->plan.items[i].count;
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
				   (int)(native_log2(page) << MAP_HUGE_SHIFT),
			       -1, 0);

		if (p == MAP_FAILED)
			return nectl_err_sys(err, NECTL_ERR_MEM_AVAILABLE, errno,
					     "cannot map %llu x %llu MiB hugepages",
					     (unsigned long long)n->plan.items[i].count,
					     (unsigned long long)(page >> 20));
		n->r[n->nr].addr = p;
		n->r[n->nr].size = size;
		n->nr++;
	}
	return 0;
}

static int native_vcpus(struct native_enclave *n, const struct native_spec *s,
			struct nectl_err *err)
{
	if (s->ncpus > NATIVE_MAX_CPUS)
		return nectl_err_set(err, NECTL_ERR_CPU_COUNT, "at most %d CPUs per enclave",
				     NATIVE_MAX_CPUS);
	for (unsigned i = 0; i < s->ncpus; i++) {
		uint32_t cpu = s->cpu_ids ? s->cpu_ids[i] : 0;
		int rc = ne_add_vcpu(n->vm, &cpu);

		if (rc)
			return native_ioctl_fail(err, NECTL_ERR_IOCTL, "NE_ADD_VCPU", rc);
		n->cpus[n->ncpus++] = cpu;
	}
	return 0;
}

static int native_memory(struct native_enclave *n, const struct native_spec *s,
			 struct nectl_err *err)
{
	struct huge_inventory inv;
	uint64_t offset;
	int rc;

	if (huge_inventory_read(s->sysfs, &inv, err) < 0 ||
	    huge_plan_make(&inv, s->node, s->memory_bytes, s->max_regions, &n->plan, err) < 0 ||
	    native_map(n, err) < 0)
		return -1;
	rc = ne_image_load_info(n->vm, &offset);
	if (rc)
		return native_ioctl_fail(err, NECTL_ERR_IOCTL, "NE_GET_IMAGE_LOAD_INFO", rc);
	if (enclave_write_eif(s->eif_path, n->r, n->nr, offset, &n->eif_len, err) < 0)
		return -1;
	for (unsigned i = 0; i < n->nr; i++) {
		rc = ne_set_memory(n->vm, (uintptr_t)n->r[i].addr, n->r[i].size);
		if (rc)
			return native_ioctl_fail(err, NECTL_ERR_IOCTL, "NE_SET_USER_MEMORY_REGION",
						 rc);
	}
	return 0;
}

int native_start(struct ne_dev *d, const struct native_spec *s, struct native_enclave *n,
		 struct nectl_err *err)
{
	int rc;

	memset(n, 0, sizeof(*n));
	rc = ne_create_vm(d, &n->vm, &n->slot_uid);
	if (rc)
		return native_ioctl_fail(err, NECTL_ERR_ENCLAVE_FD, "NE_CREATE_VM", rc);
	if (native_memory(n, s, err) < 0 || native_vcpus(n, s, err) < 0)
		goto fail;
	n->cid = s->cid;
	rc = ne_start(n->vm, s->debug, &n->cid);
	if (rc) {
		native_ioctl_fail(err, NECTL_ERR_IOCTL, "NE_START_ENCLAVE", rc);
		goto fail;
	}
	return 0;
fail:
	native_close(n);
	return -1;
}

void native_close(struct native_enclave *n)
{
	ne_vm_close(n->vm);
	n->vm = NULL;
	for (unsigned i = 0; i < n->nr; i++)
		munmap(n->r[i].addr, n->r[i].size);
	n->nr = 0;
}
