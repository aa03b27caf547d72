/* ACPI tables for the enclave machine, only with the machine's ACPI option
 * (Nitro has none; they are there for debugging kernels that need them): a
 * hardware-reduced platform (no PM timer, no SCI, no FACS) whose only
 * firmware-described devices are the virtio-mmio transports (LNRO0005, which
 * Linux's virtio_mmio driver binds) and, optionally, the COM1 UART. All
 * tables live in [X86_ACPI_GPA, X86_ACPI_GPA + X86_ACPI_MAX), which the e820
 * map reserves. */
#include <stdio.h>
#include <string.h>

#include "accel/kvm/aml.h"
#include "nectl/pvpanic.h"
#include "nectl/x86boot.h"
#include "util/le.h"

#define ACPI_HDR_LEN	     36
#define RSDP_LEN	     36
#define RSDP_V1_LEN	     20
#define XSDT_ENTRIES	     2
#define FADT_LEN	     276
#define FADT_REVISION	     6
#define FADT_MINOR	     5
#define FADT_X_DSDT	     140
#define FADT_FLAGS	     112
#define FADT_MINOR_OFF	     131
#define FADT_HYPERVISOR_ID   268
#define FADT_SLEEP_CONTROL   244 /* generic address structures, 12 bytes */
#define FADT_SLEEP_STATUS    256
#define FADT_HW_REDUCED_ACPI (1u << 20)
#define MADT_REVISION	     5
#define MADT_LAPIC_LEN	     8
#define MADT_IOAPIC_LEN	     12
#define DSDT_REVISION	     2 /* 64-bit AML integers */
#define X86_MAX_CPUS	     240
#define X86_MAX_DEVS	     256 /* VR00..VRFF */

static uint8_t acpi_sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* The standard description header; length and checksum come last. */
static void acpi_header(uint8_t *t, const char *sig, uint8_t rev)
{
	memcpy(t, sig, 4);
	t[8] = rev;
	memcpy(t + 10, "NECTL ", 6);
	memcpy(t + 16, "NECTLVM ", 8);
	le32_put(t + 24, 1);	   /* OEM revision */
	memcpy(t + 28, "NECT", 4); /* creator id */
	le32_put(t + 32, 1);	   /* creator revision */
}

static void acpi_finish(uint8_t *t, size_t len)
{
	le32_put(t + 4, (uint32_t)len);
	t[9] = 0;
	t[9] = (uint8_t)(0 - acpi_sum(t, len));
}

static size_t align16(size_t off)
{
	return (off + 15) & ~(size_t)15;
}

static size_t acpi_rsdp(uint8_t *t, uint64_t xsdt_gpa)
{
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, "NECTL ", 6);
	t[15] = 2; /* ACPI 2.0+: use the XSDT */
	le32_put(t + 20, RSDP_LEN);
	le64_put(t + 24, xsdt_gpa);
	t[8] = (uint8_t)(0 - acpi_sum(t, RSDP_V1_LEN));
	t[32] = (uint8_t)(0 - acpi_sum(t, RSDP_LEN));
	return RSDP_LEN;
}

static size_t acpi_xsdt(uint8_t *t, uint64_t fadt_gpa, uint64_t madt_gpa)
{
	size_t len = ACPI_HDR_LEN + 8 * XSDT_ENTRIES;

	acpi_header(t, "XSDT", 1);
	le64_put(t + ACPI_HDR_LEN, fadt_gpa);
	le64_put(t + ACPI_HDR_LEN + 8, madt_gpa);
	acpi_finish(t, len);
	return len;
}

/* Hardware-reduced: every fixed-hardware block stays zero, and so do the
 * IA-PC boot arch flags (Linux's reboot=k then still tries the 8042). */
/* A generic address structure for one byte-wide I/O port. */
static void acpi_gas_io8(uint8_t *g, uint16_t port)
{
	g[0] = 1; /* system I/O space */
	g[1] = 8; /* register width in bits */
	g[2] = 0; /* bit offset */
	g[3] = 1; /* byte access */
	le64_put(g + 4, port);
}

