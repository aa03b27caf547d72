/* The machine over donated memory, as the simulated NE device hands it over:
 * the EIF written by the launch at the load offset across separately mapped
 * regions is found and parsed there (headers, kernel and ramdisks straddling
 * where regions meet), the kernel and initrd land at their guest addresses
 * across regions, the e820 map shows one RAM range, a region across the MMIO
 * hole is split, the regions outlive the machine, and bad donations and
 * hostile section tables are refused. Needs a /dev/kvm that can create a VM
 * (not run one); skipped without. */
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

#include "util/le.h"

#include "bzgen.h"
#include "eifgen.h"
#include "nectl/enclave.h"
#include "nectl/machine.h"
#include "nectl/x86boot.h"

#define KIB	    1024ull
#define MIB	    (1024 * KIB)
#define GIB	    (1024 * MIB)
#define LOAD	    (8 * MIB) /* the NE driver's image load offset */
#define SETUP_SECTS 4
#define SETUP_LEN   ((SETUP_SECTS + 1) * 512)
#define KERNEL_LEN  (8 * MIB)
#define RD0_LEN	    (2 * MIB)
#define RD1_LEN	    (1 * MIB)
#define BP_RAMDISK  (X86_BOOT_PARAMS_GPA + 0x218)
#define BP_E820	    (X86_BOOT_PARAMS_GPA + 0x2d0)
#define BP_E820_N   (X86_BOOT_PARAMS_GPA + 0x1e8)

/* Where regions meet, as enclave offsets: 8 MiB + 4 KiB (the kernel's
 * section header straddles it, 4 KiB into the EIF), 12 MiB + 4 KiB (the
 * kernel's data), 17 MiB (ramdisk 0), 62 MiB (the initrd's destination,
 * 61-64 MiB). 64 MiB in all. */
static const uint64_t sizes[] = {8 * MIB + 4 * KIB, 4 * MIB, 5 * MIB - 4 * KIB, 45 * MIB, 2 * MIB};
#define NREGIONS (sizeof(sizes) / sizeof(sizes[0]))

/* The boot structures and the legacy area, reserved, then RAM to `low`
 * (and from 4 GiB, `high` bytes): what x86_boot_setup writes for one
 * contiguous allocation. */
static unsigned want_e820(uint64_t (*t)[3], uint64_t low, uint64_t high)
{
	static const uint64_t fixed[][3] = {
	    {0, 0x1000, 2},	   {0x1000, 0x6000, 1},	  {0x7000, 0x8000, 2},
	    {0xf000, 0x11000, 1},  {0x20000, 0x10000, 2}, {0x30000, 0x6fc00, 1},
	    {0x9fc00, 0x60400, 2},
	};
	unsigned n = sizeof(fixed) / sizeof(fixed[0]);

	memcpy(t, fixed, sizeof(fixed));
	t[n][0] = MIB, t[n][1] = low - MIB, t[n++][2] = 1;
	if (high)
		t[n][0] = 4 * GIB, t[n][1] = high, t[n++][2] = 1;
	return n;
}

static char eif_path[] = "/tmp/nectl-machine-XXXXXX";
static uint8_t *kernel, *rd0, *rd1;

static bool kvm_present(void)
{
	return access("/dev/kvm", R_OK | W_OK) == 0;
}

static uint8_t *map(uint64_t size, int extra)
{
	void *p =
	    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

static void map_regions(struct mem_region *r, const uint64_t *sz, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		r[i] = (struct mem_region){map(sz[i], 0), sz[i]};
}

static void unmap_regions(const struct mem_region *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		munmap(r[i].addr, r[i].size);
}

/* Byte o of the enclave's memory, found independently of the machine. */
static uint8_t *enclave_at(const struct mem_region *r, unsigned n, uint64_t o)
{
	for (unsigned i = 0; i < n; o -= r[i].size, i++)
		if (o < r[i].size)
			return r[i].addr + o;
	fail_msg("enclave offset past the memory");
	return NULL;
}

/* Guest physical to enclave offset, below the hole (all these tests use). */
static void check_bytes(const struct mem_region *r, unsigned n, uint64_t gpa, const uint8_t *want,
			uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (*enclave_at(r, n, gpa + i) != want[i])
			fail_msg("guest byte 0x%llx is %u, want %u", (unsigned long long)(gpa + i),
				 *enclave_at(r, n, gpa + i), want[i]);
}

static void put_enclave(const struct mem_region *r, unsigned n, uint64_t o, const uint8_t *buf,
			size_t len)
{
	for (size_t i = 0; i < len; i++)
		*enclave_at(r, n, o + i) = buf[i];
}

static void check_e820(const struct mem_region *r, unsigned n, uint64_t low, uint64_t high)
{
	uint64_t want[16][3];
	unsigned count = want_e820(want, low, high);

	assert_int_equal(*enclave_at(r, n, BP_E820_N), count);
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *e = enclave_at(r, n, BP_E820 + 20 * i);

		assert_int_equal(le64_get(e), want[i][0]);
		assert_int_equal(le64_get(e + 8), want[i][1]);
		assert_int_equal(le32_get(e + 16), want[i][2]);
	}
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * seed + (i >> 12) + seed);
}

