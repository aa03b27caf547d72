/* gen_seeds.c: writes the fuzz seed corpora, CORPUS/eif_reader/<name>.eif
 * and CORPUS/eif_signature/<name>.cbor: valid images (unsigned, signed, v2,
 * v3, aarch64, ...) and malformed ones, and signature sections good and bad.
 *
 *   ninja -C build fuzz/gen_seeds && build/fuzz/gen_seeds fuzz/corpus
 *
 * The output is the same on every run: OpenSSL's randomness (the signing
 * key, the ECDSA nonces) comes from a fixed-seed generator installed here,
 * and everything else is fixed data. Seeds stay under 64 KiB. */
#define OPENSSL_SUPPRESS_DEPRECATED /* RAND_set_rand_method: the only hook in 3.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "eifgen.h"
#include "nectl/eif.h"
#include "nectl/eif_sign.h"

#define GEN_SEED_MAX (64u << 10)

static const char *gen_corpus;
static char gen_tmp[] = "/tmp/nectl-seeds-XXXXXX";
static unsigned gen_count[2];

/* ---- deterministic randomness for OpenSSL (a test key, not a real one) ---- */

static uint64_t gen_rand_state = 0x6e6563746c2d6675ull; /* "nectl-fu" */

static uint64_t gen_splitmix(void)
{
	uint64_t z = (gen_rand_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int gen_rand_bytes(unsigned char *buf, int num)
{
	for (int i = 0; i < num; i++)
		buf[i] = (unsigned char)gen_splitmix();
	return 1;
}

static int gen_rand_status(void)
{
	return 1;
}

static const RAND_METHOD gen_rand = {.bytes = gen_rand_bytes,
				      .pseudorand = gen_rand_bytes,
				      .status = gen_rand_status};

/* ---- output ---- */

__attribute__((noreturn)) static void gen_die(const char *what)
{
	fprintf(stderr, "gen_seeds: %s\n", what);
	exit(1);
}

static void gen_mkdir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		gen_die(path);
}

/* kind 0: eif_reader, 1: eif_signature */
static void gen_write(unsigned kind, const char *name, const void *buf, size_t len)
{
	static const char *const dirs[] = {"eif_reader", "eif_signature"};
	char path[4096];
	FILE *fp;

	if (len > GEN_SEED_MAX)
		gen_die(name);
	snprintf(path, sizeof(path), "%s/%s", gen_corpus, dirs[kind]);
	gen_mkdir(path);
	snprintf(path, sizeof(path), "%s/%s/%s", gen_corpus, dirs[kind], name);
	fp = fopen(path, "wb");
	if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0)
		gen_die(path);
	gen_count[kind]++;
}

static void gen_image(const char *name, const struct eifgen *g)
{
	size_t len;
	uint8_t *buf = eifgen_build(g, &len);

	gen_write(0, name, buf, len);
	free(buf);
}

static uint8_t *gen_slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = malloc(GEN_SEED_MAX + 1);

	if (!fp || !buf)
		gen_die(path);
	*len = fread(buf, 1, GEN_SEED_MAX + 1, fp);
	fclose(fp);
	if (*len > GEN_SEED_MAX)
		gen_die(path);
	return buf;
}

static void gen_tmp_path(char *out, size_t len, const char *leaf)
{
	snprintf(out, len, "%s/%s", gen_tmp, leaf);
}

/* ---- reader seeds ---- */

