/* fuzz_bzimage.c: the x86 boot protocol's setup header of a hostile bzImage,
 * as nectl's hypervisor reads it from guest memory (x86_boot_setup, which
 * validates every field before it sizes or places anything) and as
 * describe-eif reads the kernel release (eif_kernel_release). The guest has
 * 128 MiB of RAM, allocated once. Besides crashes, it traps on broken
 * promises: a failure carries NECTL_ERR_EIF, success enters at the 64-bit entry
 * point of the kernel copied to 1 MiB, and a release is printable text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nectl/eif.h"
#include "nectl/guestmem.h"
#include "nectl/x86boot.h"

#define FUZZ_RAM    (128ull << 20)
#define FUZZ_INITRD (64ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct x86_mmio_dev fuzz_devs[] = {
    {NITRO_VSOCK_MMIO, NITRO_MMIO_SLOT, NITRO_VSOCK_IRQ},
    {NITRO_NSM_MMIO, NITRO_MMIO_SLOT, NITRO_NSM_IRQ},
};

static struct guestmem *fuzz_guest(void)
{
	static struct guestmem gm;

	if (!gm.n) {
		gm.r[0] = (struct guestmem_region){0, FUZZ_RAM, calloc(1, FUZZ_RAM)};
		if (!gm.r[0].hva)
			abort();
		gm.n = 1;
	}
	return &gm;
}

static void fuzz_release(const uint8_t *data, size_t size)
{
	char out[65];

	if (!eif_kernel_release(data, size, out, sizeof(out))) {
		if (out[0])
			abort();
		return;
	}
	for (const char *p = out; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x86_boot_spec spec = {
	    .bzimage = data,
	    .bzimage_len = size,
	    .cmdline = "console=ttyS0 reboot=k panic=30",
	    .initrd_gpa = FUZZ_INITRD,
	    .initrd_len = 4096,
	    .ncpus = 1 + (unsigned)(size % 4),
	    .devs = fuzz_devs,
	    .ndevs = 2,
	    .acpi = size & 1,
	    .uart = size & 2,
	};
	struct x86_boot_regs regs;
	struct nectl_err err = {0};

	fuzz_release(data, size);
	if (x86_boot_setup(fuzz_guest(), &spec, &regs, &err) == 0) {
		if (regs.rip != X86_KERNEL_GPA + 0x200)
			abort();
	} else if (err.kind != NECTL_ERR_EIF || !err.msg[0]) {
		abort();
	}
	return 0;
}
