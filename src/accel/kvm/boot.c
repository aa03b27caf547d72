/* Linux x86 64-bit boot (Documentation/arch/x86/boot.rst): the bzImage's
 * protected-mode kernel at 1 MiB, boot_params ("zero page"), a flat GDT and
 * identity page tables, entered at load address + 0x200 in long mode. The
 * bzImage is the EIF's kernel section, read from guest memory: every header
 * field is validated before it sizes or places anything. In the Nitro
 * hypervisor's role, the cmdline is the EIF's with the virtio-mmio devices
 * appended, and the firmware tables are the MP table (ACPI only on request). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "nectl/x86boot.h"
#include "util/le.h"

/* Setup header offsets in the bzImage (and, from 0x1f1, in boot_params). */
#define HDR_SETUP_SECTS	     0x1f1
#define HDR_BOOT_FLAG	     0x1fe
#define HDR_JUMP_LEN	     0x201
#define HDR_MAGIC	     0x202
#define HDR_VERSION	     0x206
#define HDR_TYPE_OF_LOADER   0x210
#define HDR_LOADFLAGS	     0x211
#define HDR_CODE32_START     0x214
#define HDR_RAMDISK_IMAGE    0x218
#define HDR_RAMDISK_SIZE     0x21c
#define HDR_CMD_LINE_PTR     0x228
#define HDR_INITRD_ADDR_MAX  0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE	     0x234
#define HDR_XLOADFLAGS	     0x236
#define HDR_CMDLINE_SIZE     0x238
#define HDR_PREF_ADDRESS     0x258
#define HDR_INIT_SIZE	     0x260
#define HDR_MIN_END	     0x264 /* through init_size: every 2.12 header has it */
#define HDR_MAX_END	     0x290 /* boot_params' edd_mbr_sig_buffer follows */

#define BOOT_FLAG_MAGIC		   0xaa55
#define HDRS_MAGIC		   0x53726448u /* "HdrS" */
#define BOOT_PROTO_MIN		   0x020c
#define LOADED_HIGH		   0x01
#define XLF_KERNEL_64		   0x01
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x02
#define SECTOR			   512
#define ENTRY64_OFFSET		   0x200
#define ALIGN_MAX		   0x40000000u /* 1 GiB: anything larger is nonsense */

/* boot_params offsets outside the setup header. */
#define BP_SIZE		     4096
#define BP_ACPI_RSDP_ADDR    0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES	     0x1e8
#define BP_E820_TABLE	     0x2d0
#define E820_MAX	     128
#define E820_ENTRY_LEN	     20
#define E820_RAM	     1
#define E820_RESERVED	     2

/* GDT: Linux wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18. */
#define GDT_ENTRIES 4
#define GDT_CODE64  0x00af9b000000ffffull /* G, L, P, DPL 0, code exec/read, accessed */
#define GDT_DATA    0x00cf93000000ffffull /* G, D/B, P, DPL 0, data read/write, accessed */
#define BOOT_CS	    0x10
#define BOOT_DS	    0x18

#define PAGE	 0x1000ull
#define PDPT_GPA (X86_PML4_GPA + PAGE)
#define PD_GPA	 (X86_PML4_GPA + 2 * PAGE)
#define PD_COUNT 4 /* 4 x 1 GiB of 2 MiB pages: the low 4 GiB */
#define PT_PAGES (2 + PD_COUNT)
#define PTE_P	 0x1ull
#define PTE_RW	 0x2ull
#define PTE_PS	 0x80ull
#define MIB2	 0x200000ull
#define GIB	 0x40000000ull

#define BOOT_STACK   0x8ff0ull	     /* in the reserved page below the PML4 */
#define LEGACY_START X86_MPTABLE_GPA /* MP table, VGA hole, BIOS area incl. ACPI */
#define LEGACY_END   0x100000ull

