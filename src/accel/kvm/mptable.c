/* The MP table (Intel MultiProcessor Specification 1.4, chapter 4): how a
 * Linux guest without ACPI finds its CPUs, local APICs, I/O APIC and the
 * wiring of its interrupt lines, as on Nitro, which describes no devices in
 * ACPI. The floating pointer sits in the last KiB of base memory, where Linux
 * scans; the configuration table follows it. The layout is Firecracker's
 * (its x86 mptable module), the IRQ flags are the machine's own: the
 * virtio-mmio devices hold their line high until the guest acknowledges, so
 * their pins must be level-triggered, active high. The area is reserved in
 * the e820 map (boot.c). */
#include <string.h>

#include "nectl/x86boot.h"
#include "util/le.h"

#define MPF_LEN	      16
#define MPC_HDR_LEN   44
#define MPC_CPU_LEN   20
#define MPC_ENTRY_LEN 8 /* bus, I/O APIC, I/O and local interrupt entries */
#define MP_SPEC_REV   4 /* 1.4 */
#define MP_MAX_CPUS   240
#define MPC_LEN(ncpus)                                                                             \
	(MPC_HDR_LEN + MPC_CPU_LEN * (ncpus) + MPC_ENTRY_LEN * (2 + X86_IOAPIC_PINS + 2))

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_INT, MP_NMI, MP_SMI, MP_EXTINT };

#define MP_CPU_ENABLED	 0x01
#define MP_CPU_BSP	 0x02
#define MP_IOAPIC_USABLE 0x01
/* KVM's in-kernel local APIC and I/O APIC report these versions. */
#define LAPIC_VERSION  0x14
#define IOAPIC_VERSION 0x11
/* Only printed by Linux: family 6, and the FPU and APIC feature bits. */
#define CPU_SIGNATURE 0x600
#define CPU_FEATURES  0x201
/* I/O interrupt flags: polarity in bits 1:0, trigger mode in bits 3:2; 0
 * means the bus's default (ISA: edge, active high). */
#define MP_IRQ_ACTIVE_HIGH 0x1
#define MP_IRQ_LEVEL	   0xc
#define MP_ALL_LAPICS	   0xff
#define ISA_BUS		   0

static uint8_t mp_sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

static int mptable_check(const struct guestmem *gm, const struct x86_boot_spec *spec,
			 struct nectl_err *err)
{
	if (spec->ncpus < 1 || spec->ncpus > MP_MAX_CPUS)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "MP table: %u vCPUs (1..%u supported)", spec->ncpus,
				     MP_MAX_CPUS);
	if (spec->ndevs && !spec->devs)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "MP table: no device list");
	for (unsigned i = 0; i < spec->ndevs; i++)
		if (spec->devs[i].irq >= X86_IOAPIC_PINS)
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "MP table: device %u's IRQ %u is not an I/O APIC pin "
					     "(0..%u)",
					     i, spec->devs[i].irq, X86_IOAPIC_PINS - 1);
	if (!guestmem_ptr(gm, X86_MPTABLE_GPA, X86_MPTABLE_MAX))
		return nectl_err_set(
		    err, NECTL_ERR_INVALID_ARG, "MP table: guest memory lacks 0x%llx+0x%llx",
		    (unsigned long long)X86_MPTABLE_GPA, (unsigned long long)X86_MPTABLE_MAX);
	return 0;
}

static void mpf_write(uint8_t *f)
{
	memcpy(f, "_MP_", 4);
	le32_put(f + 4, (uint32_t)(X86_MPTABLE_GPA + MPF_LEN));
	f[8] = 1; /* length in 16-byte units */
	f[9] = MP_SPEC_REV;
	/* Feature bytes stay 0: a configuration table follows (no default
	 * configuration), and no IMCR, so the guest uses virtual wire mode. */
	f[10] = (uint8_t)(0 - mp_sum(f, MPF_LEN));
}

