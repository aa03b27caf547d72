/* test_malformed.c: eif_read against hostile and odd images. Every malformed
 * EIF must fail with the right error code and a message that names the file
 * and the problem; the oddities nitro-cli tolerates (v2, unknown flag bits, a
 * bad CRC, gaps between sections) must read. Images come from eifgen. */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "eifgen.h"
#include "nectl/eif.h"
#include "nectl/eif_sign.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MEM_NAME      "mem.eif"

#if defined(__SANITIZE_ADDRESS__)
#define MAL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAL_ASAN 1
#endif
#endif

/* A scratch directory for the file-source cases, made once per run. */
static char mal_dir[256];

static void mal_path(char *out, size_t len, const char *leaf)
{
	snprintf(out, len, "%s/%s", mal_dir, leaf);
}

static void mal_write(const char *path, const void *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(len ? fwrite(buf, 1, len, fp) : 0, len);
	assert_int_equal(fclose(fp), 0);
}

/* ---- checking failures ---- */

static void mal_check_err(const struct nectl_err *err, const char *name, enum nectl_kind code,
			  const char *fragment)
{
	if (err->kind != code || !strstr(err->msg, fragment) ||
	    strncmp(err->msg, name, strlen(name)) != 0)
		print_error("got  %d \"%s\"\nwant %d \"%s: ...%s...\"\n", err->kind, err->msg, code,
			    name, fragment);
	assert_int_equal(err->kind, code);
	assert_non_null(strstr(err->msg, fragment));
	/* every message starts with the file it is about */
	assert_int_equal(strncmp(err->msg, name, strlen(name)), 0);
}

/* A failed read leaves nothing behind: the image is empty and freeing it
 * again is harmless. */
static void mal_check_empty(struct eif_image *img)
{
	assert_null(img->cmdline);
	assert_null(img->metadata);
	assert_null(img->signature);
	eif_image_free(img);
}

static void mal_fail_mem(const uint8_t *buf, size_t len, enum nectl_kind code, const char *fragment)
{
	struct eif_source src;
	struct eif_image img;
	struct nectl_err err = {0};

	eif_source_from_memory(&src, buf, len, MEM_NAME);
	assert_int_equal(eif_read(&src, &img, NULL, &err), -1);
	mal_check_err(&err, MEM_NAME, code, fragment);
	mal_check_empty(&img);
	/* without an error sink the reader must fail the same way, silently */
	assert_int_equal(eif_read(&src, &img, NULL, NULL), -1);
	mal_check_empty(&img);
}

static void mal_fail_file(const uint8_t *buf, size_t len, enum nectl_kind code,
			  const char *fragment)
{
	char path[512];
	struct eif_image img;
	struct nectl_err err = {0};

	mal_path(path, sizeof(path), "malformed.eif");
	mal_write(path, buf, len);
	assert_int_equal(eif_read_file(path, &img, NULL, &err), -1);
	mal_check_err(&err, path, code, fragment);
	mal_check_empty(&img);
	unlink(path);
}

/* ---- the malformed cases: each edits the reference image ---- */

struct mal_case {
	const char *name;
	/* Edits g (the reference image on entry), using the case's index, arg
	 * and text; returns memory that must outlive the build, or NULL. */
	void *(*make)(struct eifgen *g, const struct mal_case *c);
	unsigned index;
	uint64_t arg, arg2;
	const char *text;
	enum nectl_kind code;
	const char *fragment;
	bool via_file; /* also read through a real file */
};

static void *mal_cut(struct eifgen *g, uint64_t at)
{
	g->truncate = true;
	g->truncate_to = at;
	return NULL;
}

static void *mk_cut(struct eifgen *g, const struct mal_case *c)
{
	return mal_cut(g, c->arg);
}

/* Cut arg bytes into section index's 12-byte header. */
static void *mk_cut_header(struct eifgen *g, const struct mal_case *c)
{
	return mal_cut(g, eifgen_section_offset(g, c->index) + c->arg);
}

/* Cut arg bytes into section index's data. */
static void *mk_cut_data(struct eifgen *g, const struct mal_case *c)
{
	return mal_cut(g, eifgen_data_offset(g, c->index) + c->arg);
}

static void *mk_magic(struct eifgen *g, const struct mal_case *c)
{
	memcpy(g->magic, c->text, 4);
	return NULL;
}

static void *mk_version(struct eifgen *g, const struct mal_case *c)
{
	g->version = (uint16_t)c->arg;
	return NULL;
}

static void *mk_num_sections(struct eifgen *g, const struct mal_case *c)
{
	g->set_num_sections = true;
	g->num_sections = (uint16_t)c->arg;
	return NULL;
}

/* The header table claims section index is at offset arg. */
static void *mk_offset(struct eifgen *g, const struct mal_case *c)
{
	g->sec[c->index].set_offset = true;
	g->sec[c->index].offset = c->arg;
	return NULL;
}

/* The header table claims section index holds arg bytes. */
static void *mk_size(struct eifgen *g, const struct mal_case *c)
{
	g->sec[c->index].set_size = true;
	g->sec[c->index].size = c->arg;
	return NULL;
}

/* Offset arg and size arg2 in the header table. */
static void *mk_offset_size(struct eifgen *g, const struct mal_case *c)
{
	mk_offset(g, c);
	g->sec[c->index].set_size = true;
	g->sec[c->index].size = c->arg2;
	return NULL;
}

