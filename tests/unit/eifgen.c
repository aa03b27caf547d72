/* eifgen.c: builds EIF test images from a description (see eifgen.h). The
 * layout is computed from the description alone, so tests can ask where a
 * section lands before deciding where to cut or what to overwrite. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "eif/be.h"
#include "eifgen.h"

#define GEN_TABLE_OFFSETS 28
#define GEN_TABLE_SIZES	  284

void eifgen_init(struct eifgen *g)
{
	memset(g, 0, sizeof(*g));
	memcpy(g->magic, EIF_MAGIC, 4);
	g->version = EIF_VERSION_CURRENT;
	g->default_mem = EIF_DEFAULT_MEM;
	g->default_cpus = EIF_DEFAULT_CPUS;
}

void eifgen_init_reference(struct eifgen *g)
{
	eifgen_init(g);
	eifgen_add_str(g, EIF_SECTION_KERNEL, "KERNEL");
	eifgen_add_str(g, EIF_SECTION_CMDLINE, "console=ttyS0");
	eifgen_add_str(g, EIF_SECTION_METADATA, EIFGEN_REF_METADATA_JSON);
	eifgen_add_str(g, EIF_SECTION_RAMDISK, "BOOTSTRAP");
	eifgen_add_str(g, EIF_SECTION_RAMDISK, "APP");
}

struct eifgen_section *eifgen_insert(struct eifgen *g, unsigned at, uint16_t type, const void *data,
				     uint64_t len)
{
	struct eifgen_section *s;

	if (g->count == EIF_MAX_SECTIONS || at > g->count) {
		fprintf(stderr, "eifgen: cannot insert section %u of %u\n", at, g->count);
		abort();
	}
	memmove(&g->sec[at + 1], &g->sec[at], (g->count - at) * sizeof(g->sec[0]));
	g->count++;
	s = &g->sec[at];
	memset(s, 0, sizeof(*s));
	s->type = type;
	s->data = data;
	s->len = len;
	return s;
}

struct eifgen_section *eifgen_add(struct eifgen *g, uint16_t type, const void *data, uint64_t len)
{
	return eifgen_insert(g, g->count, type, data, len);
}

struct eifgen_section *eifgen_add_str(struct eifgen *g, uint16_t type, const char *text)
{
	return eifgen_add(g, type, text, strlen(text));
}

void eifgen_remove(struct eifgen *g, unsigned at)
{
	if (at >= g->count)
		abort();
	g->count--;
	memmove(&g->sec[at], &g->sec[at + 1], (g->count - at) * sizeof(g->sec[0]));
}

uint64_t eifgen_section_offset(const struct eifgen *g, unsigned i)
{
	uint64_t off = EIF_HEADER_SIZE;

	for (unsigned k = 0; k < i; k++)
		off += g->sec[k].gap + EIF_SECTION_HEADER_SIZE + g->sec[k].len;
	return off + g->sec[i].gap;
}

uint64_t eifgen_data_offset(const struct eifgen *g, unsigned i)
{
	return eifgen_section_offset(g, i) + EIF_SECTION_HEADER_SIZE;
}

uint64_t eifgen_size(const struct eifgen *g)
{
	if (g->count == 0)
		return EIF_HEADER_SIZE;
	return eifgen_data_offset(g, g->count - 1) + g->sec[g->count - 1].len;
}

static uint64_t gen_output_size(const struct eifgen *g)
{
	uint64_t size = eifgen_size(g);

	return g->truncate && g->truncate_to < size ? g->truncate_to : size;
}

static void gen_section_header(const struct eifgen_section *s, uint8_t sh[EIF_SECTION_HEADER_SIZE])
{
	be16_put(sh, s->type);
	be16_put(sh + 2, s->flags);
	be64_put(sh + 4, s->set_sh_size ? s->sh_size : s->len);
}

static uLong gen_crc_data(uLong crc, const struct eifgen_section *s)
{
	static const uint8_t zeros[1 << 16];
	const uint8_t *p = s->data;
	uint64_t left = s->len;

	while (left > 0) {
		uInt n = left < sizeof(zeros) ? (uInt)left : (uInt)sizeof(zeros);

		crc = crc32(crc, p ? p : zeros, n);
		if (p)
			p += n;
		left -= n;
	}
	return crc;
}

/* The CRC as nitro-cli defines it: header up to the CRC field, then each
 * section's header and data in table order; gaps are not covered. */
