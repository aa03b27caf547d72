/* x86_64 boot structures on fake guest memory: a synthetic bzImage, the zero
 * page, e820, GDT, page tables and registers; the cmdline with the devices the
 * hypervisor appends, as Nitro's does; the MP table byte for byte; ACPI absent
 * by default and, when asked for, parsed back from the RSDP; malformed
 * kernels rejected with the field named; and, when it is in the cache,
 * Debian's real kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/le.h"

#include "bzgen.h"

#include "nectl/x86boot.h"

#define MIB	    (1024ull * 1024)
#define GIB	    (1024 * MIB)
#define SETUP_SECTS 4
#define PM_LEN	    (64 * 1024)
#define IMG_LEN	    ((SETUP_SECTS + 1) * 512 + PM_LEN)
/* What the hypervisor appends to the EIF's cmdline for nitro_devs: the seed's
 * boot log of a real enclave ends with exactly this. */
#define NITRO_DEVS_CMDLINE " virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6"
#define DEBIAN_VMLINUZ                                                                             \
	"/var/cache/nectl/kernels/6.12.95+deb12-cloud-amd64/boot/"                                 \
	"vmlinuz-6.12.95+deb12-cloud-amd64"

struct fixture {
	struct guestmem gm;
	uint8_t img[IMG_LEN];
	struct x86_boot_spec spec;
	struct x86_boot_regs regs;
	struct nectl_err err;
};

static const struct x86_mmio_dev nitro_devs[] = {
    {NITRO_VSOCK_MMIO, NITRO_MMIO_SLOT, NITRO_VSOCK_IRQ},
    {NITRO_NSM_MMIO, NITRO_MMIO_SLOT, NITRO_NSM_IRQ},
};

static uint8_t *gpa(struct fixture *f, uint64_t addr, uint64_t len)
{
	uint8_t *p = guestmem_ptr(&f->gm, addr, len);

	assert_non_null(p);
	return p;
}

/* A minimal protocol-2.15 bzImage: relocatable, 64-bit entry, 16 MiB
 * preferred address, 32 MiB init_size, and a patterned "kernel". */
static void make_image(uint8_t *k)
{
	bzgen_header(k, IMG_LEN, SETUP_SECTS, 0x1000000, 0x2000000);
	for (size_t i = 0; i < PM_LEN; i++)
		k[(SETUP_SECTS + 1) * 512 + i] = (uint8_t)(i * 7 + 3);
}

static struct fixture *fixture_new(uint64_t low, uint64_t high)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->gm.r[0] = (struct guestmem_region){0, low, calloc(1, low)};
	assert_non_null(f->gm.r[0].hva);
	f->gm.n = 1;
	if (high) {
		f->gm.r[1] = (struct guestmem_region){4 * GIB, high, calloc(1, high)};
		assert_non_null(f->gm.r[1].hva);
		f->gm.n = 2;
	}
	make_image(f->img);
	f->spec.bzimage = f->img;
	f->spec.bzimage_len = IMG_LEN;
	f->spec.cmdline = "console=ttyS0 reboot=k";
	f->spec.initrd_gpa = 64 * MIB;
	f->spec.initrd_len = MIB;
	f->spec.ncpus = 2;
	f->spec.devs = nitro_devs;
	f->spec.ndevs = 2;
	f->spec.uart = true;
	return f;
}

static void fixture_free(struct fixture *f)
{
	for (unsigned i = 0; i < f->gm.n; i++)
		free(f->gm.r[i].hva);
	free(f);
}

static int setup(struct fixture *f)
{
	memset(&f->err, 0, sizeof(f->err));
	return x86_boot_setup(&f->gm, &f->spec, &f->regs, &f->err);
}

static void check_e820(const uint8_t *bp, const uint64_t (*want)[3], unsigned n)
{
	assert_int_equal(bp[0x1e8], n);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + 0x2d0 + 20 * i;

		assert_int_equal(le64_get(e), want[i][0]);
		assert_int_equal(le64_get(e + 8), want[i][1]);
		assert_int_equal(le32_get(e + 16), want[i][2]);
	}
}

/* 256 MiB of RAM from 0: the boot structures and the legacy area reserved. */
static const uint64_t e820_256m[][3] = {
    {0, 0x1000, 2},	   {0x1000, 0x6000, 1},	  {0x7000, 0x8000, 2},	 {0xf000, 0x11000, 1},
    {0x20000, 0x10000, 2}, {0x30000, 0x6fc00, 1}, {0x9fc00, 0x60400, 2}, {0x100000, 255 * MIB, 1},
};

static void test_zero_page(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	uint8_t *bp;
	const char *cl = "console=ttyS0 reboot=k" NITRO_DEVS_CMDLINE;

	assert_int_equal(setup(f), 0);
	bp = gpa(f, X86_BOOT_PARAMS_GPA, 4096);
	/* The setup header is the image's, from 0x1f1 to its end at 0x268. */
	assert_memory_equal(bp + 0x1f1, f->img + 0x1f1, 0x210 - 0x1f1);
	assert_memory_equal(bp + 0x202, "HdrS", 4);
	assert_int_equal(le16_get(bp + 0x206), 0x020f);
	assert_int_equal(le32_get(bp + 0x260), 0x2000000);
	assert_int_equal(bp[0x1ef], 0); /* sentinel */
	assert_int_equal(bp[0x210], 0xff);
	assert_int_equal(le32_get(bp + 0x218), 64 * MIB);
	assert_int_equal(le32_get(bp + 0x21c), MIB);
	assert_int_equal(le32_get(bp + 0x0c0), 0);
	assert_int_equal(le32_get(bp + 0x0c4), 0);
	assert_int_equal(le32_get(bp + 0x228), X86_CMDLINE_GPA);
	assert_int_equal(le32_get(bp + 0x0c8), 0);
	assert_int_equal(le64_get(bp + 0x070), 0); /* no ACPI: no RSDP */
	check_e820(bp, e820_256m, sizeof(e820_256m) / sizeof(e820_256m[0]));
	/* The protected-mode kernel at 1 MiB, the cmdline NUL-terminated. */
	assert_memory_equal(gpa(f, X86_KERNEL_GPA, PM_LEN), f->img + (SETUP_SECTS + 1) * 512,
			    PM_LEN);
	assert_memory_equal(gpa(f, X86_CMDLINE_GPA, strlen(cl) + 1), cl, strlen(cl) + 1);
	fixture_free(f);
}

