/* EIF reader. The file is hostile: the header and section table are checked
 * completely before any section is read, then every section is streamed once
 * through a fixed buffer feeding the CRC and the PCR hashes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "nectl/eif.h"
#include "nectl/eif_sign.h"
#include "eif/be.h"
#include "eif/hasher.h"


const char *eif_section_type_name(unsigned type)
{
	static const char *const names[] = {"invalid", "kernel", "cmdline", "ramdisk",
					    "signature", "metadata"};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

const char *eif_arch_name(enum eif_arch arch)
{
	return arch == EIF_ARCH_AARCH64 ? "aarch64" : "x86_64";
}

int eif_arch_parse(const char *name, enum eif_arch *arch)
{
	if (strcmp(name, "x86_64") == 0 || strcmp(name, "amd64") == 0)
		*arch = EIF_ARCH_X86_64;
	else if (strcmp(name, "aarch64") == 0 || strcmp(name, "arm64") == 0)
		*arch = EIF_ARCH_AARCH64;
	else
		return -1;
	return 0;
}

int eif_image_find(const struct eif_image *img, unsigned type)
{
	for (unsigned i = 0; i < img->num_sections; i++)
		if (img->sections[i].type == type)
			return (int)i;
	return -1;
}

static int reader_fail_read(const struct eif_source *src, int rc, uint64_t off, uint64_t len,
			    struct nectl_err *err)
{
	return nectl_err_sys(err, NECTL_ERR_FILE, -rc, "%s: cannot read %llu bytes at offset %llu",
			     src->name, (unsigned long long)len, (unsigned long long)off);
}

static int reader_parse_header(const struct eif_source *src, const uint8_t *h,
			       struct eif_image *img, struct nectl_err *err)
{
	if (memcmp(h, EIF_MAGIC, 4) != 0)
		return nectl_err_set(
		    err, NECTL_ERR_EIF,
		    "%s: bad magic %02x %02x %02x %02x (expected 2e 65 69 66, \".eif\")", src->name,
		    h[0], h[1], h[2], h[3]);
	img->version = be16_get(h + 4);
	if (img->version < EIF_VERSION_MIN || img->version > EIF_VERSION_CURRENT)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: unsupported EIF version %u (supported: %u to %u)",
				     src->name, img->version, EIF_VERSION_MIN, EIF_VERSION_CURRENT);
	img->flags = be16_get(h + 6);
	img->arch = (img->flags & EIF_FLAG_ARCH_ARM64) ? EIF_ARCH_AARCH64 : EIF_ARCH_X86_64;
	img->unknown_flags = img->flags & (uint16_t)~EIF_FLAG_ARCH_ARM64;
	img->default_mem = be64_get(h + 8);
	img->default_cpus = be64_get(h + 16);
	img->num_sections = be16_get(h + 26);
	if (img->num_sections == 0 || img->num_sections > EIF_MAX_SECTIONS)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: header declares %u sections (must be 1 to %u)", src->name,
				     img->num_sections, EIF_MAX_SECTIONS);
	img->crc_stored = be32_get(h + EIF_CRC_OFFSET);
	for (unsigned i = 0; i < img->num_sections; i++) {
		img->sections[i].offset = be64_get(h + 28 + 8 * i);
		img->sections[i].size = be64_get(h + 284 + 8 * i);
	}
	return 0;
}

/* Every section must lie inside the file, after the header. Checked with
 * subtraction so that no sum can wrap around 2^64. */
static int reader_check_bounds(const struct eif_source *src, const struct eif_image *img,
			       struct nectl_err *err)
{
	for (unsigned i = 0; i < img->num_sections; i++) {
		const struct eif_section *s = &img->sections[i];

		if (s->offset < EIF_HEADER_SIZE)
			return nectl_err_set(
			    err, NECTL_ERR_EIF,
			    "%s: section %u at offset %llu overlaps the %u-byte header", src->name,
			    i, (unsigned long long)s->offset, EIF_HEADER_SIZE);
		if (s->offset > src->size || src->size - s->offset < EIF_SECTION_HEADER_SIZE ||
		    src->size - s->offset - EIF_SECTION_HEADER_SIZE < s->size)
			return nectl_err_set(err, NECTL_ERR_EIF,
					     "%s: section %u at offset %llu with size %llu runs "
					     "past the end of the file (%llu bytes)",
					     src->name, i, (unsigned long long)s->offset,
					     (unsigned long long)s->size,
					     (unsigned long long)src->size);
	}
	return 0;
}