static uint32_t gen_crc(const struct eifgen *g, const uint8_t *h)
{
	uLong crc = crc32(0L, h, EIF_CRC_OFFSET);

	for (unsigned i = 0; i < g->count; i++) {
		uint8_t sh[EIF_SECTION_HEADER_SIZE];

		gen_section_header(&g->sec[i], sh);
		crc = crc32(crc, sh, sizeof(sh));
		crc = gen_crc_data(crc, &g->sec[i]);
	}
	return (uint32_t)crc;
}

static void gen_header(const struct eifgen *g, uint8_t h[EIF_HEADER_SIZE])
{
	uint32_t crc;

	memset(h, 0, EIF_HEADER_SIZE);
	memcpy(h, g->magic, 4);
	be16_put(h + 4, g->version);
	be16_put(h + 6, g->flags);
	be64_put(h + 8, g->default_mem);
	be64_put(h + 16, g->default_cpus);
	be16_put(h + 26, g->set_num_sections ? g->num_sections : (uint16_t)g->count);
	for (unsigned i = 0; i < g->count; i++) {
		const struct eifgen_section *s = &g->sec[i];

		be64_put(h + GEN_TABLE_OFFSETS + 8 * i,
			 s->set_offset ? s->offset : eifgen_section_offset(g, i));
		be64_put(h + GEN_TABLE_SIZES + 8 * i, s->set_size ? s->size : s->len);
	}
	crc = gen_crc(g, h);
	be32_put(h + EIF_CRC_OFFSET, g->bad_crc ? crc ^ 1u : crc);
}

/* Copies [off, off + len) of a piece into the output, clipped to out_len. */
static void gen_place(uint8_t *out, uint64_t out_len, uint64_t off, const void *src, uint64_t len)
{
	if (off >= out_len)
		return;
	memcpy(out + off, src, (size_t)(len < out_len - off ? len : out_len - off));
}

uint8_t *eifgen_build(const struct eifgen *g, size_t *len)
{
	uint8_t h[EIF_HEADER_SIZE];
	uint64_t size = gen_output_size(g);
	uint8_t *out = calloc(1, size ? (size_t)size : 1);

	if (!out)
		abort();
	gen_header(g, h);
	gen_place(out, size, 0, h, sizeof(h));
	for (unsigned i = 0; i < g->count; i++) {
		const struct eifgen_section *s = &g->sec[i];
		uint8_t sh[EIF_SECTION_HEADER_SIZE];

		gen_section_header(s, sh);
		gen_place(out, size, eifgen_section_offset(g, i), sh, sizeof(sh));
		if (s->data)
			gen_place(out, size, eifgen_data_offset(g, i), s->data, s->len);
	}
	*len = (size_t)size;
	return out;
}

