/* The one checked translation from guest physical addresses to host
 * pointers: every device access to guest memory goes through it. The host's
 * own copies that may span regions walk it piece by piece. */
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

/* The bytes of gpa's region from gpa on (0: gpa is not RAM). */
static uint64_t guestmem_avail(const struct guestmem *gm, uint64_t gpa)
{
	for (unsigned i = 0; i < gm->n && i < GUESTMEM_MAX_REGIONS; i++) {
		const struct guestmem_region *r = &gm->r[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r->size - (gpa - r->gpa);
	}
	return 0;
}

static int guestmem_walk(const struct guestmem *gm, uint64_t gpa, uint64_t len,
			 guestmem_piece_fn fn, void *ctx)
{
	if (len > UINT64_MAX - gpa)
		return -1;
	for (uint64_t at = 0; at < len;) {
		uint64_t n = guestmem_avail(gm, gpa + at);
		uint8_t *p;
		int rc;

		if (n > len - at)
			n = len - at;
		p = n ? guestmem_ptr(gm, gpa + at, n) : NULL;
		if (!p)
			return -1;
		if (fn && (rc = fn(ctx, p, at, n)) != 0)
			return rc;
		at += n;
	}
	return 0;
}

int guestmem_span(const struct guestmem *gm, uint64_t gpa, uint64_t len, guestmem_piece_fn fn,
		  void *ctx)
{
	/* All checked before anything is called: nothing half-done. */
	if (guestmem_walk(gm, gpa, len, NULL, NULL) < 0)
		return -1;
	return fn ? guestmem_walk(gm, gpa, len, fn, ctx) : 0;
}

static int guestmem_move_piece(void *ctx, uint8_t *hva, uint64_t at, uint64_t len)
{
	memmove(hva, (const uint8_t *)ctx + at, (size_t)len);
	return 0;
}

int guestmem_write_span(const struct guestmem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	return guestmem_span(gm, gpa, len, guestmem_move_piece, (void *)src);
}
