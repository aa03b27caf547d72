/* The emulated enclave's x86_64 machine: where things live in guest memory,
 * and the boot structures nectl's hypervisor writes there before the first
 * vCPU runs (Linux 64-bit boot protocol, the cmdline with the devices
 * appended as the Nitro hypervisor does, the MP table, ACPI tables only when
 * asked for). Pure data: nothing here touches KVM, so all of it is
 * unit-tested on fake guest memory. */
#ifndef NECTL_X86BOOT_H
#define NECTL_X86BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/err.h"
#include "nectl/guestmem.h"

/* Guest physical layout. RAM is [0, min(size, 3 GiB)) plus, above 4 GiB, the
 * rest; devices sit in the hole between, as on Nitro. */
#define X86_LOW_RAM_END	    0xc0000000ull
#define X86_HIGH_RAM_START  0x100000000ull
#define X86_IOAPIC_BASE	    0xfec00000ull
#define X86_LAPIC_BASE	    0xfee00000ull
#define X86_GDT_GPA	    0x500ull
#define X86_BOOT_PARAMS_GPA 0x7000ull
#define X86_PML4_GPA	    0x9000ull /* then PDPT at 0xa000, PDs at 0xb000.. (4 x 4 KiB) */
#define X86_CMDLINE_GPA	    0x20000ull
#define X86_CMDLINE_MAX	    0x10000ull
#define X86_ACPI_GPA	    0xe0000ull /* RSDP first (found by the kernel via acpi_rsdp_addr) */
#define X86_ACPI_MAX	    0x10000ull
#define X86_KERNEL_GPA	    0x100000ull
/* The MP floating pointer in the last KiB of base memory (one of the places
 * Linux scans when there is no ACPI), the configuration table right after it;
 * with many vCPUs it runs on into the reserved legacy area above 640 KiB. */
#define X86_MPTABLE_GPA 0x9fc00ull
#define X86_MPTABLE_MAX 0x1400ull /* 16 + 44 + 240 x 20 + 8 + 8 + 24 x 8 + 2 x 8 = 5084 */
/* The hardware-reduced ACPI sleep control/status register (FADT), one I/O
 * port: the guest powers off by writing SLP_EN with SLP_TYP = \_S5's 5. */
#define X86_ACPI_SLEEP_PORT 0x600
#define X86_ACPI_SLP_TYP_S5 5u
#define X86_ACPI_SLP_EN	    0x20u
/* Nitro's virtio-mmio devices: a 4 KiB slot each, as the Nitro hypervisor
 * announces them; the registers fill the first VIRTIO_MMIO_WINDOW bytes. */
#define NITRO_VSOCK_MMIO   0xd0000000ull
#define NITRO_VSOCK_IRQ	   5
#define NITRO_NSM_MMIO	   0xd0001000ull
#define NITRO_NSM_IRQ	   6
#define NITRO_MMIO_SLOT	   0x1000u
#define VIRTIO_MMIO_WINDOW 0x200
/* The I/O APIC's input pins; a device's IRQ must be one of them. */
#define X86_IOAPIC_PINS 24

struct x86_mmio_dev {
	uint64_t base;
	uint32_t size;
	unsigned irq;
};

struct x86_boot_spec {
	/* The bzImage, as found in guest memory (the EIF's kernel section): hostile. */
	const uint8_t *bzimage;
	size_t bzimage_len;
	const char *cmdline; /* NUL-terminated, < X86_CMDLINE_MAX */
	uint64_t initrd_gpa; /* already in guest memory, contiguous (regions may meet in it) */
	uint64_t initrd_len;
	unsigned ncpus; /* 1..240 */
	/* The virtio-mmio devices, in the order the cmdline announces them
	 * (virtio_mmio.device=, appended to the EIF's cmdline as the Nitro
	 * hypervisor does); their IRQs are level-triggered in the MP table
	 * and, with acpi, the DSDT describes them too (LNRO0005). */
	const struct x86_mmio_dev *devs;
	unsigned ndevs;
	/* ACPI tables (RSDP, XSDT, FADT, MADT, DSDT): not on Nitro, for
	 * debugging kernels that need them. Without, no RSDP exists. */
	bool acpi;
	bool uart; /* with acpi: describe COM1 (PNP0501, 0x3f8, IRQ 4) */
	bool pvpanic; /* with acpi: describe pvpanic (QEMU0001, port 0x505) */
};

/* What the first vCPU starts with (the accelerator loads these into KVM). */
struct x86_boot_regs {
	uint64_t rip, rsi, rsp, rflags;
	uint64_t cr0, cr3, cr4, efer;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint16_t cs_sel, ds_sel; /* flat 64-bit code and data selectors in the GDT */
};

/* Validates the bzImage's setup header (boot protocol >= 2.12, 64-bit entry,
 * relocatable or loadable at 1 MiB, sizes inside the image), copies the
 * protected-mode kernel to X86_KERNEL_GPA, writes boot_params (setup header,
 * e820 map of gm's RAM minus what the boot structures use, cmdline with the
 * devices appended, initrd, acpi_rsdp_addr when acpi), the GDT, identity page
 * tables for the low 4 GiB, the MP table, and the ACPI tables when asked
 * for (else their area is zeroed); fills regs. NECTL_ERR_EIF on a malformed
 * kernel or a cmdline over its cmdline_size, with the reason. */
int x86_boot_setup(const struct guestmem *gm, const struct x86_boot_spec *spec,
		   struct x86_boot_regs *regs, struct nectl_err *err);

/* One device's cmdline entry as the Nitro hypervisor writes it,
 * "virtio_mmio.device=4K@0xd0000000:5"; returns snprintf's count. */
int x86_mmio_dev_cmdline(const struct x86_mmio_dev *d, char *out, size_t len);

/* The MP table alone (floating pointer and configuration table, MP spec 1.4)
 * at X86_MPTABLE_GPA: a processor per vCPU, the ISA bus, the I/O APIC, ISA
 * IRQs 0..23 on its pins 0..23 (the devices' level-triggered), ExtINT and NMI
 * on LINT0/1. Checks first, then writes; used by x86_boot_setup. */
int x86_mptable_build(const struct guestmem *gm, const struct x86_boot_spec *spec,
		      struct nectl_err *err);

/* The ACPI tables alone (RSDP, XSDT, FADT hardware-reduced, MADT, DSDT) at
 * X86_ACPI_GPA; used by x86_boot_setup, exposed for tests. */
int x86_acpi_build(const struct guestmem *gm, const struct x86_boot_spec *spec,
		   struct nectl_err *err);

#endif