#define CR0_PE		0x1ull
#define CR0_ET		0x10ull
#define CR0_NE		0x20ull
#define CR0_WP		0x10000ull
#define CR0_PG		0x80000000ull
#define CR4_PAE		0x20ull
#define EFER_LME	0x100ull
#define EFER_LMA	0x400ull
#define RFLAGS_RESERVED 0x2ull /* bit 1 is always set; IF clear */

#define X86_MAX_CPUS 240

/* The validated facts the rest of the setup relies on. */
struct bzhdr {
	size_t setup_len; /* real-mode part: (setup_sects + 1) * 512 */
	size_t hdr_end;	  /* end of the setup header in the image */
	size_t pm_len;	  /* the protected-mode kernel after it */
	uint16_t version;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint64_t area_end; /* end of what the kernel may use before it reads e820 */
};

struct e820 {
	uint64_t addr, size;
	uint32_t type;
};

static int bad(struct nectl_err *err, const char *what)
{
	return nectl_err_set(err, NECTL_ERR_EIF, "bzImage: %s", what);
}

/* Magic numbers, protocol version and the 64-bit entry point. */
static int hdr_check_ident(const uint8_t *k, size_t len, struct bzhdr *h, struct nectl_err *err)
{
	if (len < HDR_MIN_END)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "bzImage: image too short (%zu bytes) for a setup header",
				     len);
	if (le16_get(k + HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC)
		return nectl_err_set(err, NECTL_ERR_EIF, "bzImage: boot_flag 0x%04x is not 0xaa55",
				     le16_get(k + HDR_BOOT_FLAG));
	if (le32_get(k + HDR_MAGIC) != HDRS_MAGIC)
		return bad(err, "header magic is not \"HdrS\"");
	h->version = le16_get(k + HDR_VERSION);
	if (h->version < BOOT_PROTO_MIN)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "bzImage: boot protocol version %u.%02u is older than 2.12",
				     h->version >> 8, h->version & 0xff);
	h->xloadflags = le16_get(k + HDR_XLOADFLAGS);
	if (!(h->xloadflags & XLF_KERNEL_64))
		return bad(err, "xloadflags lacks XLF_KERNEL_64 (no 64-bit entry point)");
	if (!(k[HDR_LOADFLAGS] & LOADED_HIGH))
		return bad(err, "loadflags lacks LOADED_HIGH (not a bzImage)");
	return 0;
}

/* Where the setup header and the protected-mode kernel lie in the image. */
static int hdr_check_layout(const uint8_t *k, size_t len, struct bzhdr *h, struct nectl_err *err)
{
	unsigned sects = k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4;

	h->setup_len = ((size_t)sects + 1) * SECTOR;
	if (h->setup_len >= len)
		return nectl_err_set(
		    err, NECTL_ERR_EIF,
		    "bzImage: setup_sects %u puts the kernel beyond the image (%zu bytes)", sects,
		    len);
	h->pm_len = len - h->setup_len;
	h->hdr_end = (size_t)HDR_MAGIC + k[HDR_JUMP_LEN];
	if (h->hdr_end < HDR_MIN_END || h->hdr_end > h->setup_len)
		return nectl_err_set(
		    err, NECTL_ERR_EIF,
		    "bzImage: setup header end 0x%zx (jump at 0x200) is out of range", h->hdr_end);
	if (h->hdr_end > HDR_MAX_END)
		h->hdr_end = HDR_MAX_END; /* newer fields we neither know nor need */
	h->cmdline_size = le32_get(k + HDR_CMDLINE_SIZE);
	h->initrd_addr_max = le32_get(k + HDR_INITRD_ADDR_MAX);
	return 0;
}

/* Where the kernel runs: a relocatable kernel aligns its load address up to
 * kernel_alignment but never below pref_address (LOAD_PHYSICAL_ADDR); any
 * other runs at pref_address. It needs init_size bytes from there. */