static int reader_check_overlap(const struct eif_source *src, const struct eif_image *img,
				struct nectl_err *err)
{
	for (unsigned i = 0; i < img->num_sections; i++) {
		const struct eif_section *a = &img->sections[i];
		uint64_t a_end = a->offset + EIF_SECTION_HEADER_SIZE + a->size;

		for (unsigned j = i + 1; j < img->num_sections; j++) {
			const struct eif_section *b = &img->sections[j];
			uint64_t b_end = b->offset + EIF_SECTION_HEADER_SIZE + b->size;

			if (a->offset < b_end && b->offset < a_end)
				return nectl_err_set(
				    err, NECTL_ERR_EIF,
				    "%s: sections %u [%llu, %llu) and %u [%llu, %llu) overlap",
				    src->name, i, (unsigned long long)a->offset,
				    (unsigned long long)a_end, j, (unsigned long long)b->offset,
				    (unsigned long long)b_end);
		}
	}
	return 0;
}

static int reader_check_section_header(const struct eif_source *src, unsigned i,
				       const uint8_t *sh, struct eif_section *s,
				       struct nectl_err *err)
{
	uint64_t size = be64_get(sh + 4);

	s->type = be16_get(sh);
	s->flags = be16_get(sh + 2);
	if (s->type < EIF_SECTION_KERNEL || s->type > EIF_SECTION_METADATA)
		return nectl_err_set(
		    err, NECTL_ERR_EIF,
		    "%s: section %u at offset %llu has invalid type %u (valid: 1 to 5)", src->name,
		    i, (unsigned long long)s->offset, s->type);
	if (s->flags != 0)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: section %u (%s) has reserved flags 0x%04x set", src->name,
				     i, eif_section_type_name(s->type), s->flags);
	if (size != s->size)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: section %u (%s) size mismatch: header table says %llu, "
				     "section header says %llu",
				     src->name, i, eif_section_type_name(s->type),
				     (unsigned long long)s->size, (unsigned long long)size);
	return 0;
}

/* Which section of each type came first and how many there are. */
struct reader_census {
	unsigned count[EIF_SECTION_METADATA + 1];
	int first[EIF_SECTION_METADATA + 1];
	int second[EIF_SECTION_METADATA + 1];
};

static void reader_take_census(const struct eif_image *img, struct reader_census *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned t = 0; t <= EIF_SECTION_METADATA; t++)
		c->first[t] = c->second[t] = -1;
	for (unsigned i = 0; i < img->num_sections; i++) {
		unsigned t = img->sections[i].type;

		if (c->count[t] == 0)
			c->first[t] = (int)i;
		else if (c->count[t] == 1)
			c->second[t] = (int)i;
		c->count[t]++;
	}
}

static int reader_check_counts(const struct eif_source *src, const struct eif_image *img,
			       const struct reader_census *c, struct nectl_err *err)
{
	static const struct {
		unsigned type, min, max;
	} rules[] = {{EIF_SECTION_KERNEL, 1, 1},    {EIF_SECTION_CMDLINE, 1, 1},
		     {EIF_SECTION_RAMDISK, 1, 32},  {EIF_SECTION_SIGNATURE, 0, 1},
		     {EIF_SECTION_METADATA, 0, 1}};

	for (size_t k = 0; k < sizeof(rules) / sizeof(rules[0]); k++) {
		unsigned t = rules[k].type;
		const char *name = eif_section_type_name(t);

		if (c->count[t] < rules[k].min)
			return nectl_err_set(err, NECTL_ERR_EIF, "%s: no %s section (%s required)",
					     src->name, name,
					     rules[k].max == 1 ? "exactly 1" : "at least 1");
		if (c->count[t] > rules[k].max)
			return nectl_err_set(err, NECTL_ERR_EIF,
					     "%s: section %d is a second %s section (sections %d "
					     "and %d; %s allowed)",
					     src->name, c->second[t], name, c->first[t],
					     c->second[t],
					     rules[k].min ? "exactly 1" : "at most 1");
	}
	if (img->version >= 4 && c->count[EIF_SECTION_METADATA] == 0)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: no metadata section (required by EIF version %u)",
				     src->name, img->version);
	if (img->version < 3 && c->count[EIF_SECTION_SIGNATURE] > 0)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: section %d is a signature, which EIF version %u does not "
				     "allow (version 3 or later)",
				     src->name, c->first[EIF_SECTION_SIGNATURE], img->version);
	if (c->first[EIF_SECTION_RAMDISK] < c->first[EIF_SECTION_KERNEL])
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: section %d (ramdisk) comes before the kernel section %d",
				     src->name, c->first[EIF_SECTION_RAMDISK],
				     c->first[EIF_SECTION_KERNEL]);
	return 0;
}