/* Records the pieces guestmem_span hands out. */
struct pieces {
	uint64_t at[4], len[4];
	unsigned n;
};

static int record_piece(void *ctx, uint8_t *hva, uint64_t at, uint64_t len)
{
	struct pieces *p = ctx;

	(void)hva;
	if (p->n < 4)
		p->at[p->n] = at, p->len[p->n] = len;
	p->n++;
	return 0;
}

/* Donated memory meets itself at 1 MiB + 32 KiB (inside the kernel) and at
 * 64 MiB + 512 KiB (inside the initrd), separately allocated: the boot
 * places and checks across the joins, and the e820 map shows one range. */
static void test_regions_meet(void **state)
{
	struct fixture *f = fixture_new(MIB + 32 * 1024, 0);
	struct pieces p = {0};
	const uint8_t *pm = f->img + (SETUP_SECTS + 1) * 512;

	(void)state;
	f->gm.r[1] = (struct guestmem_region){MIB + 32 * 1024, 63 * MIB + 480 * 1024,
					      calloc(1, 63 * MIB + 480 * 1024)};
	f->gm.r[2] = (struct guestmem_region){64 * MIB + 512 * 1024, 192 * MIB - 512 * 1024,
					      calloc(1, 192 * MIB - 512 * 1024)};
	f->gm.n = 3;
	assert_int_equal(setup(f), 0);
	assert_memory_equal(gpa(f, X86_KERNEL_GPA, 32 * 1024), pm, 32 * 1024);
	assert_memory_equal(gpa(f, X86_KERNEL_GPA + 32 * 1024, PM_LEN - 32 * 1024), pm + 32 * 1024,
			    PM_LEN - 32 * 1024);
	check_e820(gpa(f, X86_BOOT_PARAMS_GPA, 4096), e820_256m,
		   sizeof(e820_256m) / sizeof(e820_256m[0]));
	assert_int_equal(guestmem_span(&f->gm, MIB, 64 * 1024, record_piece, &p), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.at[1], 32 * 1024);
	assert_int_equal(p.len[0], 32 * 1024);
	assert_int_equal(p.len[1], 32 * 1024);
	/* Past the end, wrapping around 2^64, or into a hole: refused whole,
	 * nothing handed out. */
	p.n = 0;
	assert_int_equal(guestmem_span(&f->gm, 64 * MIB, 200 * MIB, record_piece, &p), -1);
	assert_int_equal(guestmem_span(&f->gm, UINT64_MAX - 4, 8, record_piece, &p), -1);
	f->gm.r[2].gpa += 4096;
	assert_int_equal(guestmem_span(&f->gm, 64 * MIB, MIB, record_piece, &p), -1);
	assert_int_equal(p.n, 0);
	f->spec.initrd_gpa = 64 * MIB;
	assert_int_equal(setup(f), -1);
	assert_non_null(strstr(f->err.msg, "initrd: 0x4000000+0x100000 is outside guest memory"));
	fixture_free(f);
}

static void test_gdt_pt_regs(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	const uint8_t *g, *pml4, *pdpt, *pd;
	struct x86_boot_regs *r = &f->regs;

	assert_int_equal(setup(f), 0);
	assert_int_equal(r->rip, 0x100200);
	assert_int_equal(r->rsi, X86_BOOT_PARAMS_GPA);
	assert_int_equal(r->rsp, 0x8ff0);
	assert_int_equal(r->rflags, 0x2);
	assert_int_equal(r->cr0, 0x80010031);
	assert_int_equal(r->cr3, X86_PML4_GPA);
	assert_int_equal(r->cr4, 0x20);
	assert_int_equal(r->efer, 0x500);
	assert_int_equal(r->gdt_base, X86_GDT_GPA);
	assert_int_equal(r->gdt_limit, 31);
	assert_int_equal(r->cs_sel, 0x10);
	assert_int_equal(r->ds_sel, 0x18);
	g = gpa(f, X86_GDT_GPA, 32);
	assert_int_equal(le64_get(g), 0);
	assert_int_equal(le64_get(g + 8), 0);
	assert_int_equal(le64_get(g + r->cs_sel), 0x00af9b000000ffffull); /* L=1, D=0 */
	assert_int_equal(le64_get(g + r->ds_sel), 0x00cf93000000ffffull);
	pml4 = gpa(f, X86_PML4_GPA, 4096);
	pdpt = gpa(f, X86_PML4_GPA + 0x1000, 4096);
	assert_int_equal(le64_get(pml4), 0xa003);
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(le64_get(pml4 + 8 * i), 0);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(le64_get(pdpt + 8 * i), (0xb000 + 0x1000 * i) | 3);
		pd = gpa(f, 0xb000 + 0x1000 * i, 4096);
		for (unsigned j = 0; j < 512; j++)
			assert_int_equal(le64_get(pd + 8 * j), (i * GIB + j * 2 * MIB) | 0x83);
	}
	assert_int_equal(le64_get(pdpt + 8 * 4), 0);
	fixture_free(f);
}