static int hdr_check_area(const uint8_t *k, struct bzhdr *h, struct nectl_err *err)
{
	uint32_t align = le32_get(k + HDR_KERNEL_ALIGNMENT);
	uint64_t pref = le64_get(k + HDR_PREF_ADDRESS);
	uint32_t init_size = le32_get(k + HDR_INIT_SIZE);
	uint64_t run;

	if (pref >= X86_LOW_RAM_END)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "bzImage: pref_address 0x%llx is above 3 GiB",
				     (unsigned long long)pref);
	if (k[HDR_RELOCATABLE]) {
		if (align < PAGE || align > ALIGN_MAX || (align & (align - 1)))
			return nectl_err_set(err, NECTL_ERR_EIF,
					     "bzImage: kernel_alignment 0x%x is not a power of two "
					     "in [4 KiB, 1 GiB]",
					     align);
		run = (X86_KERNEL_GPA + align - 1) & ~(uint64_t)(align - 1);
		if (run < pref)
			run = pref;
	} else {
		if (pref < X86_KERNEL_GPA)
			return nectl_err_set(err, NECTL_ERR_EIF,
					     "bzImage: pref_address 0x%llx of a non-relocatable "
					     "kernel is below 1 MiB",
					     (unsigned long long)pref);
		run = pref;
	}
	if (!init_size)
		return bad(err, "init_size is 0");
	h->area_end = run + init_size;
	if (h->area_end < X86_KERNEL_GPA + h->pm_len)
		h->area_end = X86_KERNEL_GPA + h->pm_len;
	if (h->area_end > X86_LOW_RAM_END)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "bzImage: init_size 0x%x at 0x%llx reaches beyond 3 GiB",
				     init_size, (unsigned long long)run);
	return 0;
}

static int hdr_parse(const struct x86_boot_spec *spec, struct bzhdr *h, struct nectl_err *err)
{
	if (!spec->bzimage)
		return bad(err, "no image");
	if (hdr_check_ident(spec->bzimage, spec->bzimage_len, h, err) ||
	    hdr_check_layout(spec->bzimage, spec->bzimage_len, h, err) ||
	    hdr_check_area(spec->bzimage, h, err))
		return -1;
	return 0;
}

static int check_memory(const struct guestmem *gm, const struct bzhdr *h, struct nectl_err *err)
{
	/* The boot structures are written there in place: one region. */
	if (!guestmem_ptr(gm, 0, LEGACY_END))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "guest memory does not start with 1 MiB of RAM at 0 "
				     "in one region");
	/* The kernel is copied piece by piece: it may span regions. */
	if (guestmem_span(gm, X86_KERNEL_GPA, h->area_end - X86_KERNEL_GPA, NULL, NULL) < 0)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "bzImage: init_size area up to 0x%llx exceeds guest memory",
				     (unsigned long long)h->area_end);
	return 0;
}

/* As the Nitro hypervisor writes it (the seed's boot log of a real enclave:
 * "virtio_mmio.device=4K@0xd0000000:5"); Linux reads the size with memparse. */
int x86_mmio_dev_cmdline(const struct x86_mmio_dev *d, char *out, size_t len)
{
	if (d->size && d->size % 1024 == 0)
		return snprintf(out, len, "virtio_mmio.device=%" PRIu32 "K@0x%" PRIx64 ":%u",
				d->size / 1024, d->base, d->irq);
	return snprintf(out, len, "virtio_mmio.device=%" PRIu32 "@0x%" PRIx64 ":%u", d->size,
			d->base, d->irq);
}

/* The EIF's cmdline, then a space and an entry per device: the Nitro
 * hypervisor announces its devices this way, appended to what the EIF
 * says. Writes at most X86_CMDLINE_MAX bytes to dst (NULL: only counts);
 * returns the length, without the NUL. */
