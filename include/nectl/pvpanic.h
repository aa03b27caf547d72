/* The pvpanic device as QEMU defines it (docs/specs/pvpanic.rst): one I/O
 * port that only the guest's kernel writes, from its panic notifier, so an
 * enclave's panic is known from the machine rather than from console text any
 * process could print. Nitro has no such device; nectl's machine offers it
 * only with its ACPI option (the DSDT is the only way Linux finds it: "QEMU0001",
 * drivers/misc/pvpanic/pvpanic-mmio.c). */
#ifndef NECTL_PVPANIC_H
#define NECTL_PVPANIC_H

#include <stdint.h>

#define PVPANIC_PORT	     0x505
#define PVPANIC_PANICKED     (1u << 0) /* the kernel panicked */
#define PVPANIC_CRASH_LOADED (1u << 1) /* ... and a crash kernel takes over */
#define PVPANIC_ACPI_HID     "QEMU0001"

struct pvpanic {
	/* Called for each write with at least one event this device offers. */
	void (*event)(void *ctx, uint8_t events);
	void *ctx;
};

void pvpanic_init(struct pvpanic *p, void (*event)(void *ctx, uint8_t events), void *ctx);
/* A read returns the events offered: Linux's driver writes only those. */
uint8_t pvpanic_read(const struct pvpanic *p);
void pvpanic_write(struct pvpanic *p, uint8_t val);

#endif
