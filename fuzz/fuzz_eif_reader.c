/* fuzz_eif_reader.c: eif_read over arbitrary bytes held in memory. Besides
 * crashes, it traps on broken promises: a memory source can only fail to
 * read if the bounds checks let an out-of-range offset through, and every
 * failure must carry a code and a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nectl/eif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_progress {
	uint64_t done;
};

static void fuzz_on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct fuzz_progress *p = ctx;

	if (done < p->done || done > total)
		abort();
	p->done = done;
}

/* What a successful read promises about the image. */
static void fuzz_check_image(const struct eif_image *img, size_t size)
{
	if (img->num_sections == 0 || img->num_sections > EIF_MAX_SECTIONS)
		abort();
	for (unsigned i = 0; i < img->num_sections; i++) {
		const struct eif_section *s = &img->sections[i];

		if (s->offset < EIF_HEADER_SIZE || s->offset > size ||
		    size - s->offset < EIF_SECTION_HEADER_SIZE ||
		    size - s->offset - EIF_SECTION_HEADER_SIZE < s->size)
			abort();
	}
	if (eif_image_find(img, EIF_SECTION_KERNEL) < 0 || !img->cmdline ||
	    img->cmdline_len > EIF_CMDLINE_MAX || img->cmdline[img->cmdline_len] != '\0')
		abort();
	if (img->signature_len > EIF_SIGNATURE_MAX || img->metadata_len > EIF_METADATA_MAX)
		abort();
	if (img->pcrs.has_pcr8 != (img->signature != NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_progress p = {0};
	struct eif_progress progress = {fuzz_on_progress, &p};
	struct eif_source src;
	struct eif_image img;
	struct nectl_err err = {0};

	eif_source_from_memory(&src, data, size, "fuzz");
	if (eif_read(&src, &img, &progress, &err) == 0) {
		fuzz_check_image(&img, size);
		eif_image_free(&img);
		return 0;
	}
	if (err.kind != NECTL_ERR_EIF || strncmp(err.msg, "fuzz: ", 6) != 0)
		abort();
	if (img.cmdline || img.metadata || img.signature)
		abort();
	return 0;
}
