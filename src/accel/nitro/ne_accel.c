/* The NE device (nectl/ne_dev.h: the real /dev/nitro_enclaves or the driver
 * model) as an accelerator (nectl/accel.h): memory planned before anything is
 * mapped (nectl/hugeplan.h), one hugetlb mapping per page size of the plan,
 * largest first; every ioctl failure named with the driver's error in words.
 * The enclave ends when its fd says EPOLLHUP; closing the fd is the only way
 * to stop it. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/mman.h>

#include "nectl/native.h"
#include "nectl/nitro.h"

struct ne_accel {
	struct accel a;
	struct ne_dev *d;
	struct ne_accel_cfg cfg;
	struct ne_vm *vm;
	struct huge_plan plan;
	struct mem_region r[HUGE_MAX_SIZES];
	unsigned nr;
	int stop_fd;
};

static struct ne_accel *ne_of(struct accel *a)
{
	return (struct ne_accel *)a;
}

/* "NE_SET_USER_MEMORY_REGION failed: NE_ERR_...: words", or strerror. */
static int ne_fail(struct nectl_err *err, enum nectl_kind kind, const char *what, int rc)
{
	const char *words = ne_err_words(rc);

	return nectl_err_set(err, kind, "%s failed: %s", what, words ? words : strerror(rc));
}

static unsigned ne_log2(uint64_t v)
{
	unsigned n = 0;

	while (v > 1)
		v >>= 1, n++;
	return n;
}

static int ne_create(struct accel *a, uint64_t *slot_uid, struct nectl_err *err)
{
	struct ne_accel *n = ne_of(a);
	int rc = ne_create_vm(n->d, &n->vm, slot_uid);

	return rc ? ne_fail(err, NECTL_ERR_ENCLAVE_FD, "NE_CREATE_VM", rc) : 0;
}

static int ne_map_memory(struct accel *a, uint64_t bytes, struct mem_region *r, unsigned *nr,
			 struct nectl_err *err)
{
	struct ne_accel *n = ne_of(a);
	struct huge_inventory inv;

	if (huge_inventory_read(n->cfg.sysfs, &inv, err) < 0 ||
	    huge_plan_make(&inv, n->cfg.node, bytes, n->cfg.max_regions, &n->plan, err) < 0)
		return -1;
	for (unsigned i = 0; i < n->plan.n; i++) {
		uint64_t page = n->plan.items[i].page_size;
		uint64_t size = page * n->plan.items[i].count;
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
				   (int)(ne_log2(page) << MAP_HUGE_SHIFT),
			       -1, 0);

		if (p == MAP_FAILED)
			return nectl_err_sys(err, NECTL_ERR_MEM_AVAILABLE, errno,
					     "cannot map %llu x %llu MiB hugepages",
					     (unsigned long long)n->plan.items[i].count,
					     (unsigned long long)(page >> 20));
		n->r[n->nr++] = (struct mem_region){p, size};
	}
	memcpy(r, n->r, n->nr * sizeof(*r));
	*nr = n->nr;
	return 0;
}

static int ne_load_offset(struct accel *a, uint64_t *offset, struct nectl_err *err)
{
	int rc = ne_image_load_info(ne_of(a)->vm, offset);

	return rc ? ne_fail(err, NECTL_ERR_IOCTL, "NE_GET_IMAGE_LOAD_INFO", rc) : 0;
}

static int ne_donate(struct accel *a, const struct mem_region *r, struct nectl_err *err)
{
	int rc = ne_set_memory(ne_of(a)->vm, (uintptr_t)r->addr, r->size);

	return rc ? ne_fail(err, NECTL_ERR_IOCTL, "NE_SET_USER_MEMORY_REGION", rc) : 0;
}

static int ne_vcpu(struct accel *a, uint32_t *cpu, struct nectl_err *err)
{
	int rc;

	if (*cpu == ACCEL_CPU_AUTO)
		*cpu = 0; /* the driver's "any" */
	rc = ne_add_vcpu(ne_of(a)->vm, cpu);
	return rc ? ne_fail(err, NECTL_ERR_IOCTL, "NE_ADD_VCPU", rc) : 0;
}

static int ne_go(struct accel *a, bool debug, uint64_t *cid, struct nectl_err *err)
{
	struct ne_accel *n = ne_of(a);
	int rc = ne_start(n->vm, debug, cid);

	if (rc == 0)
		return 0;
	if (ne_vm_why(n->vm)[0])
		return nectl_err_set(err, NECTL_ERR_IOCTL, "NE_START_ENCLAVE failed: %s (%s)",
				     strerror(rc), ne_vm_why(n->vm));
	return ne_fail(err, NECTL_ERR_IOCTL, "NE_START_ENCLAVE", rc);
}

/* Until the enclave fd hangs up, or stop. */
static void ne_wait(struct accel *a, struct accel_exit *out)
{
	struct ne_accel *n = ne_of(a);
	struct pollfd p[2] = {{.fd = ne_vm_fd(n->vm), .events = 0},
			      {.fd = n->stop_fd, .events = POLLIN}};

	while (!(p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) && !p[1].revents)
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
	ne_vm_exit(n->vm, out);
}

static void ne_stop(struct accel *a)
{
	uint64_t one = 1;

	if (write(ne_of(a)->stop_fd, &one, sizeof(one)) < 0) {
		/* Saturated: a stop is pending anyway. */
	}
}

static void ne_destroy(struct accel *a)
{
	struct ne_accel *n = ne_of(a);

	ne_vm_close(n->vm); /* ends the enclave, gives back CPUs and memory */
	for (unsigned i = 0; i < n->nr; i++)
		munmap(n->r[i].addr, n->r[i].size);
	if (n->stop_fd >= 0)
		close(n->stop_fd);
	free(n);
}

static struct machine *ne_machine(struct accel *a)
{
	return ne_vm_machine(ne_of(a)->vm);
}

static void ne_memory_text(const struct accel *a, char *buf, size_t len)
{
	huge_plan_text(&((const struct ne_accel *)a)->plan, buf, len);
}

static const struct accel_ops ne_accel_ops = {
    .create = ne_create,
    .map_memory = ne_map_memory,
    .load_offset = ne_load_offset,
    .donate = ne_donate,
    .add_vcpu = ne_vcpu,
    .start = ne_go,
    .wait = ne_wait,
    .stop = ne_stop,
    .destroy = ne_destroy,
    .machine = ne_machine,
    .memory_text = ne_memory_text,
};

int accel_ne_new(struct accel **out, struct ne_dev *d, const struct ne_accel_cfg *cfg,
		 struct nectl_err *err)
{
	struct ne_accel *n = calloc(1, sizeof(*n));

	if (!n)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->stop_fd < 0) {
		free(n);
		return nectl_err_sys(err, NECTL_ERR_EVENT, errno, "cannot create an eventfd");
	}
	n->a.ops = &ne_accel_ops;
	n->a.mode = ne_dev_mode(d);
	n->d = d;
	n->cfg = *cfg;
	*out = &n->a;
	return 0;
}

const struct huge_plan *accel_ne_plan(const struct accel *a)
{
	return &((const struct ne_accel *)a)->plan;
}

struct ne_vm *accel_ne_vm(const struct accel *a)
{
	return ((const struct ne_accel *)a)->vm;
}
