/* The one checked translation from guest physical addresses to host
 * pointers: every device access to guest memory goes through it. */
#include <string.h>

#include "nectl/guestmem.h"

void *guestmem_ptr(const struct guestmem *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < gm->n && i < GUESTMEM_MAX_REGIONS; i++) {
		const struct guestmem_region *r = &gm->r[i];
		uint64_t off;

		/* Subtractions only: gpa + len may wrap, gpa - r->gpa may not. */
		if (gpa < r->gpa)
			continue;
		off = gpa - r->gpa;
		if (off > r->size || (off == r->size && len > 0))
			continue;
		if (len > r->size - off)
			return NULL;
		return r->hva + off;
	}
	return NULL;
}

int guestmem_read(const struct guestmem *gm, uint64_t gpa, void *dst, size_t len)
{
	const void *p = guestmem_ptr(gm, gpa, len);

	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}

int guestmem_write(const struct guestmem *gm, uint64_t gpa, const void *src, size_t len)
{
	void *p = guestmem_ptr(gm, gpa, len);

	if (!p)
		return -1;
	memcpy(p, src, len);
	return 0;
}