/* The section header of section index claims arg bytes. */
static void *mk_sh_size(struct eifgen *g, const struct mal_case *c)
{
	g->sec[c->index].set_sh_size = true;
	g->sec[c->index].sh_size = c->arg;
	return NULL;
}

static void *mk_type(struct eifgen *g, const struct mal_case *c)
{
	g->sec[c->index].type = (uint16_t)c->arg;
	return NULL;
}

static void *mk_flags(struct eifgen *g, const struct mal_case *c)
{
	g->sec[c->index].flags = (uint16_t)c->arg;
	return NULL;
}

/* Section index becomes arg zero bytes. */
static void *mk_zeros(struct eifgen *g, const struct mal_case *c)
{
	g->sec[c->index].data = NULL;
	g->sec[c->index].len = c->arg;
	return NULL;
}

/* A section of type arg holding text (NULL: arg2 zero bytes) goes to index. */
static void *mk_insert(struct eifgen *g, const struct mal_case *c)
{
	eifgen_insert(g, c->index, (uint16_t)c->arg, c->text,
		      c->text ? strlen(c->text) : c->arg2);
	return NULL;
}

/* Sections index and index + 1 (if arg) go. */
static void *mk_remove(struct eifgen *g, const struct mal_case *c)
{
	if (c->arg)
		eifgen_remove(g, c->index + 1);
	eifgen_remove(g, c->index);
	return NULL;
}

static void *mk_no_kernel(struct eifgen *g, const struct mal_case *c)
{
	eifgen_remove(g, EIFGEN_REF_RAMDISK1);
	eifgen_remove(g, EIFGEN_REF_RAMDISK0);
	eifgen_remove(g, EIFGEN_REF_KERNEL);
	return NULL;
}

static void *mk_ramdisk_first(struct eifgen *g, const struct mal_case *c)
{
	eifgen_remove(g, EIFGEN_REF_RAMDISK0);
	eifgen_insert(g, 0, EIF_SECTION_RAMDISK, "BOOTSTRAP", 9);
	return NULL;
}

/* The cmdline holds text with a NUL at byte arg (the kernel would stop there). */
static void *mk_cmdline_nul(struct eifgen *g, const struct mal_case *c)
{
	uint8_t *buf = malloc(strlen(c->text));

	memcpy(buf, c->text, strlen(c->text));
	buf[c->arg] = '\0';
	g->sec[EIFGEN_REF_CMDLINE].data = buf;
	g->sec[EIFGEN_REF_CMDLINE].len = strlen(c->text);
	return buf;
}

/* A version-2 image (no metadata) that carries a signature section anyway. */
static void *mk_v2_signed(struct eifgen *g, const struct mal_case *c)
{
	g->version = 2;
	eifgen_remove(g, EIFGEN_REF_METADATA);
	eifgen_add_str(g, EIF_SECTION_SIGNATURE, "x");
	return NULL;
}

static void *mk_two_signatures(struct eifgen *g, const struct mal_case *c)
{
	eifgen_add_str(g, EIF_SECTION_SIGNATURE, "a");
	eifgen_add_str(g, EIF_SECTION_SIGNATURE, "b");
	return NULL;
}

/* A signature section of arg raw bytes from text. */
static void *mk_sig_raw(struct eifgen *g, const struct mal_case *c)
{
	eifgen_add(g, EIF_SECTION_SIGNATURE, c->text, c->arg);
	return NULL;
}

/* A well-formed signature section whose certificate bytes are text, under
 * the given key names; the COSE bytes are an empty COSE_Sign1 shape. */
static void *mal_sig_built(struct eifgen *g, const char *cert_key, const char *cert,
			   const char *sig_key)
{
	size_t len;
	uint8_t *sig = eifgen_signature_section(cert_key, cert, strlen(cert), sig_key,
						"\x84\x40\xa0\x40\x40", 5, &len);

	eifgen_add(g, EIF_SECTION_SIGNATURE, sig, len);
	return sig;
}

static void *mk_sig_cert(struct eifgen *g, const struct mal_case *c)
{
	return mal_sig_built(g, "signing_certificate", c->text, "signature");
}

static void *mk_sig_wrong_keys(struct eifgen *g, const struct mal_case *c)
{
	return mal_sig_built(g, "certificate", "-----BEGIN", "sig");
}

static void *mk_sig_keys_swapped(struct eifgen *g, const struct mal_case *c)
{
	return mal_sig_built(g, "signature", "-----BEGIN", "signing_certificate");
}

#define K  EIFGEN_REF_KERNEL
#define C  EIFGEN_REF_CMDLINE
#define M  EIFGEN_REF_METADATA
#define R0 EIFGEN_REF_RAMDISK0
#define R1 EIFGEN_REF_RAMDISK1
/* A signature section: [{"signing_certificate": [256], "signature": []}] */
#define SIG_CERT_NOT_BYTES "\x81\xa2\x73signing_certificate\x81\x19\x01\x00\x69signature\x80"

/* The reference image: kernel @548 (6 bytes), cmdline @566 (13), metadata
 * @591 (221), ramdisk0 @824 (9), ramdisk1 @845 (3); 860 bytes in all. */
