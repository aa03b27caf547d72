/* The NE driver model against the driver's rules, in its check order, with
 * its errno values (linux-ne-and-nsm-drivers.md §4-§6, §13): a fake page
 * table for the memory rules, then the host's real hugepages. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/nitro_enclaves.h>

#include "nectl/sim.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* Fake pages: 2 MiB hugetlb on node 0 unless the address says otherwise. */
static struct sim_page fake_default = {.huge = true, .size = 2 * MIB, .node = 0};
static uintptr_t fake_odd_at; /* the page here is `fake_odd` */
static struct sim_page fake_odd;

static int fake_pages(void *ctx, uintptr_t region, uintptr_t addr, struct sim_page *out)
{
	(void)ctx;
	(void)region;
	if (addr >= 0x7f0000000000ull)
		return EFAULT;
	*out = fake_odd_at && addr == fake_odd_at ? fake_odd : fake_default;
	return 0;
}

static struct sim_ne *dev_with_pool(const char *pool)
{
	struct sim_topology t;
	struct sim_ne *d;

	sim_topology_default(&t);
	d = sim_ne_new(&t, fake_pages, NULL);
	assert_non_null(d);
	assert_int_equal(sim_ne_set_pool(d, pool), 0);
	fake_odd_at = 0;
	return d;
}