static void gen_valid_images(void)
{
	struct eifgen g;

	eifgen_init_reference(&g);
	gen_image("valid-v4.eif", &g);
	g.flags = EIF_FLAG_ARCH_ARM64;
	gen_image("valid-aarch64.eif", &g);
	g.flags = 0x0240;
	gen_image("valid-unknown-flags.eif", &g);
	g.flags = 0;
	g.bad_crc = true;
	gen_image("valid-bad-crc.eif", &g);
	g.bad_crc = false;
	g.sec[EIFGEN_REF_RAMDISK0].gap = 64;
	gen_image("valid-gap.eif", &g);
	g.sec[EIFGEN_REF_RAMDISK0].gap = 0;
	g.sec[EIFGEN_REF_CMDLINE].len = 0;
	g.sec[EIFGEN_REF_RAMDISK1].len = 0;
	gen_image("valid-empty-sections.eif", &g);

	eifgen_init_reference(&g);
	eifgen_remove(&g, EIFGEN_REF_METADATA);
	g.version = 2;
	gen_image("valid-v2.eif", &g);

	/* 32 sections, the most an EIF holds */
	eifgen_init_reference(&g);
	while (g.count < EIF_MAX_SECTIONS)
		eifgen_add_str(&g, EIF_SECTION_RAMDISK, "R");
	gen_image("valid-32-sections.eif", &g);
}

static void gen_malformed_images(void)
{
	struct eifgen g;

	eifgen_init_reference(&g);
	g.truncate = true;
	g.truncate_to = EIF_HEADER_SIZE - 1;
	gen_image("trunc-header.eif", &g);
	g.truncate_to = eifgen_data_offset(&g, EIFGEN_REF_METADATA) + 100;
	gen_image("trunc-metadata.eif", &g);

	eifgen_init_reference(&g);
	memcpy(g.magic, "EIF.", 4);
	gen_image("bad-magic.eif", &g);

	eifgen_init_reference(&g);
	g.version = 5;
	gen_image("version-5.eif", &g);

	eifgen_init_reference(&g);
	g.set_num_sections = true;
	g.num_sections = 33;
	gen_image("num-sections-33.eif", &g);

	eifgen_init_reference(&g);
	g.sec[EIFGEN_REF_CMDLINE].set_offset = true;
	g.sec[EIFGEN_REF_CMDLINE].offset = 560;
	gen_image("overlap.eif", &g);

	eifgen_init_reference(&g);
	g.sec[EIFGEN_REF_RAMDISK1].set_offset = true;
	g.sec[EIFGEN_REF_RAMDISK1].offset = UINT64_MAX - 7;
	g.sec[EIFGEN_REF_RAMDISK1].set_size = true;
	g.sec[EIFGEN_REF_RAMDISK1].size = UINT64_MAX;
	gen_image("offset-size-wrap.eif", &g);

	eifgen_init_reference(&g);
	g.sec[EIFGEN_REF_CMDLINE].set_sh_size = true;
	g.sec[EIFGEN_REF_CMDLINE].sh_size = 14;
	gen_image("size-mismatch.eif", &g);

	eifgen_init_reference(&g);
	g.sec[EIFGEN_REF_METADATA].type = 6;
	gen_image("type-6.eif", &g);

	eifgen_init_reference(&g);
	g.sec[EIFGEN_REF_KERNEL].flags = 1;
	gen_image("section-flags.eif", &g);
}

static void gen_layout_images(void)
{
	struct eifgen g;

	eifgen_init_reference(&g);
	eifgen_insert(&g, 1, EIF_SECTION_KERNEL, "KERNEL2", 7);
	gen_image("two-kernels.eif", &g);

	eifgen_init_reference(&g);
	eifgen_remove(&g, EIFGEN_REF_RAMDISK0);
	eifgen_insert(&g, 0, EIF_SECTION_RAMDISK, "BOOTSTRAP", 9);
	gen_image("ramdisk-before-kernel.eif", &g);

	eifgen_init_reference(&g);
	eifgen_remove(&g, EIFGEN_REF_METADATA);
	gen_image("v4-no-metadata.eif", &g);

	eifgen_init_reference(&g);
	eifgen_add(&g, EIF_SECTION_SIGNATURE, "\xfc garbage", 9);
	gen_image("sig-garbage.eif", &g);
}

/* An image as the writer makes it (kernel, cmdline, metadata, ramdisks,
 * signature), signed by the generated key. */