static const struct mal_case mal_cases[] = {
    /* truncated at each structural boundary */
    {"trunc_empty", mk_cut, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "file is 0 bytes, shorter than the 548-byte EIF header", true},
    {"trunc_mid_magic", mk_cut, 0, 2, 0, NULL, NECTL_ERR_EIF, "file is 2 bytes, shorter", false},
    {"trunc_547", mk_cut, 0, 547, 0, NULL, NECTL_ERR_EIF, "file is 547 bytes, shorter", false},
    {"trunc_after_header", mk_cut, 0, 548, 0, NULL, NECTL_ERR_EIF,
     "section 0 at offset 548 with size 6 runs past the end of the file (548 bytes)", true},
    {"trunc_mid_section_header", mk_cut_header, C, 6, 0, NULL, NECTL_ERR_EIF,
     "section 1 at offset 566 with size 13 runs past the end of the file (572 bytes)", false},
    {"trunc_mid_kernel", mk_cut_data, K, 3, 0, NULL, NECTL_ERR_EIF,
     "section 0 at offset 548 with size 6 runs past the end of the file (563 bytes)", false},
    {"trunc_mid_cmdline", mk_cut_data, C, 5, 0, NULL, NECTL_ERR_EIF,
     "section 1 at offset 566 with size 13 runs past the end of the file (583 bytes)", false},
    {"trunc_mid_metadata", mk_cut_data, M, 100, 0, NULL, NECTL_ERR_EIF,
     "section 2 at offset 591 with size 221 runs past the end of the file (703 bytes)", false},
    {"trunc_mid_ramdisk0", mk_cut_data, R0, 1, 0, NULL, NECTL_ERR_EIF,
     "section 3 at offset 824 with size 9 runs past the end of the file (837 bytes)", false},
    {"trunc_last_byte", mk_cut_data, R1, 2, 0, NULL, NECTL_ERR_EIF,
     "section 4 at offset 845 with size 3 runs past the end of the file (859 bytes)", true},
    /* the header */
    {"bad_magic", mk_magic, 0, 0, 0, "EIF.", NECTL_ERR_EIF,
     "bad magic 45 49 46 2e (expected 2e 65 69 66", true},
    {"version_0", mk_version, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "unsupported EIF version 0 (supported: 2 to 4)", false},
    {"version_1", mk_version, 0, 1, 0, NULL, NECTL_ERR_EIF,
     "unsupported EIF version 1 (supported: 2 to 4)", false},
    {"version_5", mk_version, 0, 5, 0, NULL, NECTL_ERR_EIF,
     "unsupported EIF version 5 (supported: 2 to 4)", false},
    {"num_sections_0", mk_num_sections, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "header declares 0 sections (must be 1 to 32)", false},
    {"num_sections_33", mk_num_sections, 0, 33, 0, NULL, NECTL_ERR_EIF,
     "header declares 33 sections (must be 1 to 32)", false},
    /* the section table */
    {"overlap", mk_offset, C, 560, 0, NULL, NECTL_ERR_EIF,
     "sections 0 [548, 566) and 1 [560, 585) overlap", true},
    {"overlap_same_offset", mk_offset, R1, 824, 0, NULL, NECTL_ERR_EIF,
     "sections 3 [824, 845) and 4 [824, 839) overlap", false},
    {"overlap_header", mk_offset, K, 500, 0, NULL, NECTL_ERR_EIF,
     "section 0 at offset 500 overlaps the 548-byte header", false},
    {"offset_zero", mk_offset, M, 0, 0, NULL, NECTL_ERR_EIF,
     "section 2 at offset 0 overlaps the 548-byte header", false},
    {"offset_past_eof", mk_offset, R1, 10000, 0, NULL, NECTL_ERR_EIF,
     "section 4 at offset 10000 with size 3 runs past the end of the file (860 bytes)", false},
    /* offset + 12 + size wraps around 2^64 to a small number */
    {"offset_size_wrap", mk_offset_size, R1, UINT64_MAX - 7, UINT64_MAX, NULL, NECTL_ERR_EIF,
     "section 4 at offset 18446744073709551608 with size 18446744073709551615 runs past the end",
     false},
    {"size_wrap", mk_size, R0, UINT64_MAX, 0, NULL, NECTL_ERR_EIF,
     "section 3 at offset 824 with size 18446744073709551615 runs past the end", false},
    {"size_2_63", mk_size, K, 1ull << 63, 0, NULL, NECTL_ERR_EIF,
     "section 0 at offset 548 with size 9223372036854775808 runs past the end", false},
    {"size_one_past_eof", mk_size, R1, 4, 0, NULL, NECTL_ERR_EIF,
     "section 4 at offset 845 with size 4 runs past the end of the file (860 bytes)", false},
    /* section headers */
    {"size_mismatch_section_header", mk_sh_size, C, 14, 0, NULL, NECTL_ERR_EIF,
     "section 1 (cmdline) size mismatch: header table says 13, section header says 14", false},
    {"size_mismatch_table", mk_size, R0, 8, 0, NULL, NECTL_ERR_EIF,
     "section 3 (ramdisk) size mismatch: header table says 8, section header says 9", false},
    {"type_0", mk_type, M, 0, 0, NULL, NECTL_ERR_EIF,
     "section 2 at offset 591 has invalid type 0 (valid: 1 to 5)", false},
    {"type_6", mk_type, M, 6, 0, NULL, NECTL_ERR_EIF,
     "section 2 at offset 591 has invalid type 6 (valid: 1 to 5)", false},
    {"type_ffff", mk_type, R1, 0xffff, 0, NULL, NECTL_ERR_EIF,
     "section 4 at offset 845 has invalid type 65535", false},
    {"section_flags", mk_flags, K, 1, 0, NULL, NECTL_ERR_EIF,
     "section 0 (kernel) has reserved flags 0x0001 set", false},
    {"section_flags_high", mk_flags, R0, 0x8000, 0, NULL, NECTL_ERR_EIF,
     "section 3 (ramdisk) has reserved flags 0x8000 set", false},
    /* which sections, how many, in what order */
    {"two_kernels", mk_insert, 1, EIF_SECTION_KERNEL, 0, "KERNEL2", NECTL_ERR_EIF,
     "section 1 is a second kernel section (sections 0 and 1; exactly 1 allowed)", true},
    {"no_kernel", mk_no_kernel, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "no kernel section (exactly 1 required)", false},
    /* counts are checked before order, so a missing kernel is named as such */
    {"no_kernel_with_ramdisk", mk_remove, K, 0, 0, NULL, NECTL_ERR_EIF,
     "no kernel section (exactly 1 required)", false},
    {"two_cmdlines", mk_insert, R1 + 1, EIF_SECTION_CMDLINE, 0, "quiet", NECTL_ERR_EIF,
     "section 5 is a second cmdline section (sections 1 and 5; exactly 1 allowed)", false},
    {"no_cmdline", mk_remove, C, 0, 0, NULL, NECTL_ERR_EIF,
     "no cmdline section (exactly 1 required)", false},
    {"no_ramdisk", mk_remove, R0, 1, 0, NULL, NECTL_ERR_EIF,
     "no ramdisk section (at least 1 required)", false},
    {"ramdisk_before_kernel", mk_ramdisk_first, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "section 0 (ramdisk) comes before the kernel section 1", false},
    {"two_signatures", mk_two_signatures, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "section 6 is a second signature section (sections 5 and 6; at most 1 allowed)", false},
    {"two_metadata", mk_insert, R0, EIF_SECTION_METADATA, 0, "{}", NECTL_ERR_EIF,
     "section 3 is a second metadata section (sections 2 and 3; at most 1 allowed)", false},
    {"cmdline_nul", mk_cmdline_nul, 0, 7, 0, "console=ttyS0", NECTL_ERR_EIF,
     "section 1 (cmdline) has a NUL byte at offset 7", false},
    {"v2_signed", mk_v2_signed, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "section 4 is a signature, which EIF version 2 does not allow (version 3 or later)", false},
    {"v4_no_metadata", mk_remove, M, 0, 0, NULL, NECTL_ERR_EIF,
     "no metadata section (required by EIF version 4)", false},
    /* sections over the caps on what the reader copies out */
    {"cmdline_oversize", mk_zeros, C, EIF_CMDLINE_MAX + 1, 0, NULL, NECTL_ERR_EIF,
     "section 1 (cmdline) is 65537 bytes (at most 65536 allowed)", false},
    {"metadata_oversize", mk_zeros, M, EIF_METADATA_MAX + 1, 0, NULL, NECTL_ERR_EIF,
     "section 2 (metadata) is 1048577 bytes (at most 1048576 allowed)", false},
    {"signature_oversize", mk_insert, R1 + 1, EIF_SECTION_SIGNATURE, EIF_SIGNATURE_MAX + 1, NULL,
     NECTL_ERR_EIF, "section 5 (signature) is 32769 bytes (at most 32768 allowed)", false},
    /* signature sections that are not what nitro-cli writes */
    {"sig_garbage", mk_sig_raw, 0, 9, 0, "\xfc garbage", NECTL_ERR_EIF,
     "signature section: not valid CBOR", false},
    {"sig_empty_section", mk_sig_raw, 0, 0, 0, "", NECTL_ERR_EIF,
     "signature section: truncated CBOR", false},
    {"sig_truncated_cbor", mk_sig_raw, 0, 2, 0, "\x81\xa2", NECTL_ERR_EIF,
     "signature section: CBOR length exceeds the data", false},
    {"sig_indefinite", mk_sig_raw, 0, 2, 0, "\x9f\xff", NECTL_ERR_EIF,
     "signature section: indefinite-length CBOR is not allowed", false},
    {"sig_trailing_bytes", mk_sig_raw, 0, 2, 0, "\x80\x00", NECTL_ERR_EIF,
     "signature section: trailing bytes after the CBOR item", false},
    {"sig_not_array", mk_sig_raw, 0, 1, 0, "\xa0", NECTL_ERR_EIF,
     "signature section: not a CBOR array", false},
    {"sig_empty_array", mk_sig_raw, 0, 1, 0, "\x80", NECTL_ERR_EIF,
     "signature section: empty array", false},
    {"sig_wrong_keys", mk_sig_wrong_keys, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "signature section: element 0: keys are not \"signing_certificate\" then \"signature\"",
     false},
    {"sig_keys_swapped", mk_sig_keys_swapped, 0, 0, 0, NULL, NECTL_ERR_EIF,
     "keys are not \"signing_certificate\" then \"signature\"", false},
    {"sig_cert_not_pem", mk_sig_cert, 0, 0, 0, "this is not a certificate", NECTL_ERR_EIF,
     "signature section: signing certificate is not a PEM X.509 certificate", true},
    {"sig_cert_empty", mk_sig_cert, 0, 0, 0, "", NECTL_ERR_EIF,
     "element 0: \"signing_certificate\" is empty", false},
    {"sig_cert_not_bytes", mk_sig_raw, 0, sizeof(SIG_CERT_NOT_BYTES) - 1, 0, SIG_CERT_NOT_BYTES,
     NECTL_ERR_EIF, "element 0: \"signing_certificate\" holds an element that is not a byte",
     false},
};