static void test_two_regions(void **state)
{
	struct fixture *f = fixture_new(64 * MIB, 16 * MIB);
	uint8_t *bp;

	f->spec.initrd_gpa = 4 * GIB + 0x1000;
	f->spec.initrd_len = 2 * MIB;
	f->spec.cmdline = NULL;
	assert_int_equal(setup(f), 0);
	bp = gpa(f, X86_BOOT_PARAMS_GPA, 4096);
	assert_int_equal(le32_get(bp + 0x218), 0x1000);
	assert_int_equal(le32_get(bp + 0x0c0), 1);
	assert_int_equal(le32_get(bp + 0x21c), 2 * MIB);
	assert_int_equal(bp[0x1e8], 9);
	assert_int_equal(le64_get(bp + 0x2d0 + 20 * 7), 0x100000);
	assert_int_equal(le64_get(bp + 0x2d0 + 20 * 7 + 8), 63 * MIB);
	assert_int_equal(le64_get(bp + 0x2d0 + 20 * 8), 4 * GIB);
	assert_int_equal(le64_get(bp + 0x2d0 + 20 * 8 + 8), 16 * MIB);
	assert_int_equal(le32_get(bp + 0x2d0 + 20 * 8 + 16), 1);
	/* No cmdline in the EIF: the devices alone, without a leading space. */
	assert_string_equal((const char *)gpa(f, X86_CMDLINE_GPA, 128), NITRO_DEVS_CMDLINE + 1);
	fixture_free(f);
}

/* Each case breaks one thing and expects an error naming it. */
struct bad_case {
	const char *what;
	void (*mutate)(struct fixture *f);
	enum nectl_kind code;
};

static void bad_short(struct fixture *f)
{
	f->spec.bzimage_len = 0x263;
}

static void bad_flag(struct fixture *f)
{
	le16_put(f->img + 0x1fe, 0x55aa);
}

static void bad_magic(struct fixture *f)
{
	memcpy(f->img + 0x202, "HdrZ", 4);
}

static void bad_version(struct fixture *f)
{
	le16_put(f->img + 0x206, 0x020b);
}

static void bad_xlf(struct fixture *f)
{
	le16_put(f->img + 0x236, 0x2);
}

static void bad_loadflags(struct fixture *f)
{
	f->img[0x211] = 0;
}

static void bad_setup_sects(struct fixture *f)
{
	f->img[0x1f1] = 200;
}

static void bad_hdr_end(struct fixture *f)
{
	f->img[0x201] = 0x10;
}

static void bad_init_size(struct fixture *f)
{
	le32_put(f->img + 0x260, 0xf0000000);
}

static void bad_init_size_mem(struct fixture *f)
{
	le32_put(f->img + 0x260, 0x20000000); /* 16 MiB + 512 MiB > 256 MiB of RAM */
}

static void bad_init_size_zero(struct fixture *f)
{
	le32_put(f->img + 0x260, 0);
}

static void bad_alignment(struct fixture *f)
{
	le32_put(f->img + 0x230, 0x300000);
}

static void bad_pref(struct fixture *f)
{
	f->img[0x234] = 0;
	le64_put(f->img + 0x258, 0x80000);
}

static void bad_pref_high(struct fixture *f)
{
	le64_put(f->img + 0x258, 0xffffffffffff0000ull);
}

static void bad_cmdline_size(struct fixture *f)
{
	le32_put(f->img + 0x238, 5);
}

static void bad_cmdline_max(struct fixture *f)
{
	static char big[X86_CMDLINE_MAX + 1];

	memset(big, 'a', X86_CMDLINE_MAX);
	le32_put(f->img + 0x238, 0xffffffff);
	f->spec.cmdline = big;
}

static void bad_initrd_overlap(struct fixture *f)
{
	f->spec.initrd_gpa = 40 * MIB; /* inside 16 MiB + 32 MiB */
}

static void bad_initrd_outside(struct fixture *f)
{
	f->spec.initrd_gpa = 255 * MIB;
	f->spec.initrd_len = 2 * MIB;
}

static void bad_initrd_wrap(struct fixture *f)
{
	f->spec.initrd_gpa = 64 * MIB;
	f->spec.initrd_len = UINT64_MAX - 0x1000;
}

static void bad_initrd_max(struct fixture *f)
{
	le16_put(f->img + 0x236, 0x1);
	le32_put(f->img + 0x22c, 64 * MIB + 0xfff); /* the initrd is [64 MiB, 65 MiB) */
}

static void bad_ncpus(struct fixture *f)
{
	f->spec.ncpus = 0;
}

static void bad_lowmem(struct fixture *f)
{
	f->gm.r[0].gpa = 0x1000;
}

static void bad_no_image(struct fixture *f)
{
	f->spec.bzimage = NULL;
}

static const struct bad_case bad_cases[] = {
    {"too short", bad_short, NECTL_ERR_EIF},
    {"boot_flag", bad_flag, NECTL_ERR_EIF},
    {"HdrS", bad_magic, NECTL_ERR_EIF},
    {"version", bad_version, NECTL_ERR_EIF},
    {"XLF_KERNEL_64", bad_xlf, NECTL_ERR_EIF},
    {"LOADED_HIGH", bad_loadflags, NECTL_ERR_EIF},
    {"setup_sects", bad_setup_sects, NECTL_ERR_EIF},
    {"setup header end", bad_hdr_end, NECTL_ERR_EIF},
    {"init_size", bad_init_size, NECTL_ERR_EIF},
    {"init_size", bad_init_size_mem, NECTL_ERR_EIF},
    {"init_size is 0", bad_init_size_zero, NECTL_ERR_EIF},
    {"kernel_alignment", bad_alignment, NECTL_ERR_EIF},
    {"pref_address", bad_pref, NECTL_ERR_EIF},
    {"pref_address", bad_pref_high, NECTL_ERR_EIF},
    {"cmdline_size", bad_cmdline_size, NECTL_ERR_EIF},
    {"cmdline: longer", bad_cmdline_max, NECTL_ERR_EIF},
    {"initrd: at", bad_initrd_overlap, NECTL_ERR_EIF},
    {"initrd: 0x", bad_initrd_outside, NECTL_ERR_EIF},
    {"initrd: 0x", bad_initrd_wrap, NECTL_ERR_EIF},
    {"initrd_addr_max", bad_initrd_max, NECTL_ERR_EIF},
    {"vCPUs", bad_ncpus, NECTL_ERR_INVALID_ARG},
    {"1 MiB of RAM", bad_lowmem, NECTL_ERR_INVALID_ARG},
    {"no image", bad_no_image, NECTL_ERR_EIF},
};