static size_t cmdline_compose(char *dst, const char *eif, const struct x86_boot_spec *spec)
{
	size_t n = strnlen(eif, X86_CMDLINE_MAX);

	if (dst)
		memcpy(dst, eif, n);
	for (unsigned i = 0; i < spec->ndevs; i++) {
		char entry[80];
		int len = x86_mmio_dev_cmdline(&spec->devs[i], entry, sizeof(entry));
		size_t sep = n ? 1 : 0;

		if (len < 0 || (size_t)len >= sizeof(entry) || n + sep + len >= X86_CMDLINE_MAX)
			return X86_CMDLINE_MAX;
		if (dst) {
			if (sep)
				dst[n] = ' ';
			memcpy(dst + n + sep, entry, (size_t)len);
		}
		n += sep + (size_t)len;
	}
	return n;
}

/* cmdline_size (which excludes the terminating NUL) bounds what the kernel
 * reads: the EIF's cmdline and the appended entries together. */
static int check_cmdline(const char *cmdline, const struct x86_boot_spec *spec,
			 const struct bzhdr *h, struct nectl_err *err)
{
	size_t n = strnlen(cmdline, X86_CMDLINE_MAX), all;

	if (n >= X86_CMDLINE_MAX)
		return nectl_err_set(err, NECTL_ERR_EIF, "cmdline: longer than %llu bytes",
				     (unsigned long long)X86_CMDLINE_MAX - 1);
	if (n > h->cmdline_size)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "cmdline: %zu bytes exceed the kernel's cmdline_size %u", n,
				     h->cmdline_size);
	all = cmdline_compose(NULL, cmdline, spec);
	if (all >= X86_CMDLINE_MAX || all > h->cmdline_size)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "cmdline: the EIF's %zu bytes and the %u virtio_mmio.device= "
				     "entries the hypervisor appends (%zu bytes in all) exceed the "
				     "kernel's cmdline_size %u",
				     n, spec->ndevs, all, h->cmdline_size);
	return 0;
}

static int check_initrd(const struct guestmem *gm, const struct x86_boot_spec *spec,
			const struct bzhdr *h, struct nectl_err *err)
{
	uint64_t gpa = spec->initrd_gpa, len = spec->initrd_len;

	if (!len)
		return 0;
	if (guestmem_span(gm, gpa, len, NULL, NULL) < 0)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "initrd: 0x%llx+0x%llx is outside guest memory",
				     (unsigned long long)gpa, (unsigned long long)len);
	/* Everything below area_end is boot structures or the kernel's. */
	if (gpa < h->area_end)
		return nectl_err_set(
		    err, NECTL_ERR_EIF,
		    "initrd: at 0x%llx overlaps the kernel's init_size area (to 0x%llx)",
		    (unsigned long long)gpa, (unsigned long long)h->area_end);
	if (!(h->xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) && gpa + len - 1 > h->initrd_addr_max)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "initrd: ends above the kernel's initrd_addr_max 0x%x",
				     h->initrd_addr_max);
	return 0;
}

static void e820_add(struct e820 *t, unsigned *n, uint64_t addr, uint64_t size, uint32_t type)
{
	unsigned i = *n;

	if (!size || *n >= E820_MAX)
		return;
	/* Insertion keeps the table sorted by address. */
	while (i > 0 && t[i - 1].addr > addr) {
		t[i] = t[i - 1];
		i--;
	}
	t[i] = (struct e820){addr, size, type};
	(*n)++;
}

/* The pages nectl's boot structures occupy, plus the legacy area, sorted. */
#define BOOT_AREA_END (X86_PML4_GPA + PT_PAGES * PAGE)
static const struct e820 reserved[] = {
    {0, PAGE, E820_RESERVED}, /* real-mode IVT, GDT */
    /* zero page, stack, page tables */
    {X86_BOOT_PARAMS_GPA, BOOT_AREA_END - X86_BOOT_PARAMS_GPA, E820_RESERVED},
    {X86_CMDLINE_GPA, X86_CMDLINE_MAX, E820_RESERVED},
    {LEGACY_START, LEGACY_END - LEGACY_START, E820_RESERVED}, /* MP table, ACPI */
};

#define NRESERVED (sizeof(reserved) / sizeof(reserved[0]))