static int gen_pwrite(int fd, uint64_t limit, uint64_t off, const void *buf, uint64_t len)
{
	const uint8_t *p = buf;

	if (off >= limit)
		return 0;
	if (len > limit - off)
		len = limit - off;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, (size_t)len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int gen_write_sections(const struct eifgen *g, int fd, uint64_t size)
{
	for (unsigned i = 0; i < g->count; i++) {
		const struct eifgen_section *s = &g->sec[i];
		uint8_t sh[EIF_SECTION_HEADER_SIZE];

		gen_section_header(s, sh);
		if (gen_pwrite(fd, size, eifgen_section_offset(g, i), sh, sizeof(sh)) < 0)
			return -1;
		if (s->data && gen_pwrite(fd, size, eifgen_data_offset(g, i), s->data, s->len) < 0)
			return -1;
	}
	return 0;
}

int eifgen_write_file(const struct eifgen *g, const char *path)
{
	uint8_t h[EIF_HEADER_SIZE];
	uint64_t size = gen_output_size(g);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = -1, e;

	if (fd < 0)
		return -1;
	gen_header(g, h);
	/* ftruncate first: whatever is not written stays a hole of zeros. */
	if (ftruncate(fd, (off_t)size) == 0 && gen_pwrite(fd, size, 0, h, sizeof(h)) == 0 &&
	    gen_write_sections(g, fd, size) == 0)
		rc = 0;
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* Minimal CBOR writer: enough for serde's Vec<Struct{Vec<u8>, Vec<u8>}>. */
struct gen_cbor {
	uint8_t *buf;
	size_t len, cap;
};

static void gen_cbor_bytes(struct gen_cbor *c, const void *p, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = 2 * (c->len + n) + 64;
		c->buf = realloc(c->buf, c->cap);
		if (!c->buf)
			abort();
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

/* Head of a data item: major type and argument, shortest form. */
static void gen_cbor_head(struct gen_cbor *c, unsigned major, uint64_t v)
{
	uint8_t h[9];
	size_t n;

	h[0] = (uint8_t)(major << 5);
	if (v < 24) {
		h[0] |= (uint8_t)v;
		n = 1;
	} else if (v <= 0xff) {
		h[0] |= 24;
		h[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] |= 25;
		be16_put(h + 1, (uint16_t)v);
		n = 3;
	} else if (v <= 0xffffffff) {
		h[0] |= 26;
		be32_put(h + 1, (uint32_t)v);
		n = 5;
	} else {
		h[0] |= 27;
		be64_put(h + 1, v);
		n = 9;
	}
	gen_cbor_bytes(c, h, n);
}

static void gen_cbor_text(struct gen_cbor *c, const char *text)
{
	gen_cbor_head(c, 3, strlen(text));
	gen_cbor_bytes(c, text, strlen(text));
}

/* serde's Vec<u8>: an array of unsigned integers. */
static void gen_cbor_u8_array(struct gen_cbor *c, const uint8_t *p, size_t n)
{
	gen_cbor_head(c, 4, n);
	for (size_t i = 0; i < n; i++)
		gen_cbor_head(c, 0, p[i]);
}

uint8_t *eifgen_signature_section(const char *cert_key, const void *cert, size_t cert_len,
				  const char *sig_key, const void *cose, size_t cose_len,
				  size_t *len)
{
	struct gen_cbor c = {0};

	gen_cbor_head(&c, 4, 1);
	gen_cbor_head(&c, 5, 2);
	gen_cbor_text(&c, cert_key);
	gen_cbor_u8_array(&c, cert, cert_len);
	gen_cbor_text(&c, sig_key);
	gen_cbor_u8_array(&c, cose, cose_len);
	*len = c.len;
	return c.buf;
}

static X509 *gen_self_signed(EVP_PKEY *key)
{
	static const unsigned char cn[] = "nectl test signer";
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	bool ok = x && name;

	ok = ok && X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, -1, -1, 0);
	ok = ok && X509_set_subject_name(x, name) && X509_set_issuer_name(x, name);
	ok = ok && ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20240101000000Z");
	ok = ok && ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "21240101000000Z");
	ok = ok && X509_set_pubkey(x, key) && X509_sign(x, key, EVP_sha384());
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int gen_write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	FILE *fp = fopen(path, "w");
	int ok;

	if (!fp)
		return -1;
	if (cert)
		ok = PEM_write_X509(fp, cert);
	else
		ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
	return fclose(fp) == 0 && ok ? 0 : -1;
}

int eifgen_write_signer(const char *cert_path, const char *key_path)
{
	EVP_PKEY *key = EVP_EC_gen("P-384");
	X509 *cert = key ? gen_self_signed(key) : NULL;
	int rc = -1;

	if (cert && gen_write_pem(cert_path, cert, NULL) == 0 &&
	    gen_write_pem(key_path, NULL, key) == 0)
		rc = 0;
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}
