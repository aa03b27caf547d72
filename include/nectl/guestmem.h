/* Guest physical memory as the host sees it, and the one checked translation
 * every guest address goes through. The guest is hostile: any address or
 * length it supplies may be out of range or wrap around 2^64. */
#ifndef NECTL_GUESTMEM_H
#define NECTL_GUESTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUESTMEM_MAX_REGIONS 2 /* below and above the 32-bit MMIO hole */

struct guestmem_region {
	uint64_t gpa;  /* guest physical start */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* host mapping of the region */
};

struct guestmem {
	struct guestmem_region r[GUESTMEM_MAX_REGIONS];
	unsigned n;
};

/* A host pointer to guest bytes [gpa, gpa + len), or NULL when any of them is
 * outside guest memory or the range crosses from one region into another.
 * len 0 is valid inside a region (and at its end). */
void *guestmem_ptr(const struct guestmem *gm, uint64_t gpa, uint64_t len);
/* Copies between guest and host memory through guestmem_ptr; -1 when the
 * guest range is invalid (nothing is copied then). */
int guestmem_read(const struct guestmem *gm, uint64_t gpa, void *dst, size_t len);
int guestmem_write(const struct guestmem *gm, uint64_t gpa, const void *src, size_t len);

#endif