#undef K
#undef C
#undef M
#undef R0
#undef R1

static void test_malformed_case(void **state)
{
	const struct mal_case *c = *state;
	struct eifgen g;
	uint8_t *buf;
	size_t len;
	void *owned;

	eifgen_init_reference(&g);
	owned = c->make(&g, c);
	buf = eifgen_build(&g, &len);
	mal_fail_mem(buf, len, c->code, c->fragment);
	if (c->via_file)
		mal_fail_file(buf, len, c->code, c->fragment);
	free(buf);
	free(owned);
}

/* ---- files that cannot be read ---- */

static void test_file_missing(void **state)
{
	char path[512];
	struct eif_image img;
	struct nectl_err err = {0};

	mal_path(path, sizeof(path), "does-not-exist.eif");
	assert_int_equal(eif_read_file(path, &img, NULL, &err), -1);
	mal_check_err(&err, path, NECTL_ERR_FILE, "cannot open: No such file or directory");
	mal_check_empty(&img);
}

static void test_file_directory(void **state)
{
	struct eif_image img;
	struct nectl_err err = {0};

	assert_int_equal(eif_read_file(mal_dir, &img, NULL, &err), -1);
	mal_check_err(&err, mal_dir, NECTL_ERR_FILE, "not a regular file");
	mal_check_empty(&img);
}

