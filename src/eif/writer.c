/* EIF writer: one pass over the inputs. Each chunk is read once into a hasher
 * buffer, measured by the hasher's threads while it is written out. The header
 * goes last (pwrite at 0), its CRC joined to the body's with crc32_combine. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "eif/be.h"
#include "eif/hasher.h"
#include "nectl/eif.h"
#include "nectl/eif_sign.h"
#include "util/fileio.h"


struct writer {
	struct out_file out;
	uint8_t header[EIF_HEADER_SIZE];
	unsigned num_sections;
	struct hasher *hasher;
	uint64_t done, total;
	const struct eif_progress *progress;
	uint16_t version, flags;
	uint64_t default_mem, default_cpus;
};

/* Records the section in the header table and writes its 12-byte header. */
static int writer_begin_section(struct writer *w, unsigned type, uint64_t size,
				struct nectl_err *err)
{
	uint8_t sh[EIF_SECTION_HEADER_SIZE];
	unsigned i = w->num_sections++;

	be64_put(w->header + 28 + 8 * i, w->out.written);
	be64_put(w->header + 284 + 8 * i, size);
	be16_put(sh, (uint16_t)type);
	be16_put(sh + 2, 0);
	be64_put(sh + 4, size);
	memcpy(hasher_buffer(w->hasher), sh, sizeof(sh));
	hasher_submit(w->hasher, sizeof(sh), HASHER_NONE);
	return out_file_write(&w->out, sh, sizeof(sh), err);
}

/* Measures and writes a chunk already in the current hasher buffer. */
static int writer_emit(struct writer *w, const uint8_t *buf, size_t len, enum hasher_part part,
		       struct nectl_err *err)
{
	hasher_submit(w->hasher, len, part);
	w->done += len;
	if (w->progress && w->progress->fn)
		w->progress->fn(w->progress->ctx, w->done, w->total);
	return out_file_write(&w->out, buf, len, err);
}

static int writer_data(struct writer *w, enum hasher_part part, const uint8_t *data,
		       size_t len, struct nectl_err *err)
{
	while (len > 0) {
		size_t n = len < HASHER_CHUNK ? len : HASHER_CHUNK;
		uint8_t *buf = hasher_buffer(w->hasher);

		memcpy(buf, data, n);
		if (writer_emit(w, buf, n, part, err) < 0)
			return -1;
		data += n;
		len -= n;
	}
	return 0;
}

/* Producers emit arbitrary pieces; they are gathered into whole hasher chunks. */
struct writer_stream {
	struct writer *w;
	enum hasher_part part;
	uint8_t *buf;
	size_t fill;
	uint64_t total;
};

static int writer_stream_emit(void *ctx, const void *data, size_t len, struct nectl_err *err)
{
	struct writer_stream *ws = ctx;
	const uint8_t *p = data;

	ws->total += len;
	while (len > 0) {
		size_t n;

		if (!ws->buf) {
			ws->buf = hasher_buffer(ws->w->hasher);
			ws->fill = 0;
		}
		n = HASHER_CHUNK - ws->fill < len ? HASHER_CHUNK - ws->fill : len;
		memcpy(ws->buf + ws->fill, p, n);
		ws->fill += n;
		p += n;
		len -= n;
		if (ws->fill == HASHER_CHUNK) {
			uint8_t *full = ws->buf;

			ws->buf = NULL;
			if (writer_emit(ws->w, full, HASHER_CHUNK, ws->part, err) < 0)
				return -1;
		}
	}
	return 0;
}

static int writer_produce(struct writer *w, enum hasher_part part, const struct eif_input *in,
			  struct nectl_err *err)
{
	struct writer_stream ws = {.w = w, .part = part};

	if (in->produce(in->produce_ctx, writer_stream_emit, &ws, err) < 0)
		return -1;
	if (ws.buf && writer_emit(w, ws.buf, ws.fill, part, err) < 0)
		return -1;
	if (ws.total != in->len)
		return nectl_err_set(
		    err, NECTL_ERR_BUILD,
		    "section %u: the producer wrote %llu bytes, %llu were announced",
		    w->num_sections - 1, (unsigned long long)ws.total, (unsigned long long)in->len);
	return 0;
}