static size_t acpi_fadt(uint8_t *t, uint64_t dsdt_gpa)
{
	acpi_header(t, "FACP", FADT_REVISION);
	le32_put(t + FADT_FLAGS, FADT_HW_REDUCED_ACPI);
	t[FADT_MINOR_OFF] = FADT_MINOR;
	le64_put(t + FADT_X_DSDT, dsdt_gpa);
	acpi_gas_io8(t + FADT_SLEEP_CONTROL, X86_ACPI_SLEEP_PORT);
	acpi_gas_io8(t + FADT_SLEEP_STATUS, X86_ACPI_SLEEP_PORT);
	memcpy(t + FADT_HYPERVISOR_ID, "NECTLKVM", 8);
	acpi_finish(t, FADT_LEN);
	return FADT_LEN;
}

static size_t acpi_madt(uint8_t *t, unsigned ncpus)
{
	size_t off = ACPI_HDR_LEN + 8;

	acpi_header(t, "APIC", MADT_REVISION);
	le32_put(t + ACPI_HDR_LEN, (uint32_t)X86_LAPIC_BASE);
	le32_put(t + ACPI_HDR_LEN + 4, 0); /* no PCAT_COMPAT: there is no 8259 */
	for (unsigned i = 0; i < ncpus; i++, off += MADT_LAPIC_LEN) {
		t[off] = 0; /* Processor Local APIC */
		t[off + 1] = MADT_LAPIC_LEN;
		t[off + 2] = (uint8_t)i;  /* ACPI processor UID */
		t[off + 3] = (uint8_t)i;  /* APIC id */
		le32_put(t + off + 4, 1); /* enabled */
	}
	t[off] = 1; /* I/O APIC */
	t[off + 1] = MADT_IOAPIC_LEN;
	t[off + 2] = (uint8_t)ncpus; /* the first id after the CPUs' */
	le32_put(t + off + 4, (uint32_t)X86_IOAPIC_BASE);
	le32_put(t + off + 8, 0); /* GSI base */
	off += MADT_IOAPIC_LEN;
	acpi_finish(t, off);
	return off;
}

static void dsdt_virtio(struct aml *a, unsigned uid, const struct x86_mmio_dev *d)
{
	char seg[5];
	size_t dev, crs;

	snprintf(seg, sizeof(seg), "VR%02X", uid & 0xff);
	dev = aml_device_begin(a, seg);
	aml_name_string(a, "_HID", "LNRO0005");
	aml_name_int(a, "_UID", uid);
	crs = aml_restemplate_begin(a, "_CRS");
	aml_res_mem32_fixed(a, true, (uint32_t)d->base, d->size);
	aml_res_interrupt(a, true, d->irq);
	aml_restemplate_end(a, crs);
	aml_pkg_end(a, dev);
}

static void dsdt_com1(struct aml *a)
{
	size_t dev, crs;

	dev = aml_device_begin(a, "COM1");
	aml_name_eisaid(a, "_HID", "PNP0501");
	aml_name_int(a, "_UID", 0);
	crs = aml_restemplate_begin(a, "_CRS");
	aml_res_io16(a, 0x3f8, 0x3f8, 1, 8);
	aml_res_irq_noflags(a, 4);
	aml_restemplate_end(a, crs);
	aml_pkg_end(a, dev);
}

/* The kernel's panic notifier writes here (nectl/pvpanic.h). */
static void dsdt_pvpanic(struct aml *a)
{
	size_t dev, crs;

	dev = aml_device_begin(a, "PEVT");
	aml_name_string(a, "_HID", PVPANIC_ACPI_HID);
	aml_name_int(a, "_STA", 0xf);
	crs = aml_restemplate_begin(a, "_CRS");
	aml_res_io16(a, PVPANIC_PORT, PVPANIC_PORT, 1, 1);
	aml_restemplate_end(a, crs);
	aml_pkg_end(a, dev);
}

