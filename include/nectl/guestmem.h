/* Guest physical memory as the host sees it, and the one checked translation
 * every guest address goes through. The guest is hostile: any address or
 * length it supplies may be out of range or wrap around 2^64. */
#ifndef NECTL_GUESTMEM_H
#define NECTL_GUESTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A machine's donated regions (MACHINE_MAX_REGIONS), one of them split at
 * the 32-bit MMIO hole: regions below it, the rest above. */
#define GUESTMEM_MAX_REGIONS 17

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

/* The host's own copies (the boot's kernel and initrd), which may span
 * regions adjacent in guest physical memory; the guest's accesses never do.
 * fn gets each piece of [gpa, gpa + len) that lies in one region, in
 * ascending order, with `at` the piece's offset in the span. -1 when the
 * span is not all RAM (fn is not called then), else the first non-zero
 * return of fn, else 0. fn NULL: only the check. */
typedef int (*guestmem_piece_fn)(void *ctx, uint8_t *hva, uint64_t at, uint64_t len);
int guestmem_span(const struct guestmem *gm, uint64_t gpa, uint64_t len, guestmem_piece_fn fn,
		  void *ctx);
/* guestmem_span with a memmove per piece: safe when src lies in guest
 * memory too, at or above gpa (a bzImage in the EIF, above where it runs). */
int guestmem_write_span(const struct guestmem *gm, uint64_t gpa, const void *src, uint64_t len);

#endif