static int writer_input_size(const struct eif_input *in, uint64_t *size, struct nectl_err *err)
{
	struct stat st;

	if (!in->path || in->produce) {
		*size = in->len;
		return 0;
	}
	if (stat(in->path, &st) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", in->path);
	if (!S_ISREG(st.st_mode))
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: not a regular file", in->path);
	*size = (uint64_t)st.st_size;
	return 0;
}

static int writer_copy_file(struct writer *w, enum hasher_part part, const char *path,
			    uint64_t size, struct nectl_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t left = size;
	int rc = -1;

	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", path);
	while (left > 0) {
		uint8_t *buf = hasher_buffer(w->hasher);
		ssize_t n = read(fd, buf, left < HASHER_CHUNK ? (size_t)left : HASHER_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: read failed", path);
			goto out;
		}
		if (n == 0) {
			nectl_err_set(err, NECTL_ERR_FILE, "%s: file shrank while being read",
				      path);
			goto out;
		}
		if (writer_emit(w, buf, (size_t)n, part, err) < 0)
			goto out;
		left -= (uint64_t)n;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

static int writer_section(struct writer *w, unsigned type, enum hasher_part part,
			  const struct eif_input *in, struct nectl_err *err)
{
	uint64_t size;

	if (w->num_sections == EIF_MAX_SECTIONS)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: more than %u sections", w->out.path,
				     EIF_MAX_SECTIONS);
	if (writer_input_size(in, &size, err) < 0 || writer_begin_section(w, type, size, err) < 0)
		return -1;
	if (in->produce)
		return writer_produce(w, part, in, err);
	if (in->path)
		return writer_copy_file(w, part, in->path, size, err);
	return writer_data(w, part, in->data, in->len, err);
}

static int writer_sections(struct writer *w, const struct eif_build_spec *spec,
			   struct eif_pcrs *pcrs, struct nectl_err *err)
{
	struct eif_input cmdline = {.data = spec->cmdline, .len = strlen(spec->cmdline)};
	struct eif_input meta = {.data = spec->metadata, .len = spec->metadata_len};

	if (writer_section(w, EIF_SECTION_KERNEL, HASHER_BOOT, &spec->kernel, err) < 0 ||
	    writer_section(w, EIF_SECTION_CMDLINE, HASHER_BOOT, &cmdline, err) < 0 ||
	    writer_section(w, EIF_SECTION_METADATA, HASHER_NONE, &meta, err) < 0)
		return -1;
	for (size_t i = 0; i < spec->num_ramdisks; i++)
		if (writer_section(w, EIF_SECTION_RAMDISK, i == 0 ? HASHER_BOOT : HASHER_APP,
				   &spec->ramdisks[i], err) < 0)
			return -1;
	/* The signature covers PCR0, so measurement must end before it. */
	if (hasher_pcrs(w->hasher, pcrs, err) < 0)
		return -1;
	memset(pcrs->pcr8, 0, sizeof(pcrs->pcr8));
	pcrs->has_pcr8 = false;
	if (spec->signer) {
		struct eif_input sig = {0};
		uint8_t *bytes;
		int rc;

		if (eif_signature_build(spec->signer, pcrs->pcr0, &bytes, &sig.len, err) < 0)
			return -1;
		sig.data = bytes;
		rc = writer_section(w, EIF_SECTION_SIGNATURE, HASHER_NONE, &sig, err);
		free(bytes);
		if (rc < 0)
			return -1;
		eif_signer_pcr8(spec->signer, pcrs->pcr8);
		pcrs->has_pcr8 = true;
	}
	return 0;
}

static int writer_finish_header(struct writer *w, struct nectl_err *err)
{
	uint32_t body_crc;
	uint64_t body_len;
	uLong crc;

	hasher_finish(w->hasher, &body_crc, &body_len);
	w->hasher = NULL;
	memcpy(w->header, EIF_MAGIC, 4);
	be16_put(w->header + 4, w->version);
	be16_put(w->header + 6, w->flags);
	be64_put(w->header + 8, w->default_mem);
	be64_put(w->header + 16, w->default_cpus);
	be16_put(w->header + 26, (uint16_t)w->num_sections);
	crc = crc32(0L, w->header, EIF_CRC_OFFSET);
	crc = crc32_combine(crc, body_crc, (z_off_t)body_len);
	be32_put(w->header + EIF_CRC_OFFSET, (uint32_t)crc);
	return out_file_pwrite(&w->out, w->header, sizeof(w->header), 0, err);
}

static int writer_check_spec(const struct eif_build_spec *spec, struct nectl_err *err)
{
	if (spec->num_ramdisks == 0)
		return nectl_err_set(err, NECTL_ERR_BUILD, "at least one ramdisk is required");
	if (spec->num_ramdisks + 4 > EIF_MAX_SECTIONS)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%zu ramdisks: at most %u fit in an EIF",
				     spec->num_ramdisks, EIF_MAX_SECTIONS - 4);
	if (strlen(spec->cmdline) > EIF_CMDLINE_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD, "cmdline is longer than %u bytes",
				     EIF_CMDLINE_MAX);
	if (spec->metadata_len > EIF_METADATA_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD, "metadata is longer than %u bytes",
				     EIF_METADATA_MAX);
	return 0;
}

static uint64_t writer_total(const struct eif_build_spec *spec)
{
	uint64_t total = 0, size;

	if (writer_input_size(&spec->kernel, &size, NULL) == 0)
		total += size;
	for (size_t i = 0; i < spec->num_ramdisks; i++)
		if (writer_input_size(&spec->ramdisks[i], &size, NULL) == 0)
			total += size;
	return total;
}

/* Opens the output and the hasher, reserving room for the header. */
static int writer_open(struct writer *w, const char *path, struct nectl_err *err)
{
	if (out_file_open(&w->out, path, err) < 0)
		return -1;
	if (hasher_start(&w->hasher, err) < 0)
		return -1;
	return out_file_write(&w->out, w->header, sizeof(w->header), err);
}

static void writer_close(struct writer *w)
{
	if (w->hasher)
		hasher_abort(w->hasher);
	out_file_abort(&w->out);
}

int eif_build(const struct eif_build_spec *spec, struct eif_pcrs *pcrs, struct nectl_err *err)
{
	struct writer w = {.progress = spec->progress,
			   .version = EIF_VERSION_CURRENT,
			   .flags = spec->arch == EIF_ARCH_AARCH64 ? EIF_FLAG_ARCH_ARM64 : 0,
			   .default_mem = EIF_DEFAULT_MEM,
			   .default_cpus = EIF_DEFAULT_CPUS};
	int rc = -1;

	w.out.fd = -1;
	if (writer_check_spec(spec, err) < 0)
		return -1;
	w.total = writer_total(spec);
	if (writer_open(&w, spec->output_path, err) == 0 && writer_sections(&w, spec, pcrs, err) == 0 &&
	    writer_finish_header(&w, err) == 0 && out_file_commit(&w.out, err) == 0)
		rc = 0;
	writer_close(&w);
	return rc;
}

static int writer_copy_source(struct writer *w, const struct eif_source *src, uint64_t off,
			      uint64_t size, struct nectl_err *err)
{
	while (size > 0) {
		size_t n = size < HASHER_CHUNK ? (size_t)size : HASHER_CHUNK;
		uint8_t *buf = hasher_buffer(w->hasher);
		int rc = src->read_at(src->ctx, off, buf, n);

		if (rc < 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, -rc, "%s: read failed",
					     src->name);
		if (writer_emit(w, buf, n, HASHER_NONE, err) < 0)
			return -1;
		off += n;
		size -= n;
	}
	return 0;
}

/* Rewrites the image with its sections in table order, contiguous, without
 * the old signature, and the new signature last. */
static int writer_resign(struct writer *w, const struct eif_source *src,
			 const struct eif_image *img, const struct eif_signer *signer,
			 struct nectl_err *err)
{
	struct eif_input sig = {0};
	uint8_t *bytes;
	int rc;

	for (unsigned i = 0; i < img->num_sections; i++) {
		const struct eif_section *s = &img->sections[i];

		if (s->type == EIF_SECTION_SIGNATURE)
			continue;
		if (writer_begin_section(w, s->type, s->size, err) < 0 ||
		    writer_copy_source(w, src, s->offset + EIF_SECTION_HEADER_SIZE, s->size, err) < 0)
			return -1;
	}
	if (eif_signature_build(signer, img->pcrs.pcr0, &bytes, &sig.len, err) < 0)
		return -1;
	sig.data = bytes;
	rc = writer_section(w, EIF_SECTION_SIGNATURE, HASHER_NONE, &sig, err);
	free(bytes);
	return rc;
}

static int writer_sign_image(const struct eif_source *src, const struct eif_image *img,
			     const struct eif_signer *signer, const struct eif_progress *progress,
			     struct nectl_err *err)
{
	struct writer w = {.progress = progress,
			   .total = img->file_size,
			   /* a signature section needs version 3 or later */
			   .version = img->version < 3 ? 3 : img->version,
			   .flags = img->flags,
			   .default_mem = img->default_mem,
			   .default_cpus = img->default_cpus};
	int rc = -1;

	w.out.fd = -1;
	if (writer_open(&w, src->name, err) == 0 && writer_resign(&w, src, img, signer, err) == 0 &&
	    writer_finish_header(&w, err) == 0 && out_file_commit(&w.out, err) == 0)
		rc = 0;
	writer_close(&w);
	return rc;
}

int eif_sign_file(const char *path, const struct eif_signer *signer, struct eif_pcrs *pcrs,
		  const struct eif_progress *progress, struct nectl_err *err)
{
	struct eif_source src;
	struct eif_image img;
	int rc = -1;

	if (eif_source_open_file(&src, path, err) < 0)
		return -1;
	if (eif_read(&src, &img, NULL, err) < 0)
		goto out;
	if (img.crc_stored != img.crc_computed) {
		nectl_err_set(err, NECTL_ERR_EIF,
			      "%s: CRC mismatch (header 0x%08x, computed 0x%08x): refusing to sign "
			      "a corrupt image",
			      path, img.crc_stored, img.crc_computed);
		goto free_img;
	}
	if (writer_sign_image(&src, &img, signer, progress, err) < 0)
		goto free_img;
	*pcrs = img.pcrs;
	eif_signer_pcr8(signer, pcrs->pcr8);
	pcrs->has_pcr8 = true;
	rc = 0;
free_img:
	eif_image_free(&img);
out:
	eif_source_close(&src);
	return rc;
}