static int reader_check_layout(const struct eif_source *src, const struct eif_image *img,
			       struct nectl_err *err)
{
	static const struct {
		unsigned type;
		uint64_t max;
	} caps[] = {{EIF_SECTION_CMDLINE, EIF_CMDLINE_MAX},
		    {EIF_SECTION_METADATA, EIF_METADATA_MAX},
		    {EIF_SECTION_SIGNATURE, EIF_SIGNATURE_MAX}};
	struct reader_census c;

	for (unsigned i = 0; i < img->num_sections; i++) {
		const struct eif_section *s = &img->sections[i];

		for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++)
			if (s->type == caps[k].type && s->size > caps[k].max)
				return nectl_err_set(
				    err, NECTL_ERR_EIF,
				    "%s: section %u (%s) is %llu bytes (at most %llu allowed)",
				    src->name, i, eif_section_type_name(s->type),
				    (unsigned long long)s->size, (unsigned long long)caps[k].max);
	}
	reader_take_census(img, &c);
	return reader_check_counts(src, img, &c, err);
}

/* The streaming state: the hashing pipeline and progress accounting. */
struct reader_stream {
	struct hasher *hasher;
	uint64_t done, total;
	const struct eif_progress *progress;
};

static uint8_t **reader_keep_slot(struct eif_image *img, unsigned type, size_t **len)
{
	switch (type) {
	case EIF_SECTION_CMDLINE:
		*len = &img->cmdline_len;
		return (uint8_t **)&img->cmdline;
	case EIF_SECTION_METADATA:
		*len = &img->metadata_len;
		return &img->metadata;
	case EIF_SECTION_SIGNATURE:
		*len = &img->signature_len;
		return &img->signature;
	default:
		return NULL;
	}
}

static enum hasher_part reader_part(unsigned type, bool first_ramdisk)
{
	if (type == EIF_SECTION_KERNEL || type == EIF_SECTION_CMDLINE ||
	    (type == EIF_SECTION_RAMDISK && first_ramdisk))
		return HASHER_BOOT;
	return type == EIF_SECTION_RAMDISK ? HASHER_APP : HASHER_NONE;
}

/* Streams one section (its 12-byte header, then its data) through the hasher. */
static int reader_stream_section(const struct eif_source *src, struct reader_stream *st,
				 struct eif_image *img, unsigned i, bool first_ramdisk,
				 struct nectl_err *err)
{
	const struct eif_section *s = &img->sections[i];
	enum hasher_part part = reader_part(s->type, first_ramdisk);
	size_t *keep_len = NULL;
	uint8_t **keep = reader_keep_slot(img, s->type, &keep_len);
	uint64_t off = s->offset;
	uint8_t *buf = hasher_buffer(st->hasher);
	int rc;

	/* The validated header, not a second read: the file may change under us. */
	be16_put(buf, s->type);
	be16_put(buf + 2, s->flags);
	be64_put(buf + 4, s->size);
	hasher_submit(st->hasher, EIF_SECTION_HEADER_SIZE, HASHER_NONE);
	off += EIF_SECTION_HEADER_SIZE;
	if (keep) {
		*keep = malloc((size_t)s->size + 1);
		if (!*keep)
			return nectl_err_set(err, NECTL_ERR_EIF, "%s: out of memory", src->name);
		*keep_len = (size_t)s->size;
		(*keep)[s->size] = '\0';
	}
	for (uint64_t left = s->size; left > 0;) {
		size_t n = left < HASHER_CHUNK ? (size_t)left : HASHER_CHUNK;

		buf = hasher_buffer(st->hasher);
		if ((rc = src->read_at(src->ctx, off, buf, n)) < 0)
			return reader_fail_read(src, rc, off, n, err);
		hasher_submit(st->hasher, n, part);
		if (keep)
			memcpy(*keep + (s->size - left), buf, n);
		off += n;
		left -= n;
		st->done += n;
		if (st->progress && st->progress->fn)
			st->progress->fn(st->progress->ctx, st->done, st->total);
	}
	return 0;
}

static int reader_stream_all(const struct eif_source *src, const uint8_t *header,
			     struct eif_image *img, const struct eif_progress *progress,
			     struct nectl_err *err)
{
	struct reader_stream st = {.progress = progress};
	bool seen_ramdisk = false;
	uint64_t body_len;
	uint32_t body_crc;