/* A source that cannot read the bytes [bad, bad + bad_len), like a disk
 * with a bad sector. */
struct mal_failing_source {
	struct eif_source src;
	struct eif_source mem;
	uint64_t bad, bad_len;
};

static int mal_failing_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct mal_failing_source *f = ctx;

	if (off < f->bad + f->bad_len && off + len > f->bad)
		return -EIO;
	return f->mem.read_at(f->mem.ctx, off, buf, len);
}

static void mal_fail_at(uint64_t bad, const char *fragment)
{
	struct mal_failing_source f;
	struct eifgen g;
	struct eif_image img;
	struct nectl_err err = {0};
	uint8_t *buf;
	size_t len;

	eifgen_init_reference(&g);
	buf = eifgen_build(&g, &len);
	eif_source_from_memory(&f.mem, buf, len, MEM_NAME);
	f.src = f.mem;
	f.src.read_at = mal_failing_read;
	f.src.ctx = &f;
	f.bad = bad;
	f.bad_len = 1;
	assert_int_equal(eif_read(&f.src, &img, NULL, &err), -1);
	mal_check_err(&err, MEM_NAME, NECTL_ERR_FILE, fragment);
	mal_check_empty(&img);
	free(buf);
}

static void test_read_error_header(void **state)
{
	mal_fail_at(0, "cannot read 548 bytes at offset 0: Input/output error");
}

/* Fails inside the metadata, after the cmdline has been copied out: the
 * copies must be released (ASan's leak check watches this). */
static void test_read_error_mid_stream(void **state)
{
	mal_fail_at(700, "cannot read 221 bytes at offset 603: Input/output error");
}

/* ---- images that must read ---- */

static int mal_read_mem(const uint8_t *buf, size_t len, struct eif_image *img)
{
	struct eif_source src;
	struct nectl_err err = {0};
	int rc;

	eif_source_from_memory(&src, buf, len, MEM_NAME);
	rc = eif_read(&src, img, NULL, &err);
	if (rc < 0)
		print_error("eif_read: %d %s\n", err.kind, err.msg);
	return rc;
}

static void mal_read_gen(const struct eifgen *g, struct eif_image *img)
{
	size_t len;
	uint8_t *buf = eifgen_build(g, &len);

	assert_int_equal(mal_read_mem(buf, len, img), 0);
	free(buf);
}

static void mal_assert_pcr(const uint8_t pcr[EIF_HASH_SIZE], const char *hex)
{
	char got[2 * EIF_HASH_SIZE + 1];

	eif_hex(pcr, EIF_HASH_SIZE, got);
	assert_string_equal(got, hex);
}

/* The generator itself is checked against the published vector, so every
 * case above starts from a known-good image. */
static void test_reference_vector(void **state)
{
	static const uint64_t offsets[] = {548, 566, 591, 824, 845};
	static const uint64_t sizes[] = {6, 13, 221, 9, 3};
	struct eifgen g;
	struct eif_image img;
	uint8_t *buf;
	size_t len;

	eifgen_init_reference(&g);
	buf = eifgen_build(&g, &len);
	assert_int_equal(len, EIFGEN_REF_SIZE);
	assert_memory_equal(buf, "\x2e\x65\x69\x66\x00\x04\x00\x00", 8);
	assert_int_equal(mal_read_mem(buf, len, &img), 0);
	assert_int_equal(img.version, 4);
	assert_int_equal(img.arch, EIF_ARCH_X86_64);
	assert_int_equal(img.num_sections, 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(img.sections[i].offset, offsets[i]);
		assert_int_equal(img.sections[i].size, sizes[i]);
	}
	assert_int_equal(img.crc_stored, EIFGEN_REF_CRC);
	assert_int_equal(img.crc_computed, EIFGEN_REF_CRC);
	mal_assert_pcr(img.pcrs.pcr0, EIFGEN_REF_PCR0);
	mal_assert_pcr(img.pcrs.pcr1, EIFGEN_REF_PCR1);
	mal_assert_pcr(img.pcrs.pcr2, EIFGEN_REF_PCR2);
	assert_false(img.pcrs.has_pcr8);
	assert_string_equal(img.cmdline, "console=ttyS0");
	assert_int_equal(img.metadata_len, strlen(EIFGEN_REF_METADATA_JSON));
	assert_memory_equal(img.metadata, EIFGEN_REF_METADATA_JSON, img.metadata_len);
	assert_null(img.signature);
	eif_image_free(&img);
	free(buf);
}

