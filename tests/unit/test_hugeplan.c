/* The enclave memory plan on synthetic sysfs trees: several NUMA nodes, mixed
 * 2 MiB / 1 GiB pools, pools partly taken (free below reserved), the region
 * limit, and hostile sysfs text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "nectl/hugeplan.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static char root[] = "/tmp/nectl-hugeplan-XXXXXX";

static void put(const char *rel, const char *text)
{
	char path[512], cmd[600];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* node N has `free` pages of `kb` KiB free (and more reserved: taken by
 * others, which must not count). */
static void pool(unsigned node, unsigned long kb, unsigned long free_pages)
{
	char rel[256], num[32];

	snprintf(num, sizeof(num), "%lu\n", free_pages);
	snprintf(rel, sizeof(rel),
		 "devices/system/node/node%u/hugepages/hugepages-%lukB/free_hugepages", node, kb);
	put(rel, num);
	snprintf(num, sizeof(num), "%lu\n", free_pages + 7);
	snprintf(rel, sizeof(rel),
		 "devices/system/node/node%u/hugepages/hugepages-%lukB/nr_hugepages", node, kb);
	put(rel, num);
}

static int fresh(void **state)
{
	char cmd[128];

	(void)state;
	strcpy(root, "/tmp/nectl-hugeplan-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/devices/system/node", root);
	return system(cmd);
}

static int cleanup(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd);
}

static void plan_of(unsigned node, uint64_t bytes, uint64_t max_regions, struct huge_plan *p,
		    char *text, size_t len)
{
	struct huge_inventory inv;
	struct nectl_err err = {0};

	assert_int_equal(huge_inventory_read(root, &inv, &err), 0);
	if (huge_plan_make(&inv, node, bytes, max_regions, p, &err) < 0)
		fail_msg("no plan: %s", err.msg);
	huge_plan_text(p, text, len);
}

static void test_small_enclave_takes_2mib_pages_not_a_1gib_page(void **state)
{
	struct huge_plan p;
	char t[128];

	(void)state;
	pool(0, 2048, 1000);
	pool(0, 1048576, 2);
	plan_of(0, 256 * MIB, 0, &p, t, sizeof(t));
	assert_string_equal(t, "128 x 2 MiB on node 0 (256 MiB)");
	assert_int_equal(p.bytes, 256 * MIB);
	assert_int_equal(p.regions, 128);
}

static void test_mixed_sizes_exact_with_fewest_regions(void **state)
{
	struct huge_plan p;
	char t[128];

	(void)state;
	pool(0, 2048, 2000);
	pool(0, 1048576, 4);
	plan_of(0, 2 * GIB + 2 * MIB, 0, &p, t, sizeof(t));
	assert_string_equal(t, "2 x 1 GiB + 1 x 2 MiB on node 0 (2050 MiB)");
	assert_int_equal(p.regions, 3);
	/* Largest first: the order regions are donated and the EIF written. */
	assert_int_equal(p.items[0].page_size, GIB);
}

static void test_region_limit_takes_a_1gib_page(void **state)
{
	struct huge_plan p;
	char t[128];

	(void)state;
	pool(0, 2048, 1000);
	pool(0, 1048576, 1);
	/* 512 x 2 MiB would pass a limit of 256 regions. */
	plan_of(0, GIB, 256, &p, t, sizeof(t));
	assert_string_equal(t, "1 x 1 GiB on node 0 (1024 MiB)");
	/* 600 MiB: 300 small pages pass the limit; one 1 GiB page, wasting
	 * 424 MiB, is the only plan that fits. */
	plan_of(0, 600 * MIB, 256, &p, t, sizeof(t));
	assert_string_equal(t, "1 x 1 GiB on node 0 (1024 MiB)");
	/* Without a limit the waste decides: 300 x 2 MiB. */
	plan_of(0, 600 * MIB, 0, &p, t, sizeof(t));
	assert_string_equal(t, "300 x 2 MiB on node 0 (600 MiB)");
}

static void test_taken_pages_are_not_free(void **state)
{
	struct huge_plan p;
	char t[128];

	(void)state;
	/* Fragmented: 1 GiB pages mostly taken, 2 MiB pages short. */
	pool(0, 2048, 100);
	pool(0, 1048576, 1);
	plan_of(0, 1200 * MIB, 0, &p, t, sizeof(t));
	assert_string_equal(t, "1 x 1 GiB + 88 x 2 MiB on node 0 (1200 MiB)");
	/* Rounded up to 2 MiB. */
	plan_of(0, 3 * MIB, 0, &p, t, sizeof(t));
	assert_string_equal(t, "2 x 2 MiB on node 0 (4 MiB)");
}