static void test_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct fixture *f = fixture_new(256 * MIB, 0);

		bad_cases[i].mutate(f);
		if (setup(f) != -1)
			fail_msg("case %zu (%s) accepted", i, bad_cases[i].what);
		if (f->err.kind != bad_cases[i].code || !strstr(f->err.msg, bad_cases[i].what))
			fail_msg("case %zu (%s): code %d, \"%s\"", i, bad_cases[i].what,
				 f->err.kind, f->err.msg);
		/* Nothing is written before every check passed. */
		assert_int_equal(le32_get(gpa(f, X86_KERNEL_GPA, 4)), 0);
		assert_int_equal(*gpa(f, X86_ACPI_GPA, 1), 0);
		assert_int_equal(*gpa(f, X86_MPTABLE_GPA, 1), 0);
		fixture_free(f);
	}
}

/* ---- ACPI ---- */

static void check_table(const uint8_t *t, const char *sig, uint32_t min_len)
{
	uint8_t sum = 0;
	uint32_t len = le32_get(t + 4);

	assert_memory_equal(t, sig, 4);
	assert_true(len >= min_len);
	for (uint32_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + t[i]);
	assert_int_equal(sum, 0);
	assert_memory_equal(t + 10, "NECTL ", 6);
	assert_memory_equal(t + 16, "NECTLVM ", 8);
}

static size_t count(const uint8_t *p, size_t len, const void *needle, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i + n <= len; i++)
		c += !memcmp(p + i, needle, n);
	return c;
}