static void gen_signed_image(const struct eif_signer *signer)
{
	struct eif_input ramdisks[2] = {{.data = "BOOTSTRAP", .len = 9}, {.data = "APP", .len = 3}};
	struct eif_build_spec spec = {.kernel = {.data = "KERNEL", .len = 6},
				      .cmdline = "console=ttyS0",
				      .ramdisks = ramdisks,
				      .num_ramdisks = 2,
				      .metadata = EIFGEN_REF_METADATA_JSON,
				      .metadata_len = strlen(EIFGEN_REF_METADATA_JSON),
				      .signer = signer};
	struct nectl_err err = {0};
	struct eif_pcrs pcrs;
	char path[512];
	uint8_t *buf;
	size_t len;

	gen_tmp_path(path, sizeof(path), "signed.eif");
	spec.output_path = path;
	if (eif_build(&spec, &pcrs, &err) < 0)
		gen_die(err.msg);
	buf = gen_slurp(path, &len);
	gen_write(0, "valid-v4-signed.eif", buf, len);
	unlink(path);
	free(buf);
}

/* A v3 image (signature, no metadata) signed over its own PCR0. */
static void gen_signed_v3(const struct eif_signer *signer)
{
	struct nectl_err err = {0};
	struct eif_source src;
	struct eif_image img;
	struct eifgen g;
	uint8_t *buf, *sig;
	size_t len, sig_len;

	eifgen_init_reference(&g);
	eifgen_remove(&g, EIFGEN_REF_METADATA);
	g.version = 3;
	buf = eifgen_build(&g, &len);
	eif_source_from_memory(&src, buf, len, "v3");
	if (eif_read(&src, &img, NULL, &err) < 0 ||
	    eif_signature_build(signer, img.pcrs.pcr0, &sig, &sig_len, &err) < 0)
		gen_die(err.msg);
	eif_image_free(&img);
	free(buf);
	eifgen_add(&g, EIF_SECTION_SIGNATURE, sig, sig_len);
	gen_image("valid-v3-signed.eif", &g);

	/* the same section in front of an image whose PCR0 differs */
	g.sec[EIFGEN_REF_KERNEL].data = (const uint8_t *)"KERNEX";
	gen_image("signed-wrong-pcr0.eif", &g);
	free(sig);
}

static void gen_cert_not_pem_image(void)
{
	struct eifgen g;
	size_t len;
	uint8_t *sig = eifgen_signature_section("signing_certificate", "not a certificate", 17,
						"signature", "\x84\x40\xa0\x40\x40", 5, &len);

	eifgen_init_reference(&g);
	eifgen_add(&g, EIF_SECTION_SIGNATURE, sig, len);
	gen_image("sig-cert-not-pem.eif", &g);
	free(sig);
}

/* ---- signature seeds ---- */

/* The PCR0 fuzz_eif_signature.c verifies against: bytes 0, 1, ..., 47. */
static void gen_sig_pcr0(uint8_t pcr0[EIF_HASH_SIZE])
{
	for (unsigned i = 0; i < EIF_HASH_SIZE; i++)
		pcr0[i] = (uint8_t)i;
}

/* Rebuilds a section from cert and cose, as the fuzz target will parse it. */
static void gen_sig_section(const char *name, const uint8_t *cert, size_t cert_len,
			    const uint8_t *cose, size_t cose_len)
{
	size_t len;
	uint8_t *sec = eifgen_signature_section("signing_certificate", cert, cert_len, "signature",
						cose, cose_len, &len);

	gen_write(1, name, sec, len);
	free(sec);
}

/* Variants of a valid section: COSE_Sign1 tagged, with a bad signature, with
 * the wrong alg, cut short; the certificate cut short or not PEM. */