static void test_v2_without_metadata(void **state)
{
	struct eifgen g;
	struct eif_image img;

	eifgen_init_reference(&g);
	eifgen_remove(&g, EIFGEN_REF_METADATA);
	g.version = 2;
	mal_read_gen(&g, &img);
	assert_int_equal(img.version, 2);
	assert_int_equal(img.num_sections, 4);
	assert_null(img.metadata);
	assert_int_equal(img.crc_stored, img.crc_computed);
	/* metadata is not measured, so dropping it keeps the PCRs */
	mal_assert_pcr(img.pcrs.pcr0, EIFGEN_REF_PCR0);
	eif_image_free(&img);
}

static void test_unknown_flags(void **state)
{
	struct eifgen g;
	struct eif_image img;

	eifgen_init_reference(&g);
	g.flags = 0x0240; /* bottlerocket's PCIe bits, §3.10 */
	mal_read_gen(&g, &img);
	assert_int_equal(img.flags, 0x0240);
	assert_int_equal(img.unknown_flags, 0x0240);
	assert_int_equal(img.arch, EIF_ARCH_X86_64);
	eif_image_free(&img);
}

static void test_arch_aarch64(void **state)
{
	struct eifgen g;
	struct eif_image img;

	eifgen_init_reference(&g);
	g.flags = EIF_FLAG_ARCH_ARM64;
	mal_read_gen(&g, &img);
	assert_int_equal(img.arch, EIF_ARCH_AARCH64);
	assert_int_equal(img.unknown_flags, 0);
	eif_image_free(&img);
	g.flags = EIF_FLAG_ARCH_ARM64 | 0x8000;
	mal_read_gen(&g, &img);
	assert_int_equal(img.arch, EIF_ARCH_AARCH64);
	assert_int_equal(img.unknown_flags, 0x8000);
	eif_image_free(&img);
}

static void test_bad_crc_is_not_an_error(void **state)
{
	struct eifgen g;
	struct eif_image img;

	eifgen_init_reference(&g);
	g.bad_crc = true;
	mal_read_gen(&g, &img);
	assert_int_equal(img.crc_computed, EIFGEN_REF_CRC);
	assert_int_equal(img.crc_stored, EIFGEN_REF_CRC ^ 1u);
	mal_assert_pcr(img.pcrs.pcr0, EIFGEN_REF_PCR0);
	eif_image_free(&img);
}

/* The hypervisor honours the offsets (PR #26), so a gap is legal; the CRC
 * covers the sections, not the gap. */
static void test_gap_between_sections(void **state)
{
	struct eifgen g;
	struct eif_image img;

	eifgen_init_reference(&g);
	g.sec[EIFGEN_REF_RAMDISK0].gap = 64;
	mal_read_gen(&g, &img);
	assert_int_equal(img.sections[EIFGEN_REF_RAMDISK0].offset, 824 + 64);
	assert_int_equal(img.file_size, EIFGEN_REF_SIZE + 64);
	assert_int_equal(img.crc_computed, img.crc_stored);
	mal_assert_pcr(img.pcrs.pcr0, EIFGEN_REF_PCR0);
	mal_assert_pcr(img.pcrs.pcr1, EIFGEN_REF_PCR1);
	mal_assert_pcr(img.pcrs.pcr2, EIFGEN_REF_PCR2);
	eif_image_free(&img);
}

static void test_empty_sections(void **state)
{
	struct eifgen g;
	struct eif_image img;

	eifgen_init_reference(&g);
	g.sec[EIFGEN_REF_CMDLINE].len = 0;
	g.sec[EIFGEN_REF_RAMDISK1].len = 0;
	mal_read_gen(&g, &img);
	assert_non_null(img.cmdline);
	assert_int_equal(img.cmdline_len, 0);
	assert_string_equal(img.cmdline, "");
	assert_int_equal(img.sections[EIFGEN_REF_RAMDISK1].size, 0);
	assert_int_equal(img.crc_computed, img.crc_stored);
	eif_image_free(&img);
}

static void test_memory_and_file_agree(void **state)
{
	char path[512];
	struct eifgen g;
	struct eif_image a, b;
	struct nectl_err err = {0};
	uint8_t *buf;
	size_t len;

	eifgen_init_reference(&g);
	g.sec[EIFGEN_REF_RAMDISK1].gap = 3;
	eifgen_add_str(&g, EIF_SECTION_RAMDISK, "MORE");
	buf = eifgen_build(&g, &len);
	mal_path(path, sizeof(path), "agree.eif");
	mal_write(path, buf, len);
	assert_int_equal(mal_read_mem(buf, len, &a), 0);
	assert_int_equal(eif_read_file(path, &b, NULL, &err), 0);
	assert_memory_equal(&a.pcrs, &b.pcrs, sizeof(a.pcrs));
	assert_memory_equal(a.sections, b.sections, sizeof(a.sections));
	assert_int_equal(a.crc_computed, b.crc_computed);
	assert_int_equal(a.crc_stored, a.crc_computed);
	eif_image_free(&a);
	eif_image_free(&b);
	unlink(path);
	free(buf);
}