static void mpc_header(uint8_t *t, unsigned ncpus)
{
	memcpy(t, "PCMP", 4);
	le16_put(t + 4, (uint16_t)MPC_LEN(ncpus));
	t[6] = MP_SPEC_REV;
	memcpy(t + 8, "NECTL   ", 8);
	memcpy(t + 16, "NECTLVM     ", 12);
	le16_put(t + 34, (uint16_t)(ncpus + 2 + X86_IOAPIC_PINS + 2));
	le32_put(t + 36, (uint32_t)X86_LAPIC_BASE);
}

static uint8_t *mpc_cpus(uint8_t *e, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++, e += MPC_CPU_LEN) {
		e[0] = MP_PROCESSOR;
		e[1] = (uint8_t)i; /* local APIC id = vCPU index, as KVM sets it */
		e[2] = LAPIC_VERSION;
		e[3] = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0);
		le32_put(e + 4, CPU_SIGNATURE);
		le32_put(e + 8, CPU_FEATURES);
	}
	return e;
}

/* The ISA bus and the I/O APIC, whose id follows the CPUs' (as in the MADT). */
static uint8_t *mpc_bus_ioapic(uint8_t *e, unsigned ioapic)
{
	e[0] = MP_BUS;
	e[1] = ISA_BUS;
	memcpy(e + 2, "ISA   ", 6);
	e += MPC_ENTRY_LEN;
	e[0] = MP_IOAPIC;
	e[1] = (uint8_t)ioapic;
	e[2] = IOAPIC_VERSION;
	e[3] = MP_IOAPIC_USABLE;
	le32_put(e + 4, (uint32_t)X86_IOAPIC_BASE);
	return e + MPC_ENTRY_LEN;
}

static uint16_t mp_irq_flags(const struct x86_boot_spec *spec, unsigned irq)
{
	for (unsigned i = 0; i < spec->ndevs; i++)
		if (spec->devs[i].irq == irq)
			return MP_IRQ_LEVEL | MP_IRQ_ACTIVE_HIGH;
	return 0;
}

/* ISA IRQ i on pin i: KVM's default routing sends GSI i to pin i. */
static uint8_t *mpc_intsrc(uint8_t *e, const struct x86_boot_spec *spec, unsigned ioapic)
{
	for (unsigned i = 0; i < X86_IOAPIC_PINS; i++, e += MPC_ENTRY_LEN) {
		e[0] = MP_INTSRC;
		e[1] = MP_INT;
		le16_put(e + 2, mp_irq_flags(spec, i));
		e[4] = ISA_BUS;
		e[5] = (uint8_t)i;
		e[6] = (uint8_t)ioapic;
		e[7] = (uint8_t)i;
	}
	return e;
}

/* ExtINT on LINT0 and NMI on LINT1 of every local APIC: the spec's default
 * configuration (5.1), which Linux also builds when it has no table. */
static void mpc_lintsrc(uint8_t *e)
{
	static const uint8_t types[2] = {MP_EXTINT, MP_NMI};

	for (unsigned i = 0; i < 2; i++, e += MPC_ENTRY_LEN) {
		e[0] = MP_LINTSRC;
		e[1] = types[i];
		e[4] = ISA_BUS;
		e[6] = MP_ALL_LAPICS;
		e[7] = (uint8_t)i;
	}
}

int x86_mptable_build(const struct guestmem *gm, const struct x86_boot_spec *spec,
		      struct nectl_err *err)
{
	uint8_t *f, *t, *e;

	if (mptable_check(gm, spec, err))
		return -1;
	f = guestmem_ptr(gm, X86_MPTABLE_GPA, X86_MPTABLE_MAX);
	memset(f, 0, X86_MPTABLE_MAX);
	mpf_write(f);
	t = f + MPF_LEN;
	mpc_header(t, spec->ncpus);
	e = mpc_cpus(t + MPC_HDR_LEN, spec->ncpus);
	e = mpc_bus_ioapic(e, spec->ncpus);
	e = mpc_intsrc(e, spec, spec->ncpus);
	mpc_lintsrc(e);
	t[7] = (uint8_t)(0 - mp_sum(t, MPC_LEN(spec->ncpus)));
	return 0;
}
