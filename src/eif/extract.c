/* Copying sections out of a validated image: for inspection, and to hand a
 * kernel and initrd to another VMM. */
#include <stdlib.h>
#include <string.h>

#include "nectl/eif.h"
#include "util/fileio.h"

#define EXTRACT_CHUNK (1u << 20)

static int extract_copy(const struct eif_source *src, const struct eif_section *s,
			struct out_file *out, uint8_t *buf, struct nectl_err *err)
{
	uint64_t off = s->offset + EIF_SECTION_HEADER_SIZE;

	for (uint64_t left = s->size; left > 0;) {
		size_t n = left < EXTRACT_CHUNK ? (size_t)left : EXTRACT_CHUNK;
		int rc = src->read_at(src->ctx, off, buf, n);

		if (rc < 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, -rc, "%s: read failed",
					     src->name);
		if (out_file_write(out, buf, n, err) < 0)
			return -1;
		off += n;
		left -= n;
	}
	return 0;
}

int eif_extract(const struct eif_source *src, const struct eif_image *img, unsigned type,
		int index, const char *path, struct nectl_err *err)
{
	uint8_t *buf = malloc(EXTRACT_CHUNK);
	struct out_file out;
	int seen = 0, rc = -1;

	if (!buf)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	if (out_file_open(&out, path, err) < 0) {
		free(buf);
		return -1;
	}
	for (unsigned i = 0; i < img->num_sections; i++) {
		if (img->sections[i].type != type || (index >= 0 && seen++ != index))
			continue;
		if (extract_copy(src, &img->sections[i], &out, buf, err) < 0)
			goto out;
	}
	rc = out_file_commit(&out, err);
out:
	out_file_abort(&out);
	free(buf);
	return rc;
}