/* The reference EIF with a bootable 8 MiB kernel whose 12-byte section
 * header straddles the enclave's first region boundary, and 2 + 1 MiB of
 * ramdisks, the first across the third boundary. */
static void describe_eif(struct eifgen *g)
{
	eifgen_init_reference(g);
	g->sec[EIFGEN_REF_KERNEL].data = kernel;
	g->sec[EIFGEN_REF_KERNEL].len = KERNEL_LEN;
	g->sec[EIFGEN_REF_KERNEL].gap = 4 * KIB - 6 - EIF_HEADER_SIZE;
	g->sec[EIFGEN_REF_RAMDISK0].data = rd0;
	g->sec[EIFGEN_REF_RAMDISK0].len = RD0_LEN;
	g->sec[EIFGEN_REF_RAMDISK1].data = rd1;
	g->sec[EIFGEN_REF_RAMDISK1].len = RD1_LEN;
}

static int setup_files(void **state)
{
	struct eifgen g;
	int fd = mkstemp(eif_path);

	(void)state;
	if (fd < 0)
		return -1;
	close(fd);
	kernel = malloc(KERNEL_LEN);
	rd0 = malloc(RD0_LEN);
	rd1 = malloc(RD1_LEN);
	if (!kernel || !rd0 || !rd1)
		return -1;
	/* pref 2 MiB, init_size 24 MiB: the kernel's area runs to 26 MiB. */
	bzgen_header(kernel, KERNEL_LEN, SETUP_SECTS, 2 * MIB, 24 * MIB);
	fill(kernel + SETUP_LEN, KERNEL_LEN - SETUP_LEN, 7);
	fill(rd0, RD0_LEN, 11);
	fill(rd1, RD1_LEN, 13);
	describe_eif(&g);
	return eifgen_write_file(&g, eif_path);
}

static int teardown_files(void **state)
{
	(void)state;
	free(kernel);
	free(rd0);
	free(rd1);
	return unlink(eif_path);
}

static struct machine_spec donated(const struct mem_region *r, unsigned n)
{
	return (struct machine_spec){.image_name = "donated.eif",
				     .ncpus = 1,
				     .cid = 16,
				     .memory = r,
				     .nmemory = n,
				     .image_offset = LOAD};
}

static void check(int rc, const struct nectl_err *err)
{
	if (rc != 0)
		fail_msg("error: %s", err->msg);
}

static void check_layout_facts(void)
{
	struct eifgen g;
	uint64_t k_hdr, rd0_data;

	describe_eif(&g);
	k_hdr = LOAD + eifgen_section_offset(&g, EIFGEN_REF_KERNEL);
	rd0_data = LOAD + eifgen_data_offset(&g, EIFGEN_REF_RAMDISK0);
	/* What the test claims to straddle does. */
	assert_true(k_hdr < sizes[0] && k_hdr + EIF_SECTION_HEADER_SIZE > sizes[0]);
	assert_true(k_hdr + KERNEL_LEN > sizes[0] + sizes[1]);
	assert_true(rd0_data < 17 * MIB && rd0_data + RD0_LEN > 17 * MIB);
}