static void test_other_nodes_pages_do_not_count_and_are_named(void **state)
{
	struct huge_inventory inv;
	struct huge_plan p;
	struct nectl_err err = {0};
	char t[128];

	(void)state;
	pool(0, 2048, 10);
	pool(1, 2048, 1000);
	pool(1, 1048576, 2);
	assert_int_equal(huge_inventory_read(root, &inv, &err), 0);
	assert_int_equal(huge_plan_make(&inv, 0, 512 * MIB, 0, &p, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_MEM_AVAILABLE);
	assert_non_null(strstr(err.msg, "not enough hugepages for 512 MiB on NUMA node 0"));
	assert_non_null(strstr(err.msg, "node 0: 10 x 2 MiB"));
	assert_non_null(strstr(err.msg, "node 1: 1000 x 2 MiB"));
	assert_non_null(strstr(err.msg, "node 1: 2 x 1 GiB"));
	plan_of(1, 512 * MIB, 0, &p, t, sizeof(t));
	assert_string_equal(t, "256 x 2 MiB on node 1 (512 MiB)");
}

static void test_region_limit_without_large_pages_fails(void **state)
{
	struct huge_inventory inv;
	struct huge_plan p;
	struct nectl_err err = {0};

	(void)state;
	pool(0, 2048, 5000);
	assert_int_equal(huge_inventory_read(root, &inv, &err), 0);
	assert_int_equal(huge_plan_make(&inv, 0, 2 * GIB, 256, &p, &err), -1);
	assert_non_null(strstr(err.msg, "within the enclave's region limit"));
	assert_int_equal(huge_plan_make(&inv, 0, 0, 0, &p, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
}

static void test_hostile_sysfs_text_is_ignored(void **state)
{
	struct huge_inventory inv;
	struct nectl_err err = {0};

	(void)state;
	put("devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "12abc\n");
	put("devices/system/node/node0/hugepages/hugepages-1048576kB/free_hugepages",
	    "99999999999999999999999\n");
	put("devices/system/node/node0/hugepages/hugepages-xkB/free_hugepages", "5\n");
	put("devices/system/node/nodeX/hugepages/hugepages-2048kB/free_hugepages", "5\n");
	put("devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages", "7\n");
	put("devices/system/node/node1/hugepages/hugepages-3000kB/free_hugepages", "7\n");
	assert_int_equal(huge_inventory_read(root, &inv, &err), 0);
	/* Only node1's two well-formed pools; the 3000 kB one is read but never
	 * planned (not a multiple of 2 MiB). */
	assert_int_equal(inv.n, 2);
	for (unsigned i = 0; i < inv.n; i++) {
		assert_int_equal(inv.pools[i].node, 1);
		assert_int_equal(inv.pools[i].free_pages, 7);
	}
}

static void test_no_numa_tree_is_an_empty_inventory(void **state)
{
	struct huge_inventory inv;
	struct nectl_err err = {0};

	(void)state;
	assert_int_equal(huge_inventory_read("/nonexistent-sysfs", &inv, &err), 0);
	assert_int_equal(inv.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_small_enclave_takes_2mib_pages_not_a_1gib_page,
					    fresh, cleanup),
	    cmocka_unit_test_setup_teardown(test_mixed_sizes_exact_with_fewest_regions, fresh,
					    cleanup),
	    cmocka_unit_test_setup_teardown(test_region_limit_takes_a_1gib_page, fresh, cleanup),
	    cmocka_unit_test_setup_teardown(test_taken_pages_are_not_free, fresh, cleanup),
	    cmocka_unit_test_setup_teardown(test_other_nodes_pages_do_not_count_and_are_named,
					    fresh, cleanup),
	    cmocka_unit_test_setup_teardown(test_region_limit_without_large_pages_fails, fresh,
					    cleanup),
	    cmocka_unit_test_setup_teardown(test_hostile_sysfs_text_is_ignored, fresh, cleanup),
	    cmocka_unit_test(test_no_numa_tree_is_an_empty_inventory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