/* PkgLength (ACPI §20.2.4): returns the encoded length, sets *n to its bytes. */
static uint32_t pkglen(const uint8_t *p, unsigned *n)
{
	uint32_t v;

	*n = 1 + (p[0] >> 6);
	if (*n == 1)
		return p[0] & 0x3f;
	v = p[0] & 0x0f;
	for (unsigned i = 1; i < *n; i++)
		v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

struct acpi_view {
	const uint8_t *xsdt, *fadt, *madt, *dsdt;
};

static void acpi_walk(struct fixture *f, struct acpi_view *v)
{
	const uint8_t *rsdp = gpa(f, X86_ACPI_GPA, 36);
	uint8_t sum = 0;

	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(rsdp[15], 2);
	assert_int_equal(le32_get(rsdp + 20), 36);
	for (int i = 0; i < 20; i++)
		sum = (uint8_t)(sum + rsdp[i]);
	assert_int_equal(sum, 0);
	for (int i = 20; i < 36; i++)
		sum = (uint8_t)(sum + rsdp[i]);
	assert_int_equal(sum, 0);
	v->xsdt = gpa(f, le64_get(rsdp + 24), 36);
	check_table(v->xsdt, "XSDT", 52);
	assert_int_equal(le32_get(v->xsdt + 4), 52);
	v->fadt = gpa(f, le64_get(v->xsdt + 36), 276);
	v->madt = gpa(f, le64_get(v->xsdt + 44), 44);
	check_table(v->fadt, "FACP", 276);
	check_table(v->madt, "APIC", 44);
	assert_int_equal(le32_get(v->fadt + 4), 276);
	assert_int_equal(v->fadt[8], 6);
	assert_int_equal(le32_get(v->fadt + 112), 1u << 20);
	assert_int_equal(le16_get(v->fadt + 109), 0);
	assert_int_equal(le32_get(v->fadt + 40), 0);
	/* Sleep control and status: one byte-wide I/O port each, for power-off. */
	for (unsigned off = 244; off <= 256; off += 12) {
		assert_int_equal(v->fadt[off], 1);
		assert_int_equal(v->fadt[off + 1], 8);
		assert_int_equal(v->fadt[off + 2], 0);
		assert_int_equal(v->fadt[off + 3], 1);
		assert_int_equal(le64_get(v->fadt + off + 4), X86_ACPI_SLEEP_PORT);
	}
	v->dsdt = gpa(f, le64_get(v->fadt + 140), 36);
	check_table(v->dsdt, "DSDT", 36);
	/* All tables inside the reserved ACPI area. */
	assert_true(le64_get(v->fadt + 140) + le32_get(v->dsdt + 4) <= X86_ACPI_GPA + X86_ACPI_MAX);
}

static void test_acpi_tables(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	struct acpi_view v;
	const uint8_t *e, *aml;
	uint32_t dlen;
	static const uint8_t com1_hid[] = {0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01};
	/* clang-format off */
	static const uint8_t pevt[] = {
	    0x5b, 0x82, 0x2e, 'P', 'E', 'V', 'T',
	    0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0x00,
	    0x08, '_', 'S', 'T', 'A', 0x0a, 0x0f,
	    0x08, '_', 'C', 'R', 'S', 0x11, 0x0d, 0x0a, 0x0a,
	    0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00,
	};
	/* clang-format on */

	f->spec.ncpus = 4;
	f->spec.acpi = true;
	f->spec.pvpanic = true;
	assert_int_equal(setup(f), 0);
	assert_int_equal(le64_get(gpa(f, X86_BOOT_PARAMS_GPA, 4096) + 0x070), X86_ACPI_GPA);
	acpi_walk(f, &v);
	/* MADT: four enabled local APICs, then the I/O APIC with id 4. */
	assert_int_equal(le32_get(v.madt + 4), 44 + 4 * 8 + 12);
	assert_int_equal(le32_get(v.madt + 36), X86_LAPIC_BASE);
	assert_int_equal(le32_get(v.madt + 40), 0);
	for (unsigned i = 0; i < 4; i++) {
		e = v.madt + 44 + 8 * i;
		assert_int_equal(e[0], 0);
		assert_int_equal(e[1], 8);
		assert_int_equal(e[2], i);
		assert_int_equal(e[3], i);
		assert_int_equal(le32_get(e + 4), 1);
	}
	e = v.madt + 44 + 32;
	assert_int_equal(e[0], 1);
	assert_int_equal(e[1], 12);
	assert_int_equal(e[2], 4);
	assert_int_equal(le32_get(e + 4), X86_IOAPIC_BASE);
	assert_int_equal(le32_get(e + 8), 0);
	/* DSDT: two LNRO0005 devices with their windows and IRQs, and COM1. */
	dlen = le32_get(v.dsdt + 4);
	aml = v.dsdt + 36;
	assert_int_equal(count(aml, dlen - 36, "LNRO0005", 8), 2);
	for (unsigned i = 0; i < 2; i++) {
		uint8_t mem[12] = {0x86, 0x09, 0x00, 0x01}, irq[9] = {0x89, 0x06, 0x00, 0x01, 0x01};

		le32_put(mem + 4, (uint32_t)nitro_devs[i].base);
		le32_put(mem + 8, nitro_devs[i].size);
		le32_put(irq + 5, nitro_devs[i].irq);
		assert_int_equal(count(aml, dlen - 36, mem, sizeof(mem)), 1);
		assert_int_equal(count(aml, dlen - 36, irq, sizeof(irq)), 1);
	}
	assert_int_equal(count(aml, dlen - 36, "VR00", 4), 1);
	assert_int_equal(count(aml, dlen - 36, "VR01", 4), 1);
	assert_int_equal(count(aml, dlen - 36, com1_hid, sizeof(com1_hid)), 1);
	/* pvpanic, hand-encoded: Device (PEVT) { Name (_HID, "QEMU0001"),
	 * Name (_STA, 0x0F), Name (_CRS, ResourceTemplate () { IO (Decode16,
	 * 0x505, 0x505, 1, 1) }) }: 5B 82 <pkglen 46> 'PEVT', 15 + 7 + 19 bytes. */
	assert_int_equal(count(aml, dlen - 36, pevt, sizeof(pevt)), 1);
	fixture_free(f);
}

/* One virtio device (VR00: 0xd0000000, 4 KiB, IRQ 5) and COM1, encoded
 * by hand from ACPI 6.x §20 (AML) and §6.4 (resource descriptors):
 *   Device body: Name(_HID,"LNRO0005") = 08 '_HID' 0D 'LNRO0005' 00 (15 bytes),
 *   Name(_UID,0) = 08 '_UID' 00 (6), Name(_CRS, Buffer) = 08 '_CRS' 11 <pkglen
 *   0x1a = 1 + 2 + 23> 0A 17 then 23 bytes: Memory32Fixed 86 0900 01 base size
 *   (12), Extended Interrupt 89 0600 01(consumer, level, high, exclusive) 01
 *   irq(le32) (9), End tag 79 00 (2): 32 bytes. Device = 5B 82 <pkglen 0x3a
 *   = 1 + 4 + 53> 'VR00' + 53 = 60 bytes.
 *   COM1: Name(_HID, EisaId("PNP0501")) = 08 '_HID' 0C 41 D0 05 01 (10),
 *   _UID 6, _CRS 08 '_CRS' 11 10 0A 0D + IO 47 01 F803 F803 01 08 (8),
 *   IRQNoFlags 22 1000 (3), End 79 00 (2): 22 bytes. Device = 5B 82 2B 'COM1'
 *   + 38 = 45 bytes.
 *   Scope: 10 <pkglen 112 = 2 + 5 + 60 + 45: two bytes, 0x40 | (112 & 15),
 *   112 >> 4> 5C '_SB_' = 113 bytes.
 * Before it, at the root: Name (_S5, Package (4) {5, 0, 0, 0}): 08 '_S5_'
 *   12 <pkglen 7 = itself 1 + count 1 + 0A 05 (2) + 00 00 00 (3)> 04 ...
 *   = 13 bytes. 126 after the 36-byte header: 162 in all. */
/* clang-format off: one line per field or entry */
static const uint8_t dsdt_one_dev_com1[] = {
    0x08, '_',	'S',  '5',  '_',  0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00, 0x10, 0x40, 0x07,
    0x5c, '_',	'S',  'B',  '_',  0x5b, 0x82, 0x3a, 'V',  'R',	'0',  '0',  0x08, '_',	'H',  'I',
    'D',  0x0d, 'L',  'N',  'R',  'O',	'0',  '0',  '0',  '5',	0x00, 0x08, '_',  'U',	'I',  'D',
    0x00, 0x08, '_',  'C',  'R',  'S',	0x11, 0x1a, 0x0a, 0x17, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00,
    0x00, 0xd0, 0x00, 0x10, 0x00, 0x00, 0x89, 0x06, 0x00, 0x01, 0x01, 0x05, 0x00, 0x00, 0x00, 0x79,
    0x00, 0x5b, 0x82, 0x2b, 'C',  'O',	'M',  '1',  0x08, '_',	'H',  'I',  'D',  0x0c, 0x41, 0xd0,
    0x05, 0x01, 0x08, '_',  'U',  'I',	'D',  0x00, 0x08, '_',	'C',  'R',  'S',  0x11, 0x10, 0x0a,
    0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00,
};
/* clang-format on */

static void test_dsdt_bytes(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	struct acpi_view v;

	f->spec.ndevs = 1;
	assert_int_equal(x86_acpi_build(&f->gm, &f->spec, &f->err), 0);
	acpi_walk(f, &v);
	assert_int_equal(sizeof(dsdt_one_dev_com1), 126);
	assert_int_equal(le32_get(v.dsdt + 4), 36 + sizeof(dsdt_one_dev_com1));
	assert_int_equal(v.dsdt[8], 2);
	assert_memory_equal(v.dsdt + 36, dsdt_one_dev_com1, sizeof(dsdt_one_dev_com1));
	fixture_free(f);
}

/* Many devices need multi-byte PkgLengths; no UART, one CPU. */
static void test_acpi_many(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	static struct x86_mmio_dev devs[256];
	struct acpi_view v;
	unsigned n;
	uint32_t len;

	for (unsigned i = 0; i < 256; i++)
		devs[i] = (struct x86_mmio_dev){0xd0000000ull + i * 0x1000, 0x200, 5 + i % 16};
	f->spec.devs = devs;
	f->spec.ndevs = 256;
	f->spec.uart = false;
	f->spec.ncpus = 240;
	assert_int_equal(x86_acpi_build(&f->gm, &f->spec, &f->err), 0);
	acpi_walk(f, &v);
	assert_int_equal(le32_get(v.madt + 4), 44 + 240 * 8 + 12);
	assert_int_equal(v.madt[44 + 240 * 8 + 2], 240);
	len = le32_get(v.dsdt + 4);
	assert_int_equal(v.dsdt[36], 0x08); /* _S5 first, 13 bytes */
	assert_int_equal(v.dsdt[49], 0x10);
	/* The scope's PkgLength covers everything after its opcode. */
	assert_int_equal(pkglen(v.dsdt + 50, &n), len - 50);
	assert_int_equal(n, 3);
	assert_int_equal(count(v.dsdt + 36, len - 36, "LNRO0005", 8), 256);
	assert_int_equal(count(v.dsdt + 36, len - 36, "VRFF", 4), 1);
	assert_int_equal(count(v.dsdt + 36, len - 36, "COM1", 4), 0);

	f->spec.ncpus = 241;
	assert_int_equal(x86_acpi_build(&f->gm, &f->spec, &f->err), -1);
	assert_int_equal(f->err.kind, NECTL_ERR_INVALID_ARG);
	f->spec.ncpus = 1;
	devs[3].base = 0xfffffff0ull;
	assert_int_equal(x86_acpi_build(&f->gm, &f->spec, &f->err), -1);
	assert_non_null(strstr(f->err.msg, "device 3"));
	fixture_free(f);
}

/* ---- the MP table (Intel MultiProcessor Specification 1.4, chapter 4) ---- */

/* The floating pointer at 0x9fc00: "_MP_", the configuration table right
 * after it (0x9fc10), length 1 (x 16 bytes), revision 4, no default
 * configuration, no IMCR (virtual wire mode). Checksum: the other bytes sum
 * to 0x5f+0x4d+0x50+0x5f + 0x10+0xfc+0x09 + 1 + 4 = 629 = 0x275, so 0x8b. */
/* clang-format off: one line per field or entry */
static const uint8_t mpf_bytes[16] = {
    '_', 'M', 'P', '_', 0x10, 0xfc, 0x09, 0x00, 0x01, 0x04, 0x8b, 0, 0, 0, 0, 0,
};
/* clang-format on */

/* The configuration table for one vCPU and nitro_devs, up to its first I/O
 * interrupt entry. Header: "PCMP", length 0x120 (44 + 20 + 8 + 8 + 24 x 8 +
 * 2 x 8), revision 4, checksum, OEM "NECTL   ", product "NECTLVM     ", no
 * OEM table, 29 entries (1 + 1 + 1 + 24 + 2), local APIC at 0xfee00000, no
 * extended table. The checksum: header 304 + 33 + 4 + 470 + 697 + 29 + 478
 * = 2015, processor 32, bus 318, I/O APIC 467, I/O interrupts 24 x 4 + 2 x
 * 276 + 2 x 0x0d = 674, local interrupts 262 + 261: 4029 = 0xfbd, so 0x43. */
/* clang-format off: one line per field or entry */
static const uint8_t mpc_one_cpu_head[44 + 20 + 8 + 8] = {
    'P',
    'C',
    'M',
    'P',
    0x20,
    0x01,
    0x04,
    0x43,
    'N',
    'E',
    'C',
    'T',
    'L',
    ' ',
    ' ',
    ' ',
    'N',
    'E',
    'C',
    'T',
    'L',
    'V',
    'M',
    ' ',
    ' ',
    ' ',
    ' ',
    ' ',
    0,
    0,
    0,
    0,
    0,
    0,
    29,
    0,
    0x00,
    0x00,
    0xe0,
    0xfe,
    0,
    0,
    0,
    0,
    /* processor: APIC id 0, version 0x14, enabled + BSP, family 6, FPU + APIC */
    0x00,
    0x00,
    0x14,
    0x03,
    0x00,
    0x06,
    0x00,
    0x00,
    0x01,
    0x02,
    0x00,
    0x00,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    /* bus 0: ISA */
    0x01,
    0x00,
    'I',
    'S',
    'A',
    ' ',
    ' ',
    ' ',
    /* I/O APIC id 1 (after the CPUs), version 0x11, enabled, 0xfec00000 */
    0x02,
    0x01,
    0x11,
    0x01,
    0x00,
    0x00,
    0xc0,
    0xfe,
};
/* clang-format on */

/* The two local interrupt entries that end the table: ExtINT on LINT0 and
 * NMI on LINT1 of every local APIC (0xff), the spec's default configuration. */
/* clang-format off: one line per field or entry */
static const uint8_t mpc_lint[16] = {
    0x04, 0x03, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0xff, 0x01,
};
/* clang-format on */

static uint8_t sum8(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* ISA IRQ i -> I/O APIC pin i; the virtio-mmio lines (5, 6) level-triggered
 * active high (flags 0x0d), which the devices' held-high line relies on;
 * everything else, COM1's IRQ 4 included, the ISA default (0). */
static void check_intsrc(const uint8_t *e, unsigned ioapic)
{
	for (unsigned i = 0; i < 24; i++, e += 8) {
		uint8_t want[8] = {0x03,      0x00, 0x00, 0x00, 0x00, (uint8_t)i, (uint8_t)ioapic,
				   (uint8_t)i};

		if (i == 5 || i == 6)
			want[2] = 0x0d;
		if (memcmp(e, want, 8))
			fail_msg("I/O interrupt entry %u: %02x %02x %02x %02x %02x %02x %02x %02x",
				 i, e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]);
	}
}

static void test_mptable_one_cpu(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	const uint8_t *mpc;

	f->spec.ncpus = 1;
	assert_int_equal(setup(f), 0);
	assert_memory_equal(gpa(f, X86_MPTABLE_GPA, 16), mpf_bytes, 16);
	mpc = gpa(f, X86_MPTABLE_GPA + 16, 0x120);
	assert_memory_equal(mpc, mpc_one_cpu_head, sizeof(mpc_one_cpu_head));
	check_intsrc(mpc + sizeof(mpc_one_cpu_head), 1);
	assert_memory_equal(mpc + 0x120 - 16, mpc_lint, 16);
	assert_int_equal(sum8(mpc, 0x120), 0);
	/* Nothing after it. */
	for (unsigned i = 0x130; i < X86_MPTABLE_MAX; i++)
		assert_int_equal(*gpa(f, X86_MPTABLE_GPA + i, 1), 0);
	fixture_free(f);
}

/* Two vCPUs: 20 bytes and one entry more (0x134, 30), the second CPU enabled
 * but not the BSP, the I/O APIC's id 2. The checksum: 4029 + 20 (length) + 1
 * (count) + 31 (processor 1) + 1 (I/O APIC id) + 24 (its id in 24 entries) =
 * 4106 = 0x100a, so 0xf6. Written with ACPI too, as Firecracker does. */
static void test_mptable_two_cpus(void **state)
{
	static const uint8_t cpu1[20] = {0x00, 0x01, 0x14, 0x01, 0x00, 0x06,
					 0x00, 0x00, 0x01, 0x02, 0x00, 0x00};
	static const uint8_t ioapic[8] = {0x02, 0x02, 0x11, 0x01, 0x00, 0x00, 0xc0, 0xfe};

	for (int acpi = 0; acpi < 2; acpi++) {
		struct fixture *f = fixture_new(256 * MIB, 0);
		const uint8_t *mpc;

		f->spec.acpi = acpi;
		assert_int_equal(setup(f), 0);
		assert_memory_equal(gpa(f, X86_MPTABLE_GPA, 16), mpf_bytes, 16);
		mpc = gpa(f, X86_MPTABLE_GPA + 16, 0x134);
		assert_memory_equal(mpc, "PCMP", 4);
		assert_int_equal(le16_get(mpc + 4), 0x134);
		assert_int_equal(mpc[7], 0xf6);
		assert_int_equal(le16_get(mpc + 34), 30);
		assert_memory_equal(mpc + 44, mpc_one_cpu_head + 44, 20);
		assert_memory_equal(mpc + 64, cpu1, 20);
		assert_memory_equal(mpc + 84, mpc_one_cpu_head + 64, 8);
		assert_memory_equal(mpc + 92, ioapic, 8);
		check_intsrc(mpc + 100, 2);
		assert_memory_equal(mpc + 0x134 - 16, mpc_lint, 16);
		assert_int_equal(sum8(mpc, 0x134), 0);
		fixture_free(f);
	}
}

/* The most vCPUs: the table runs past 640 KiB into the reserved legacy area
 * and stays inside X86_MPTABLE_MAX; the I/O APIC's id is 240. */
static void test_mptable_max_cpus(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	uint32_t len = 44 + 240 * 20 + 8 + 8 + 24 * 8 + 16;
	const uint8_t *mpc;

	f->spec.ncpus = 240;
	assert_int_equal(setup(f), 0);
	mpc = gpa(f, X86_MPTABLE_GPA + 16, len);
	assert_true(16 + len <= X86_MPTABLE_MAX);
	assert_int_equal(le16_get(mpc + 4), len);
	assert_int_equal(le16_get(mpc + 34), 240 + 28);
	assert_int_equal(mpc[44 + 239 * 20 + 1], 239);
	assert_int_equal(mpc[44 + 239 * 20 + 3], 1);
	assert_int_equal(mpc[44 + 240 * 20 + 8 + 1], 240);
	assert_int_equal(sum8(mpc, len), 0);
	fixture_free(f);
}

/* A device line the I/O APIC does not have is refused before anything is
 * written. */
static void test_mptable_bad_irq(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	struct x86_mmio_dev devs[2] = {nitro_devs[0], nitro_devs[1]};

	devs[1].irq = 24;
	f->spec.devs = devs;
	assert_int_equal(setup(f), -1);
	assert_int_equal(f->err.kind, NECTL_ERR_INVALID_ARG);
	assert_non_null(strstr(f->err.msg, "IRQ 24"));
	assert_int_equal(*gpa(f, X86_MPTABLE_GPA, 1), 0);
	assert_int_equal(le32_get(gpa(f, X86_KERNEL_GPA, 4)), 0);
	fixture_free(f);
}

/* Without ACPI (the default, as on Nitro) the kernel finds no RSDP: none
 * passed in boot_params, and none where it scans (the EBDA's first KiB and
 * 0xe0000..0xfffff). */
static void test_acpi_off(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	const uint8_t *area;

	/* Whatever was there before is cleared. */
	memset(gpa(f, X86_ACPI_GPA, X86_ACPI_MAX), 0xa5, X86_ACPI_MAX);
	assert_int_equal(setup(f), 0);
	assert_int_equal(le64_get(gpa(f, X86_BOOT_PARAMS_GPA, 4096) + 0x070), 0);
	area = gpa(f, X86_ACPI_GPA, X86_ACPI_MAX);
	for (size_t i = 0; i < X86_ACPI_MAX; i++)
		if (area[i])
			fail_msg("ACPI area byte 0x%zx is 0x%02x", i, area[i]);
	assert_int_equal(count(gpa(f, 0xe0000, 0x20000), 0x20000, "RSD PTR ", 8), 0);
	assert_int_equal(count(gpa(f, X86_MPTABLE_GPA, 0x400), 0x400, "RSD PTR ", 8), 0);
	fixture_free(f);
}

/* The devices the hypervisor appends, exactly, and only those that exist. */
static void test_cmdline_devices(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	static const char want[] = "console=ttyS0 reboot=k" NITRO_DEVS_CMDLINE;
	char one[64];

	assert_int_equal(setup(f), 0);
	assert_memory_equal(gpa(f, X86_CMDLINE_GPA, sizeof(want)), want, sizeof(want));
	f->spec.ndevs = 1;
	assert_int_equal(setup(f), 0);
	assert_string_equal((const char *)gpa(f, X86_CMDLINE_GPA, 128),
			    "console=ttyS0 reboot=k virtio_mmio.device=4K@0xd0000000:5");
	/* One entry alone, as the machine quotes it in its errors. */
	assert_int_equal(x86_mmio_dev_cmdline(&nitro_devs[1], one, sizeof(one)), 34);
	assert_string_equal(one, "virtio_mmio.device=4K@0xd0001000:6");
	fixture_free(f);
}

/* cmdline_size counts the appended entries too: exactly full boots; one byte
 * over is refused, saying the appended entries did it. */
static void test_cmdline_overflow(void **state)
{
	struct fixture *f = fixture_new(256 * MIB, 0);
	uint32_t total = (uint32_t)strlen("console=ttyS0 reboot=k" NITRO_DEVS_CMDLINE);

	le32_put(f->img + 0x238, total);
	assert_int_equal(setup(f), 0);
	le32_put(f->img + 0x238, total - 1);
	assert_int_equal(setup(f), -1);
	assert_int_equal(f->err.kind, NECTL_ERR_EIF);
	if (!strstr(f->err.msg, "virtio_mmio.device=") || !strstr(f->err.msg, "cmdline_size") ||
	    !strstr(f->err.msg, "appends"))
		fail_msg("%s", f->err.msg);
	fixture_free(f);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!fp)
		return NULL;
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n > 0);
	rewind(fp);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void test_debian_kernel(void **state)
{
	size_t len = 0;
	uint8_t *k = slurp(DEBIAN_VMLINUZ, &len);
	struct fixture *f;
	const uint8_t *bp;
	uint32_t setup_len, init_size;

	if (!k)
		skip();
	f = fixture_new(512 * MIB, 0);
	f->spec.bzimage = k;
	f->spec.bzimage_len = len;
	f->spec.initrd_gpa = 256 * MIB;
	if (setup(f))
		fail_msg("%s", f->err.msg);
	bp = gpa(f, X86_BOOT_PARAMS_GPA, 4096);
	assert_memory_equal(bp + 0x202, "HdrS", 4);
	assert_true(le16_get(bp + 0x206) >= 0x020f);
	assert_true(le16_get(bp + 0x236) & 1);
	assert_int_equal(bp[0x234], 1);
	setup_len = ((bp[0x1f1] ? bp[0x1f1] : 4) + 1) * 512;
	init_size = le32_get(bp + 0x260);
	assert_true(init_size >= len - setup_len);
	assert_true(le64_get(bp + 0x258) + init_size < 256 * MIB);
	assert_memory_equal(gpa(f, X86_KERNEL_GPA, len - setup_len), k + setup_len,
			    len - setup_len);
	print_message("debian: protocol %x, setup %u, pm %zu, init_size 0x%x, pref 0x%llx\n",
		      le16_get(bp + 0x206), setup_len, len - setup_len, init_size,
		      (unsigned long long)le64_get(bp + 0x258));
	fixture_free(f);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_zero_page),	     cmocka_unit_test(test_regions_meet),
	    cmocka_unit_test(test_gdt_pt_regs),	     cmocka_unit_test(test_two_regions),
	    cmocka_unit_test(test_malformed),	     cmocka_unit_test(test_acpi_tables),
	    cmocka_unit_test(test_dsdt_bytes),	     cmocka_unit_test(test_acpi_many),
	    cmocka_unit_test(test_mptable_one_cpu),  cmocka_unit_test(test_mptable_two_cpus),
	    cmocka_unit_test(test_mptable_max_cpus), cmocka_unit_test(test_mptable_bad_irq),
	    cmocka_unit_test(test_acpi_off),	     cmocka_unit_test(test_cmdline_devices),
	    cmocka_unit_test(test_cmdline_overflow), cmocka_unit_test(test_debian_kernel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