static void gen_sig_cose_variants(const uint8_t *cert, size_t cert_len, const uint8_t *cose,
				  size_t cose_len)
{
	uint8_t *v = malloc(cose_len + 1);

	if (!v)
		gen_die("out of memory");
	v[0] = 0xd2; /* tag 18, COSE_Sign1 */
	memcpy(v + 1, cose, cose_len);
	gen_sig_section("cose-tagged.cbor", cert, cert_len, v, cose_len + 1);
	memcpy(v, cose, cose_len);
	v[cose_len - 1] ^= 0x01;
	gen_sig_section("cose-bad-signature.cbor", cert, cert_len, v, cose_len);
	memcpy(v, cose, cose_len);
	/* protected header a1 01 38 22 (ES384) -> 38 23 (ES512) */
	if (cose_len > 5 && v[1] == 0x44 && v[2] == 0xa1 && v[5] == 0x22)
		v[5] = 0x23;
	gen_sig_section("cose-alg-es512.cbor", cert, cert_len, v, cose_len);
	gen_sig_section("cose-truncated.cbor", cert, cert_len, cose, cose_len / 2);
	gen_sig_section("cert-truncated.cbor", cert, cert_len / 2, cose, cose_len);
	gen_sig_section("cert-not-pem.cbor", (const uint8_t *)"not a certificate", 17, cose,
			cose_len);
	free(v);
}

static void gen_sig_raw_seeds(const uint8_t *valid, size_t len)
{
	uint8_t *two = malloc(len + 1);
	size_t n;
	uint8_t *wrong = eifgen_signature_section("certificate", "-----BEGIN", 10, "sig",
						  "\x84\x40\xa0\x40\x40", 5, &n);

	if (!two)
		gen_die("out of memory");
	gen_write(1, "wrong-keys.cbor", wrong, n);
	free(wrong);
	gen_write(1, "empty-array.cbor", "\x80", 1);
	gen_write(1, "garbage.cbor", "\xfc garbage", 9);
	gen_write(1, "indefinite.cbor", "\x9f\x80\xff", 3);
	/* a valid element followed by an empty map */
	memcpy(two, valid, len);
	two[0] = 0x82;
	two[len] = 0xa0;
	gen_write(1, "two-elements.cbor", two, len + 1);
	free(two);
}

static void gen_signature_seeds(const struct eif_signer *signer)
{
	uint8_t pcr0[EIF_HASH_SIZE], *sec, *cert, *cose;
	size_t len, cert_len, cose_len;
	struct nectl_err err = {0};

	gen_sig_pcr0(pcr0);
	if (eif_signature_build(signer, pcr0, &sec, &len, &err) < 0 ||
	    eif_signature_parse(sec, len, &cert, &cert_len, &cose, &cose_len, &err) < 0)
		gen_die(err.msg);
	gen_write(1, "valid.cbor", sec, len);
	gen_sig_cose_variants(cert, cert_len, cose, cose_len);
	gen_sig_raw_seeds(sec, len);
	free(sec);
	pcr0[0] ^= 0xff;
	if (eif_signature_build(signer, pcr0, &sec, &len, &err) < 0)
		gen_die(err.msg);
	gen_write(1, "other-pcr0.cbor", sec, len);
	free(sec);
	free(cert);
	free(cose);
}

static struct eif_signer *gen_signer(void)
{
	char cert[512], key[512];
	struct eif_signer *signer;
	struct nectl_err err = {0};

	gen_tmp_path(cert, sizeof(cert), "cert.pem");
	gen_tmp_path(key, sizeof(key), "key.pem");
	if (eifgen_write_signer(cert, key) < 0)
		gen_die("cannot make a signing key");
	if (eif_signer_load(&signer, cert, key, &err) < 0)
		gen_die(err.msg);
	unlink(cert);
	unlink(key);
	return signer;
}

int main(int argc, char **argv)
{
	struct eif_signer *signer;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds CORPUS_DIR\n");
		return 2;
	}
	gen_corpus = argv[1];
	gen_mkdir(gen_corpus);
	if (!RAND_set_rand_method(&gen_rand) || !mkdtemp(gen_tmp))
		gen_die("setup failed");
	signer = gen_signer();
	gen_valid_images();
	gen_malformed_images();
	gen_layout_images();
	gen_signed_image(signer);
	gen_signed_v3(signer);
	gen_cert_not_pem_image();
	gen_signature_seeds(signer);
	eif_signer_free(signer);
	rmdir(gen_tmp);
	printf("gen_seeds: %u reader seeds, %u signature seeds in %s\n", gen_count[0], gen_count[1],
	       gen_corpus);
	return 0;
}