/* The reference image at offset 64 of three separately allocated regions
 * (100, 333 and the rest: headers and sections straddle the joins) reads as
 * from one buffer; reads past its end fail, and an offset past the regions
 * leaves nothing to read. */
static void test_regions_source(void **state)
{
	struct eifgen g;
	struct eif_source src;
	struct eif_image a, b;
	struct nectl_err err = {0};
	struct mem_region r[3];
	uint8_t *buf, byte;
	size_t len, at = 0;

	eifgen_init_reference(&g);
	buf = eifgen_build(&g, &len);
	r[0].size = 100;
	r[1].size = 333;
	r[2].size = 64 + len - 433 + 7;
	for (int i = 0; i < 3; i++) {
		r[i].addr = malloc(r[i].size);
		assert_non_null(r[i].addr);
		for (uint64_t j = 0; j < r[i].size; j++, at++)
			r[i].addr[j] = at >= 64 && at < 64 + len ? buf[at - 64] : 0xee;
	}
	eif_source_from_regions(&src, r, 3, 64, MEM_NAME);
	assert_int_equal(src.size, len + 7);
	assert_int_equal(eif_read(&src, &a, NULL, &err), 0);
	assert_int_equal(mal_read_mem(buf, len, &b), 0);
	assert_memory_equal(&a.pcrs, &b.pcrs, sizeof(a.pcrs));
	assert_memory_equal(a.sections, b.sections, sizeof(a.sections));
	eif_image_free(&b);
	assert_int_equal(src.read_at(src.ctx, len + 6, &byte, 1), 0);
	assert_int_equal(byte, 0xee);
	assert_int_equal(src.read_at(src.ctx, len + 6, &byte, 2), -EIO);
	assert_int_equal(src.read_at(src.ctx, UINT64_MAX, &byte, 1), -EIO);
	eif_source_from_regions(&src, r, 3, 64 + len + 7, MEM_NAME);
	assert_int_equal(src.size, 0);
	assert_int_equal(eif_read(&src, &b, NULL, &err), -1);
	mal_check_err(&err, MEM_NAME, NECTL_ERR_EIF, "shorter than");
	eif_image_free(&a);
	eif_image_free(&b);
	for (int i = 0; i < 3; i++)
		free(r[i].addr);
	free(buf);
}

/* A signed image: PCR8 is the signer's, the signature verifies against the
 * image's own PCR0, and signing leaves PCR0 alone. */
static void test_signed_image(void **state)
{
	char cert[512], key[512];
	struct eif_signer *signer = NULL;
	struct nectl_err err = {0};
	uint8_t pcr8[EIF_HASH_SIZE], pcr0[EIF_HASH_SIZE], *sig;
	struct eif_sig_check check;
	struct eif_image img;
	struct eifgen g;
	size_t sig_len;

	mal_path(cert, sizeof(cert), "cert.pem");
	mal_path(key, sizeof(key), "key.pem");
	assert_int_equal(eifgen_write_signer(cert, key), 0);
	assert_int_equal(eif_signer_load(&signer, cert, key, &err), 0);
	eifgen_init_reference(&g);
	mal_read_gen(&g, &img);
	memcpy(pcr0, img.pcrs.pcr0, sizeof(pcr0));
	eif_image_free(&img);
	assert_int_equal(eif_signature_build(signer, pcr0, &sig, &sig_len, &err), 0);
	eifgen_add(&g, EIF_SECTION_SIGNATURE, sig, sig_len);
	mal_read_gen(&g, &img);
	assert_memory_equal(img.pcrs.pcr0, pcr0, sizeof(pcr0));
	assert_true(img.pcrs.has_pcr8);
	eif_signer_pcr8(signer, pcr8);
	assert_memory_equal(img.pcrs.pcr8, pcr8, sizeof(pcr8));
	assert_int_equal(img.signature_len, sig_len);
	assert_int_equal(eif_signature_verify(img.signature, img.signature_len, img.pcrs.pcr0,
					      &check, &err),
			 0);
	assert_true(check.cose_valid);
	assert_true(check.payload_matches);
	assert_int_equal(check.alg, EIF_COSE_ES384);
	eif_image_free(&img);
	eif_signer_free(signer);
	free(sig);
	unlink(cert);
	unlink(key);
}

/* ---- memory use does not follow section size ---- */

#define BIG_RAMDISK (64ull << 20)
#define MEM_SLACK   (8ull << 20)

struct mal_probe {
	size_t heap0, rss0, heap_peak, rss_peak;
	unsigned calls;
	uint64_t done, total;
};