/* One region's RAM, minus the reserved ranges. */
static void e820_region(struct e820 *t, unsigned *n, const struct guestmem_region *r)
{
	uint64_t cur = r->gpa, end = r->gpa + r->size;

	for (size_t i = 0; i < NRESERVED && cur < end; i++) {
		uint64_t rs = reserved[i].addr, re = rs + reserved[i].size;

		if (re <= cur)
			continue;
		if (rs >= end)
			break;
		if (rs > cur)
			e820_add(t, n, cur, rs - cur, E820_RAM);
		cur = re;
	}
	if (cur < end)
		e820_add(t, n, cur, end - cur, E820_RAM);
}

/* Regions adjacent in guest physical memory are one range of RAM to the
 * guest (donated memory comes in several): merged into one entry. */
static unsigned e820_merge(struct e820 *t, unsigned n)
{
	unsigned out = 0;

	for (unsigned i = 0; i < n; i++) {
		struct e820 *last = out ? &t[out - 1] : NULL;

		if (last && last->type == t[i].type && last->addr + last->size == t[i].addr)
			last->size += t[i].size;
		else
			t[out++] = t[i];
	}
	return out;
}

static unsigned e820_build(const struct guestmem *gm, struct e820 *t)
{
	unsigned n = 0;

	for (size_t i = 0; i < NRESERVED; i++)
		e820_add(t, &n, reserved[i].addr, reserved[i].size, reserved[i].type);
	for (unsigned i = 0; i < gm->n && i < GUESTMEM_MAX_REGIONS; i++)
		e820_region(t, &n, &gm->r[i]);
	return e820_merge(t, n);
}

static void bp_e820(uint8_t *bp, const struct guestmem *gm)
{
	struct e820 t[E820_MAX];
	unsigned n = e820_build(gm, t);

	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * E820_ENTRY_LEN;

		le64_put(e, t[i].addr);
		le64_put(e + 8, t[i].size);
		le32_put(e + 16, t[i].type);
	}
}

static void bp_fill(uint8_t *bp, const struct guestmem *gm, const struct x86_boot_spec *spec)
{
	uint64_t initrd = spec->initrd_len ? spec->initrd_gpa : 0;

	bp[HDR_TYPE_OF_LOADER] = 0xff; /* undefined loader */
	le32_put(bp + HDR_CODE32_START, (uint32_t)X86_KERNEL_GPA);
	le32_put(bp + HDR_RAMDISK_IMAGE, (uint32_t)initrd);
	le32_put(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd >> 32));
	le32_put(bp + HDR_RAMDISK_SIZE, (uint32_t)spec->initrd_len);
	le32_put(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(spec->initrd_len >> 32));
	le32_put(bp + HDR_CMD_LINE_PTR, (uint32_t)X86_CMDLINE_GPA);
	le32_put(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(X86_CMDLINE_GPA >> 32));
	/* Without ACPI (Nitro's machine) there is no RSDP to point at. */
	le64_put(bp + BP_ACPI_RSDP_ADDR, spec->acpi ? X86_ACPI_GPA : 0);
	bp_e820(bp, gm);
}

static void write_gdt(uint8_t *g)
{
	static const uint64_t gdt[GDT_ENTRIES] = {0, 0, GDT_CODE64, GDT_DATA};

	for (unsigned i = 0; i < GDT_ENTRIES; i++)
		le64_put(g + 8 * i, gdt[i]);
}

/* PML4[0] -> PDPT; PDPT[0..3] -> PD 0..3; each PD maps 1 GiB in 2 MiB pages. */
static void write_page_tables(uint8_t *pt)
{
	memset(pt, 0, PT_PAGES * PAGE);
	le64_put(pt, PDPT_GPA | PTE_P | PTE_RW);
	for (unsigned i = 0; i < PD_COUNT; i++) {
		uint8_t *pd = pt + (2 + i) * PAGE;

		le64_put(pt + PAGE + 8 * i, (PD_GPA + i * PAGE) | PTE_P | PTE_RW);
		for (unsigned j = 0; j < 512; j++)
			le64_put(pd + 8 * j, (i * GIB + j * MIB2) | PTE_P | PTE_RW | PTE_PS);
	}
}