/* Returns the DSDT's length, or 0 when it does not fit in cap bytes. */
static size_t acpi_dsdt(uint8_t *t, size_t cap, const struct x86_boot_spec *spec)
{
	struct aml a;
	size_t sb;

	if (cap < ACPI_HDR_LEN)
		return 0;
	acpi_header(t, "DSDT", DSDT_REVISION);
	aml_init(&a, t + ACPI_HDR_LEN, cap - ACPI_HDR_LEN);
	/* S5 (soft off) is what lets Linux power off through the FADT's
	 * sleep control register. */
	aml_name_package(&a, "_S5_", (const uint64_t[]){X86_ACPI_SLP_TYP_S5, 0, 0, 0}, 4);
	sb = aml_scope_begin(&a, "\\_SB_");
	for (unsigned i = 0; i < spec->ndevs; i++)
		dsdt_virtio(&a, i, &spec->devs[i]);
	if (spec->uart)
		dsdt_com1(&a);
	if (spec->pvpanic)
		dsdt_pvpanic(&a);
	aml_pkg_end(&a, sb);
	if (a.overflow)
		return 0;
	acpi_finish(t, ACPI_HDR_LEN + a.len);
	return ACPI_HDR_LEN + a.len;
}

static int acpi_check_spec(const struct x86_boot_spec *spec, struct nectl_err *err)
{
	if (spec->ncpus < 1 || spec->ncpus > X86_MAX_CPUS)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "ACPI: %u vCPUs (1..%u supported)",
				     spec->ncpus, X86_MAX_CPUS);
	if (spec->ndevs > X86_MAX_DEVS || (spec->ndevs && !spec->devs))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "ACPI: %u devices (at most %u)",
				     spec->ndevs, X86_MAX_DEVS);
	for (unsigned i = 0; i < spec->ndevs; i++) {
		const struct x86_mmio_dev *d = &spec->devs[i];

		/* Memory32Fixed can only describe a window below 4 GiB. */
		if (d->base > UINT32_MAX || d->size > UINT32_MAX - d->base)
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "ACPI: device %u window 0x%llx+0x%x above 4 GiB", i,
					     (unsigned long long)d->base, d->size);
	}
	return 0;
}

int x86_acpi_build(const struct guestmem *gm, const struct x86_boot_spec *spec,
		   struct nectl_err *err)
{
	uint8_t *t = guestmem_ptr(gm, X86_ACPI_GPA, X86_ACPI_MAX);
	size_t xsdt, fadt, madt, dsdt, len;

	if (acpi_check_spec(spec, err))
		return -1;
	if (!t)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "ACPI: guest memory lacks the table area 0x%llx+0x%llx",
				     (unsigned long long)X86_ACPI_GPA,
				     (unsigned long long)X86_ACPI_MAX);
	memset(t, 0, X86_ACPI_MAX);
	xsdt = align16(RSDP_LEN);
	fadt = align16(xsdt + ACPI_HDR_LEN + 8 * XSDT_ENTRIES);
	madt = align16(fadt + FADT_LEN);
	dsdt = align16(madt + ACPI_HDR_LEN + 8 + MADT_LAPIC_LEN * spec->ncpus + MADT_IOAPIC_LEN);
	len = acpi_dsdt(t + dsdt, X86_ACPI_MAX - dsdt, spec);
	if (!len)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "ACPI: DSDT for %u devices exceeds 0x%llx bytes", spec->ndevs,
				     (unsigned long long)X86_ACPI_MAX);
	acpi_madt(t + madt, spec->ncpus);
	acpi_fadt(t + fadt, X86_ACPI_GPA + dsdt);
	acpi_xsdt(t + xsdt, X86_ACPI_GPA + fadt, X86_ACPI_GPA + madt);
	acpi_rsdp(t, X86_ACPI_GPA + xsdt);
	return 0;
}