	if (hasher_start(&st.hasher, err) < 0)
		return -1;
	for (unsigned i = 0; i < img->num_sections; i++)
		st.total += img->sections[i].size;
	for (unsigned i = 0; i < img->num_sections; i++) {
		bool ramdisk = img->sections[i].type == EIF_SECTION_RAMDISK;

		if (reader_stream_section(src, &st, img, i, ramdisk && !seen_ramdisk, err) < 0) {
			hasher_abort(st.hasher);
			return -1;
		}
		seen_ramdisk |= ramdisk;
	}
	if (hasher_pcrs(st.hasher, &img->pcrs, err) < 0) {
		hasher_abort(st.hasher);
		return -1;
	}
	hasher_finish(st.hasher, &body_crc, &body_len);
	img->crc_computed = (uint32_t)crc32_combine(crc32(0L, header, EIF_CRC_OFFSET), body_crc,
						    (z_off_t)body_len);
	return 0;
}

static int reader_read_section_headers(const struct eif_source *src, struct eif_image *img,
				       struct nectl_err *err)
{
	for (unsigned i = 0; i < img->num_sections; i++) {
		uint8_t sh[EIF_SECTION_HEADER_SIZE];
		int rc = src->read_at(src->ctx, img->sections[i].offset, sh, sizeof(sh));

		if (rc < 0)
			return reader_fail_read(src, rc, img->sections[i].offset, sizeof(sh), err);
		if (reader_check_section_header(src, i, sh, &img->sections[i], err) < 0)
			return -1;
	}
	return 0;
}

static int reader_signature_pcr8(const struct eif_source *src, struct eif_image *img,
				 struct nectl_err *err)
{
	uint8_t *cert = NULL, *cose = NULL;
	size_t cert_len, cose_len;
	int rc;

	if (!img->signature)
		return 0;
	if (eif_signature_parse(img->signature, img->signature_len, &cert, &cert_len, &cose,
				&cose_len, err) < 0) {
		char inner[NECTL_ERR_MSG_MAX] = "";

		if (err)
			memcpy(inner, err->msg, sizeof(inner));
		return nectl_err_set(err, NECTL_ERR_EIF, "%s: section %d: %s", src->name,
				     eif_image_find(img, EIF_SECTION_SIGNATURE), inner);
	}
	rc = eif_cert_pcr8(cert, cert_len, img->pcrs.pcr8, NULL);
	if (rc < 0)
		nectl_err_set(err, NECTL_ERR_EIF,
			      "%s: section %d: signature section: signing certificate is not a PEM "
			      "X.509 certificate",
			      src->name, eif_image_find(img, EIF_SECTION_SIGNATURE));
	img->pcrs.has_pcr8 = rc == 0;
	free(cert);
	free(cose);
	return rc;
}

/* The kernel would stop at a NUL, so what it ran would differ from what was measured. */
static int reader_check_cmdline(const struct eif_source *src, const struct eif_image *img,
				struct nectl_err *err)
{
	const char *nul = memchr(img->cmdline, '\0', img->cmdline_len);

	if (nul)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: section %d (cmdline) has a NUL byte at offset %zu",
				     src->name, eif_image_find(img, EIF_SECTION_CMDLINE),
				     (size_t)(nul - img->cmdline));
	return 0;
}

int eif_read(const struct eif_source *src, struct eif_image *img,
	     const struct eif_progress *progress, struct nectl_err *err)
{
	uint8_t header[EIF_HEADER_SIZE];
	int rc;

	memset(img, 0, sizeof(*img));
	img->file_size = src->size;
	if (src->size < EIF_HEADER_SIZE)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "%s: file is %llu bytes, shorter than the %u-byte EIF header",
				     src->name, (unsigned long long)src->size, EIF_HEADER_SIZE);
	if ((rc = src->read_at(src->ctx, 0, header, sizeof(header))) < 0)
		return reader_fail_read(src, rc, 0, sizeof(header), err);
	if (reader_parse_header(src, header, img, err) < 0 ||
	    reader_check_bounds(src, img, err) < 0 || reader_check_overlap(src, img, err) < 0 ||
	    reader_read_section_headers(src, img, err) < 0 ||
	    reader_check_layout(src, img, err) < 0 ||
	    reader_stream_all(src, header, img, progress, err) < 0 ||
	    reader_check_cmdline(src, img, err) < 0 ||
	    reader_signature_pcr8(src, img, err) < 0) {
		eif_image_free(img);
		return -1;
	}
	return 0;
}

int eif_read_file(const char *path, struct eif_image *img,
		  const struct eif_progress *progress, struct nectl_err *err)
{
	struct eif_source src;
	int rc;

	memset(img, 0, sizeof(*img));
	if (eif_source_open_file(&src, path, err) < 0)
		return -1;
	rc = eif_read(&src, img, progress, err);
	eif_source_close(&src);
	return rc;
}

void eif_image_free(struct eif_image *img)
{
	free(img->cmdline);
	free(img->metadata);
	free(img->signature);
	img->cmdline = NULL;
	img->metadata = NULL;
	img->signature = NULL;
}