static size_t mal_heap_in_use(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

static size_t mal_rss(void)
{
	unsigned long size = 0, resident = 0;
	FILE *fp = fopen("/proc/self/statm", "r");

	if (fp) {
		if (fscanf(fp, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(fp);
	}
	return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Sampled while the sections stream: a reader that buffered a section
 * whole would be caught holding it here. */
static void mal_probe_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct mal_probe *p = ctx;
	size_t heap = mal_heap_in_use(), rss = mal_rss();

	p->heap_peak = heap > p->heap_peak ? heap : p->heap_peak;
	p->rss_peak = rss > p->rss_peak ? rss : p->rss_peak;
	p->calls++;
	p->done = done;
	p->total = total;
}

/* PCR0 of kernel || cmdline || len zero bytes, computed here independently. */
static void mal_zeros_pcr(const struct eifgen *g, uint64_t len, uint8_t pcr[EIF_HASH_SIZE])
{
	static const uint8_t zeros[1 << 16];
	uint8_t digest[EIF_HASH_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha384(), NULL), 1);
	EVP_DigestUpdate(ctx, g->sec[EIFGEN_REF_KERNEL].data, g->sec[EIFGEN_REF_KERNEL].len);
	EVP_DigestUpdate(ctx, g->sec[EIFGEN_REF_CMDLINE].data, g->sec[EIFGEN_REF_CMDLINE].len);
	while (len > 0) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);

		EVP_DigestUpdate(ctx, zeros, n);
		len -= n;
	}
	EVP_DigestFinal_ex(ctx, digest, NULL);
	EVP_MD_CTX_free(ctx);
	assert_int_equal(eif_pcr_from_digest(pcr, digest, NULL), 0);
}

static void test_big_ramdisk_streams(void **state)
{
	char path[512];
	struct mal_probe p = {0};
	struct eif_progress progress = {mal_probe_progress, &p};
	struct nectl_err err = {0};
	uint8_t pcr0[EIF_HASH_SIZE];
	struct eif_image img;
	struct eifgen g;

	eifgen_init_reference(&g);
	eifgen_remove(&g, EIFGEN_REF_RAMDISK1);
	g.sec[EIFGEN_REF_RAMDISK0].data = NULL;
	g.sec[EIFGEN_REF_RAMDISK0].len = BIG_RAMDISK;
	mal_path(path, sizeof(path), "big.eif");
	assert_int_equal(eifgen_write_file(&g, path), 0);
	p.heap0 = p.heap_peak = mal_heap_in_use();
	p.rss0 = p.rss_peak = mal_rss();
	assert_int_equal(eif_read_file(path, &img, &progress, &err), 0);
	unlink(path);
	assert_true(p.calls >= BIG_RAMDISK / (1u << 20));
	assert_int_equal(p.done, p.total);
	assert_int_equal(img.crc_computed, img.crc_stored);
	mal_zeros_pcr(&g, BIG_RAMDISK, pcr0);
	assert_memory_equal(img.pcrs.pcr0, pcr0, sizeof(pcr0));
	assert_memory_equal(img.pcrs.pcr1, pcr0, sizeof(pcr0));
	eif_image_free(&img);
#ifdef MAL_ASAN
	print_message("memory bounds not checked under AddressSanitizer\n");
#else
	print_message("reading a %llu MiB ramdisk grew the heap by %zu KiB, RSS by %zu KiB\n",
		      (unsigned long long)(BIG_RAMDISK >> 20), (p.heap_peak - p.heap0) >> 10,
		      (p.rss_peak - p.rss0) >> 10);
	assert_true(p.rss0 > 0);
	assert_true(p.heap_peak - p.heap0 < MEM_SLACK);
	assert_true(p.rss_peak - p.rss0 < MEM_SLACK);
#endif
}

/* ---- the group ---- */

static int mal_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(mal_dir, sizeof(mal_dir), "%s/nectl-malformed-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(mal_dir) ? 0 : -1;
}

static int mal_teardown(void **state)
{
	return rmdir(mal_dir);
}

static const struct CMUnitTest mal_fixed[] = {
	cmocka_unit_test(test_file_missing),
	cmocka_unit_test(test_file_directory),
	cmocka_unit_test(test_read_error_header),
	cmocka_unit_test(test_read_error_mid_stream),
	cmocka_unit_test(test_reference_vector),
	cmocka_unit_test(test_v2_without_metadata),
	cmocka_unit_test(test_unknown_flags),
	cmocka_unit_test(test_arch_aarch64),
	cmocka_unit_test(test_bad_crc_is_not_an_error),
	cmocka_unit_test(test_gap_between_sections),
	cmocka_unit_test(test_empty_sections),
	cmocka_unit_test(test_memory_and_file_agree),
	cmocka_unit_test(test_regions_source),
	cmocka_unit_test(test_signed_image),
	cmocka_unit_test(test_big_ramdisk_streams),
};

int main(void)
{
	static struct CMUnitTest tests[ARRAY_SIZE(mal_cases) + ARRAY_SIZE(mal_fixed)];
	size_t n = 0;

	/* One cmocka test per malformed case, named after it. */
	for (size_t i = 0; i < ARRAY_SIZE(mal_cases); i++, n++) {
		tests[n] = (struct CMUnitTest)cmocka_unit_test(test_malformed_case);
		tests[n].name = mal_cases[i].name;
		tests[n].initial_state = (void *)&mal_cases[i];
	}
	for (size_t i = 0; i < ARRAY_SIZE(mal_fixed); i++, n++)
		tests[n] = mal_fixed[i];
	return cmocka_run_group_tests_name("malformed", tests, mal_setup, mal_teardown);
}