static void fill_regs(struct x86_boot_regs *regs)
{
	memset(regs, 0, sizeof(*regs));
	regs->rip = X86_KERNEL_GPA + ENTRY64_OFFSET;
	regs->rsi = X86_BOOT_PARAMS_GPA;
	regs->rsp = BOOT_STACK;
	regs->rflags = RFLAGS_RESERVED;
	regs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	regs->cr3 = X86_PML4_GPA;
	regs->cr4 = CR4_PAE;
	regs->efer = EFER_LME | EFER_LMA;
	regs->gdt_base = X86_GDT_GPA;
	regs->gdt_limit = GDT_ENTRIES * 8 - 1;
	regs->cs_sel = BOOT_CS;
	regs->ds_sel = BOOT_DS;
}

static int validate(const struct guestmem *gm, const struct x86_boot_spec *spec, struct bzhdr *h,
		    struct nectl_err *err)
{
	if (spec->ncpus < 1 || spec->ncpus > X86_MAX_CPUS)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "%u vCPUs (1..%u supported)",
				     spec->ncpus, X86_MAX_CPUS);
	if (hdr_parse(spec, h, err) || check_memory(gm, h, err) ||
	    check_cmdline(spec->cmdline ? spec->cmdline : "", spec, h, err) ||
	    check_initrd(gm, spec, h, err))
		return -1;
	return 0;
}

/* Nitro's machine has none; the option's tables, or a zeroed area, so that
 * the kernel's RSDP scan of 0xe0000..0xfffff finds nothing. */
static int write_acpi(const struct guestmem *gm, const struct x86_boot_spec *spec,
		      struct nectl_err *err)
{
	uint8_t *area;

	if (spec->acpi)
		return x86_acpi_build(gm, spec, err);
	area = guestmem_ptr(gm, X86_ACPI_GPA, X86_ACPI_MAX);
	if (area)
		memset(area, 0, X86_ACPI_MAX);
	return 0;
}

/* All checks come first; the setup header is copied out before the kernel is
 * moved, since the image may itself lie in guest memory we are about to use. */
int x86_boot_setup(const struct guestmem *gm, const struct x86_boot_spec *spec,
		   struct x86_boot_regs *regs, struct nectl_err *err)
{
	const char *cmdline = spec->cmdline ? spec->cmdline : "";
	uint8_t bp[BP_SIZE];
	struct bzhdr h = {0};

	/* The MP table checks its own input before it writes anything. */
	if (validate(gm, spec, &h, err) || x86_mptable_build(gm, spec, err))
		return -1;
	memset(bp, 0, sizeof(bp));
	memcpy(bp + HDR_SETUP_SECTS, spec->bzimage + HDR_SETUP_SECTS, h.hdr_end - HDR_SETUP_SECTS);
	guestmem_write_span(gm, X86_KERNEL_GPA, spec->bzimage + h.setup_len, h.pm_len);
	bp_fill(bp, gm, spec);
	memcpy(guestmem_ptr(gm, X86_BOOT_PARAMS_GPA, BP_SIZE), bp, BP_SIZE);
	memset(guestmem_ptr(gm, X86_CMDLINE_GPA, X86_CMDLINE_MAX), 0, X86_CMDLINE_MAX);
	cmdline_compose(guestmem_ptr(gm, X86_CMDLINE_GPA, X86_CMDLINE_MAX), cmdline, spec);
	write_gdt(guestmem_ptr(gm, X86_GDT_GPA, GDT_ENTRIES * 8));
	write_page_tables(guestmem_ptr(gm, X86_PML4_GPA, PT_PAGES * PAGE));
	if (write_acpi(gm, spec, err))
		return -1;
	fill_regs(regs);
	return 0;
}