static void test_boots_from_donated_regions(void **state)
{
	struct mem_region r[NREGIONS], got[MACHINE_MAX_REGIONS];
	struct machine_spec spec;
	struct machine *m = NULL;
	struct nectl_err err = {0};
	struct eif_image file;
	uint64_t len = 0;

	(void)state;
	if (!kvm_present())
		skip();
	check_layout_facts();
	map_regions(r, sizes, NREGIONS);
	spec = donated(r, NREGIONS);
	spec.memory_huge = true; /* the caller's word: the machine repeats it */
	check(machine_create(&m, &spec, &err), &err);
	assert_int_equal(machine_memory_regions(m, got, MACHINE_MAX_REGIONS), NREGIONS);
	assert_memory_equal(got, r, sizeof(r));
	assert_int_equal(machine_memory_regions(m, got, NREGIONS - 1), 0);
	assert_int_equal(machine_image_offset(m), LOAD);
	assert_string_equal(machine_memory_kind(m), "hugepages");
	check(enclave_write_eif(eif_path, r, NREGIONS, LOAD, &len, &err), &err);
	check(machine_load_image(m, &err), &err);

	/* Parsed from the regions exactly as from the file. */
	check(eif_read_file(eif_path, &file, NULL, &err), &err);
	assert_memory_equal(&machine_image(m)->pcrs, &file.pcrs, sizeof(file.pcrs));
	assert_string_equal(machine_image(m)->cmdline, "console=ttyS0");
	eif_image_free(&file);

	/* The initrd at the top of low memory (61 MiB, across 62 MiB), the
	 * protected-mode kernel at 1 MiB (across 8 MiB + 4 KiB). */
	assert_int_equal(le32_get(enclave_at(r, NREGIONS, BP_RAMDISK)), 61 * MIB);
	assert_int_equal(le32_get(enclave_at(r, NREGIONS, BP_RAMDISK + 4)), RD0_LEN + RD1_LEN);
	check_bytes(r, NREGIONS, 61 * MIB, rd0, RD0_LEN);
	check_bytes(r, NREGIONS, 61 * MIB + RD0_LEN, rd1, RD1_LEN);
	check_bytes(r, NREGIONS, X86_KERNEL_GPA, kernel + SETUP_LEN, KERNEL_LEN - SETUP_LEN);
	check_e820(r, NREGIONS, 64 * MIB, 0);

	/* The donor's memory stays mapped, and the donor's. */
	machine_destroy(m);
	for (unsigned i = 0; i < NREGIONS; i++)
		memset(r[i].addr, 0x5a, r[i].size);
	unmap_regions(r, NREGIONS);
}

/* One 4 GiB region: 3 GiB below the MMIO hole, 1 GiB from 4 GiB. */
static void test_region_across_the_hole_is_split(void **state)
{
	struct mem_region r = {NULL, 4 * GIB}, got;
	struct machine_spec spec = donated(&r, 1);
	struct machine *m = NULL;
	struct nectl_err err = {0};

	(void)state;
	if (!kvm_present())
		skip();
	r.addr = map(r.size, MAP_NORESERVE);
	check(machine_create(&m, &spec, &err), &err);
	assert_int_equal(machine_memory_regions(m, &got, 1), 1);
	assert_ptr_equal(got.addr, r.addr);
	assert_int_equal(got.size, 4 * GIB);
	assert_string_equal(machine_memory_kind(m), "anonymous memory");
	check(enclave_write_eif(eif_path, &r, 1, LOAD, NULL, &err), &err);
	check(machine_load_image(m, &err), &err);
	assert_int_equal(le32_get(r.addr + BP_RAMDISK), 3 * GIB - RD0_LEN - RD1_LEN);
	check_bytes(&r, 1, 3 * GIB - RD0_LEN - RD1_LEN, rd0, RD0_LEN);
	check_e820(&r, 1, 3 * GIB, GIB);
	machine_destroy(m);
	munmap(r.addr, r.size);
}

static void expect_refused(const struct machine_spec *spec, enum nectl_kind kind, const char *words)
{
	struct machine *m = NULL;
	struct nectl_err err = {0};

	assert_int_equal(machine_create(&m, spec, &err), -1);
	assert_null(m);
	assert_int_equal(err.kind, kind);
	if (!strstr(err.msg, words))
		fail_msg("\"%s\" does not say \"%s\"", err.msg, words);
}