static void test_pool_rules(void **state)
{
	struct sim_topology t;
	struct sim_enclave *e;
	struct sim_ne *d;
	uint64_t uid;

	(void)state;
	sim_topology_default(&t);
	d = sim_ne_new(&t, fake_pages, NULL);
	assert_int_equal(sim_ne_create_vm(d, &e, &uid), NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	assert_int_equal(sim_ne_set_pool(d, "0,4"), EINVAL);	  /* CPU 0's core */
	assert_int_equal(sim_ne_set_pool(d, "4"), EINVAL);	  /* CPU 0's sibling */
	assert_int_equal(sim_ne_set_pool(d, "1"), EINVAL);	  /* half a core */
	assert_int_equal(sim_ne_set_pool(d, "1,5,9,13"), EINVAL); /* CPUs that do not exist */
	assert_int_equal(sim_ne_set_pool(d, "1-"), EINVAL);
	assert_int_equal(sim_ne_set_pool(d, ""), EINVAL);
	assert_int_equal(sim_ne_set_pool(d, "1,5"), 0);
	assert_int_equal(sim_ne_create_vm(d, &e, &uid), 0);
	assert_true(uid != 0);
	/* The pool cannot change while an enclave exists. */
	assert_int_equal(sim_ne_set_pool(d, "1-3,5-7"), EPERM);
	sim_ne_release(e);
	/* A refused write leaves no pool at all. */
	assert_int_equal(sim_ne_set_pool(d, "1"), EINVAL);
	assert_int_equal(sim_ne_create_vm(d, &e, &uid), NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	sim_ne_free(d);
	/* Two NUMA nodes in one pool. */
	t.cores[2].node = 1;
	d = sim_ne_new(&t, fake_pages, NULL);
	assert_int_equal(sim_ne_set_pool(d, "1,2,5,6"), EINVAL);
	assert_int_equal(sim_ne_set_pool(d, "2,6"), 0);
	sim_ne_free(d);
}

static void test_vcpu_rules(void **state)
{
	struct sim_ne *d = dev_with_pool("1-3,5-7");
	struct sim_enclave *a, *b;
	uint64_t uid;
	uint32_t v;

	(void)state;
	assert_int_equal(sim_ne_create_vm(d, &a, &uid), 0);
	assert_int_equal(sim_ne_create_vm(d, &b, &uid), 0);
	/* Auto: the lowest free core's lowest thread, then its sibling. */
	v = 0, assert_int_equal(sim_ne_add_vcpu(a, &v), 0), assert_int_equal(v, 1);
	v = 0, assert_int_equal(sim_ne_add_vcpu(a, &v), 0), assert_int_equal(v, 5);
	v = 0, assert_int_equal(sim_ne_add_vcpu(a, &v), 0), assert_int_equal(v, 2);
	/* Explicit: used, CPU 0's, another enclave's core, out of range. */
	v = 5, assert_int_equal(sim_ne_add_vcpu(a, &v), NE_ERR_VCPU_ALREADY_USED);
	v = 4, assert_int_equal(sim_ne_add_vcpu(a, &v), NE_ERR_VCPU_NOT_IN_CPU_POOL);
	v = 6, assert_int_equal(sim_ne_add_vcpu(b, &v), NE_ERR_VCPU_NOT_IN_CPU_POOL);
	v = 8, assert_int_equal(sim_ne_add_vcpu(b, &v), NE_ERR_INVALID_VCPU);
	/* b takes core 3 by one of its threads; a's core 2 sibling is a's. */
	v = 7, assert_int_equal(sim_ne_add_vcpu(b, &v), 0);
	v = 6, assert_int_equal(sim_ne_add_vcpu(a, &v), 0);
	v = 0, assert_int_equal(sim_ne_add_vcpu(b, &v), 0), assert_int_equal(v, 3);
	/* Nothing left. */
	v = 0, assert_int_equal(sim_ne_add_vcpu(b, &v), NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	/* Released cores go back to the pool. */
	sim_ne_release(a);
	assert_int_equal(sim_ne_create_vm(d, &a, &uid), 0);
	v = 0, assert_int_equal(sim_ne_add_vcpu(a, &v), 0), assert_int_equal(v, 1);
	sim_ne_free(d);
}

/* Cores held by other supervisors' enclaves are out of the pool. */
static void test_held_cores(void **state)
{
	struct sim_ne *d = dev_with_pool("1-3,5-7");
	struct sim_enclave *e;
	uint64_t uid;
	uint32_t cpu = 0;

	(void)state;
	sim_ne_hold_core(d, 5);	 /* core 1, by its second thread */
	sim_ne_hold_core(d, 99); /* no such CPU: ignored */
	assert_int_equal(sim_ne_create_vm(d, &e, &uid), 0);
	assert_int_equal(sim_ne_add_vcpu(e, &cpu), 0);
	assert_int_equal(cpu, 2); /* the lowest free core is now core 2 */
	cpu = 1;
	assert_int_equal(sim_ne_add_vcpu(e, &cpu), NE_ERR_VCPU_NOT_IN_CPU_POOL);
	sim_ne_hold_core(d, 3);
	cpu = 6;
	assert_int_equal(sim_ne_add_vcpu(e, &cpu), 0); /* its own core's sibling */
	cpu = 0;
	assert_int_equal(sim_ne_add_vcpu(e, &cpu), NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	sim_ne_release(e);
	sim_ne_free(d);
}

static void test_image_load_info_rules(void **state)
{
	struct sim_ne *d = dev_with_pool("1,5");
	struct sim_enclave *e;
	uint64_t uid, off = 0;

	(void)state;
	assert_int_equal(sim_ne_create_vm(d, &e, &uid), 0);
	assert_int_equal(sim_ne_image_load_info(e, 0, &off), NE_ERR_INVALID_FLAG_VALUE);
	assert_int_equal(sim_ne_image_load_info(e, 2, &off), NE_ERR_INVALID_FLAG_VALUE);
	assert_int_equal(sim_ne_image_load_info(e, NE_EIF_IMAGE, &off), 0);
	assert_int_equal(off, 8 * MIB);
	sim_ne_free(d);
}

static void test_memory_rules(void **state)
{
	struct sim_ne *d = dev_with_pool("1,5");
	struct sim_enclave *e;
	uint64_t uid;
	uintptr_t base = 0x40000000;

	(void)state;
	assert_int_equal(sim_ne_create_vm(d, &e, &uid), 0);
	assert_int_equal(sim_ne_set_memory(e, 1, 2 * MIB, base), NE_ERR_INVALID_FLAG_VALUE);
	assert_int_equal(sim_ne_set_memory(e, 0, MIB, base), NE_ERR_INVALID_MEM_REGION_SIZE);
	assert_int_equal(sim_ne_set_memory(e, 0, 2 * MIB, base + 4096),
			 NE_ERR_UNALIGNED_MEM_REGION_ADDR);
	assert_int_equal(sim_ne_set_memory(e, 0, 4 * MIB, 0x7ffffffe00000ull),
			 NE_ERR_INVALID_MEM_REGION_ADDR);
	assert_int_equal(sim_ne_set_memory(e, 0, 0, base), ENOMEM);
	assert_int_equal(sim_ne_set_memory(e, 0, 2 * MIB, 0x7f0000000000ull), EFAULT);
	fake_odd_at = base + 2 * MIB;
	fake_odd = (struct sim_page){.huge = false, .size = 4096, .node = 0};
	assert_int_equal(sim_ne_set_memory(e, 0, 4 * MIB, base), NE_ERR_MEM_NOT_HUGE_PAGE);
	fake_odd = (struct sim_page){.huge = true, .size = 4096, .node = 0}; /* a tail page */
	assert_int_equal(sim_ne_set_memory(e, 0, 4 * MIB, base), NE_ERR_INVALID_PAGE_SIZE);
	fake_odd = (struct sim_page){.huge = true, .size = 2 * MIB, .node = 1};
	assert_int_equal(sim_ne_set_memory(e, 0, 4 * MIB, base), NE_ERR_MEM_DIFFERENT_NUMA_NODE);
	fake_odd_at = 0;
	/* Failed calls donated nothing; now 32 MiB, then an overlap. */
	assert_int_equal(sim_ne_memory(e), 0);
	assert_int_equal(sim_ne_set_memory(e, 0, 32 * MIB, base), 0);
	assert_int_equal(sim_ne_set_memory(e, 0, 4 * MIB, base + 30 * MIB),
			 NE_ERR_MEM_REGION_ALREADY_USED);
	/* A 1 GiB page at a region's start is donated whole. */
	fake_odd_at = 0x80000000;
	fake_odd = (struct sim_page){.huge = true, .size = GIB, .node = 0};
	assert_int_equal(sim_ne_set_memory(e, 0, 2 * MIB, 0x80000000), 0);
	assert_int_equal(sim_ne_memory(e), 32 * MIB + GIB);
	/* 256 regions at most: 17 pages used, 240 more would be 257. */
	fake_odd_at = 0;
	assert_int_equal(sim_ne_set_memory(e, 0, 480 * MIB, 0x100000000ull),
			 NE_ERR_MEM_MAX_REGIONS);
	assert_int_equal(sim_ne_set_memory(e, 0, 478 * MIB, 0x100000000ull), 0);
	sim_ne_free(d);
}

static void test_start_rules_and_events(void **state)
{
	static const uint64_t bad_cids[] = {1, 2, 3, 0xffffffffull, 0x100000000ull};
	struct sim_ne *d = dev_with_pool("1-2,5-6");
	struct sim_enclave *e, *f;
	uint64_t uid, cid, off;
	uint32_t v;

	(void)state;
	assert_int_equal(sim_ne_create_vm(d, &e, &uid), 0);
	cid = 0, assert_int_equal(sim_ne_start(e, 2, &cid), NE_ERR_INVALID_FLAG_VALUE);
	for (size_t i = 0; i < sizeof(bad_cids) / sizeof(bad_cids[0]); i++) {
		cid = bad_cids[i];
		assert_int_equal(sim_ne_start(e, 0, &cid), NE_ERR_INVALID_ENCLAVE_CID);
	}
	cid = 0, assert_int_equal(sim_ne_start(e, 0, &cid), NE_ERR_NO_MEM_REGIONS_ADDED);
	assert_int_equal(sim_ne_set_memory(e, 0, 32 * MIB, 0x40000000), 0);
	cid = 0, assert_int_equal(sim_ne_start(e, 0, &cid), NE_ERR_ENCLAVE_MEM_MIN_SIZE);
	assert_int_equal(sim_ne_set_memory(e, 0, 32 * MIB, 0x42000000), 0);
	cid = 0, assert_int_equal(sim_ne_start(e, 0, &cid), NE_ERR_NO_VCPUS_ADDED);
	v = 1, assert_int_equal(sim_ne_add_vcpu(e, &v), 0);
	cid = 0, assert_int_equal(sim_ne_start(e, 0, &cid), NE_ERR_FULL_CORES_NOT_USED);
	v = 5, assert_int_equal(sim_ne_add_vcpu(e, &v), 0);
	assert_false(sim_ne_hup(e));
	cid = 0, assert_int_equal(sim_ne_start(e, NE_ENCLAVE_DEBUG_MODE, &cid), 0);
	assert_int_equal(cid, 16);
	/* After START everything but close is refused, a second START too. */
	cid = 0, assert_int_equal(sim_ne_start(e, 0, &cid), NE_ERR_NOT_IN_INIT_STATE);
	v = 0, assert_int_equal(sim_ne_add_vcpu(e, &v), NE_ERR_NOT_IN_INIT_STATE);
	assert_int_equal(sim_ne_image_load_info(e, 0, &off), NE_ERR_NOT_IN_INIT_STATE);
	assert_int_equal(sim_ne_set_memory(e, 0, 2 * MIB, 0x50000000), NE_ERR_NOT_IN_INIT_STATE);
	assert_int_equal(sim_ne_set_memory(e, 1, 2 * MIB, 0x50000000), NE_ERR_INVALID_FLAG_VALUE);
	/* A second enclave: the next CID, or EBUSY for the same one. */
	assert_int_equal(sim_ne_create_vm(d, &f, &uid), 0);
	assert_int_equal(sim_ne_set_memory(f, 0, 64 * MIB, 0x60000000), 0);
	v = 0, assert_int_equal(sim_ne_add_vcpu(f, &v), 0), assert_int_equal(v, 2);
	v = 0, assert_int_equal(sim_ne_add_vcpu(f, &v), 0), assert_int_equal(v, 6);
	cid = 16, assert_int_equal(sim_ne_start(f, 0, &cid), EBUSY);
	cid = 0, assert_int_equal(sim_ne_start(f, 0, &cid), 0);
	assert_int_equal(cid, 17);
	/* EPOLLHUP once the enclave ended, and from then on. */
	sim_ne_stopped(e);
	assert_true(sim_ne_hup(e));
	assert_true(sim_ne_hup(e));
	assert_false(sim_ne_hup(f));
	sim_ne_free(d);
}

/* Real memory: the host's hugepages (reserved here when the test may, as
 * root), and ordinary memory, which the driver refuses. */
static void test_host_pages(void **state)
{
	struct sim_topology t;
	struct sim_ne *d;
	struct sim_enclave *e;
	uint64_t uid;
	uint8_t *anon, *huge;
	char old[32] = "";
	int fd = open("/proc/sys/vm/nr_hugepages", O_RDWR | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, old, sizeof(old) - 1) : -1;

	(void)state;
	sim_topology_default(&t);
	d = sim_ne_new(&t, sim_pages_host, NULL);
	assert_int_equal(sim_ne_set_pool(d, "1,5"), 0);
	assert_int_equal(sim_ne_create_vm(d, &e, &uid), 0);
	anon = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(anon != MAP_FAILED);
	assert_int_equal(
	    sim_ne_set_memory(e, 0, 2 * MIB, ((uintptr_t)anon + 2 * MIB - 1) & ~(2 * MIB - 1)),
	    NE_ERR_MEM_NOT_HUGE_PAGE);
	if (fd >= 0 && n > 0 && atoi(old) < 64 && geteuid() == 0) {
		char want[32];
		int k = snprintf(want, sizeof(want), "%d\n", atoi(old) + 8);

		if (pwrite(fd, want, (size_t)k, 0) != k)
			fail_msg("cannot reserve hugepages");
	}
	huge = mmap(NULL, 8 * MIB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (huge == MAP_FAILED) {
		print_message("no hugepages to map here; the hugetlb case is not run\n");
	} else {
		uint8_t *again;

		assert_int_equal(sim_ne_set_memory(e, 0, 8 * MIB, (uintptr_t)huge), 0);
		assert_int_equal(sim_ne_memory(e), 8 * MIB);
		/* The same address mapped anew between calls is looked at anew:
		 * ordinary memory there now is refused. */
		sim_ne_release(e);
		assert_int_equal(sim_ne_create_vm(d, &e, &uid), 0);
		again = mmap(huge, 8 * MIB, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		assert_true(again == huge);
		assert_int_equal(sim_ne_set_memory(e, 0, 8 * MIB, (uintptr_t)huge),
				 NE_ERR_MEM_NOT_HUGE_PAGE);
		munmap(huge, 8 * MIB);
	}
	if (fd >= 0 && n > 0 && pwrite(fd, old, (size_t)n, 0) != n)
		fail_msg("cannot give the hugepages back");
	if (fd >= 0)
		close(fd);
	munmap(anon, 4 * MIB);
	sim_ne_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_rules),	 cmocka_unit_test(test_vcpu_rules),
	    cmocka_unit_test(test_held_cores),	 cmocka_unit_test(test_image_load_info_rules),
	    cmocka_unit_test(test_memory_rules), cmocka_unit_test(test_start_rules_and_events),
	    cmocka_unit_test(test_host_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