static void test_bad_donations_refused(void **state)
{
	uint8_t *base;
	struct mem_region r[MACHINE_MAX_REGIONS + 1];
	struct machine_spec spec = donated(r, 2);
	struct machine *m = NULL;
	struct nectl_err err = {0};

	(void)state;
	if (!kvm_present())
		skip();
	base = map(32 * MIB, 0);
	r[0] = (struct mem_region){base, 12 * MIB};
	r[1] = (struct mem_region){base + 16 * MIB, 16 * MIB};
	r[1].addr += 1;
	expect_refused(&spec, NECTL_ERR_INVALID_ARG, "region 1");
	r[1].addr -= 1;
	r[1].size += 1;
	expect_refused(&spec, NECTL_ERR_INVALID_ARG, "4 KiB-aligned");
	r[1].size = 0;
	expect_refused(&spec, NECTL_ERR_INVALID_ARG, "non-empty");
	r[1] = (struct mem_region){base + 8 * MIB, 8 * MIB};
	expect_refused(&spec, NECTL_ERR_INVALID_ARG, "regions 0 and 1 overlap");
	r[1] = r[0];
	expect_refused(&spec, NECTL_ERR_INVALID_ARG, "overlap");
	spec.nmemory = 0;
	expect_refused(&spec, NECTL_ERR_INVALID_ARG, "0 memory regions");
	/* Sixteen 2 MiB regions are taken, seventeen are not. */
	for (unsigned i = 0; i <= MACHINE_MAX_REGIONS; i++)
		r[i] = (struct mem_region){base + i * 2 * MIB, 2 * MIB};
	spec.nmemory = MACHINE_MAX_REGIONS + 1;
	expect_refused(&spec, NECTL_ERR_INVALID_ARG, "17 memory regions");
	spec.nmemory = MACHINE_MAX_REGIONS;
	check(machine_create(&m, &spec, &err), &err);
	machine_destroy(m);
	spec.image_offset = 32 * MIB;
	expect_refused(&spec, NECTL_ERR_MEM_REQUEST, "image offset");
	munmap(base, 32 * MIB);
}

/* A description whose table lies: each is written straight into the
 * regions (the launch would have written the same bytes). */
static void load_lie(struct eifgen *g, const char *words)
{
	static const uint64_t small[] = {12 * MIB + 4 * KIB, 4 * MIB};
	struct mem_region r[2];
	struct machine_spec spec = donated(r, 2);
	struct machine *m = NULL;
	struct nectl_err err = {0};
	size_t len;
	uint8_t *eif = eifgen_build(g, &len);

	map_regions(r, small, 2);
	put_enclave(r, 2, LOAD, eif, len);
	free(eif);
	check(machine_create(&m, &spec, &err), &err);
	assert_int_equal(machine_load_image(m, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_EIF);
	if (!strstr(err.msg, words))
		fail_msg("\"%s\" does not say \"%s\"", err.msg, words);
	machine_destroy(m);
	unmap_regions(r, 2);
}

static void test_section_table_past_the_memory(void **state)
{
	struct eifgen g;
	struct eifgen_section *s;

	(void)state;
	if (!kvm_present())
		skip();
	/* 8 MiB of memory after the load offset: a ramdisk said to be at
	 * 1 GiB, one said to run 9 MiB from the start of the region it is in,
	 * and the kernel's offset plus size wrapping around 2^64. */
	eifgen_init_reference(&g);
	s = &g.sec[EIFGEN_REF_RAMDISK1];
	s->set_offset = true;
	s->offset = GIB;
	load_lie(&g, "runs past the end");
	eifgen_init_reference(&g);
	s = &g.sec[EIFGEN_REF_RAMDISK0];
	s->set_size = s->set_sh_size = true;
	s->size = s->sh_size = 9 * MIB;
	load_lie(&g, "runs past the end");
	eifgen_init_reference(&g);
	s = &g.sec[EIFGEN_REF_KERNEL];
	s->set_size = s->set_sh_size = true;
	s->size = s->sh_size = UINT64_MAX - 8;
	load_lie(&g, "runs past the end");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boots_from_donated_regions),
	    cmocka_unit_test(test_region_across_the_hole_is_split),
	    cmocka_unit_test(test_bad_donations_refused),
	    cmocka_unit_test(test_section_table_past_the_memory),
	};

	return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
