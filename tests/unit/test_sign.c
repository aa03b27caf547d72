/* EIF signature section, COSE_Sign1 and PCR8 against keys and certificates
 * generated on the fly (reference/aws-nitro-ecosystem.md §3.7, §4.1). */
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
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "nectl/eif_sign.h"

#include "nectl/cose.h"
#include "../../src/eif/sign_internal.h"

#define DAY (24L * 60 * 60)

enum { P256, P384, P521, NCURVES };

static const char *const curve_names[NCURVES] = {"P-256", "P-384", "P-521"};
static const int curve_algs[NCURVES] = {EIF_COSE_ES256, EIF_COSE_ES384, EIF_COSE_ES512};
/* clang-format off */
static const uint8_t curve_prot[NCURVES][4] = {
	{ 0xa1, 0x01, 0x26 }, { 0xa1, 0x01, 0x38, 0x22 }, { 0xa1, 0x01, 0x38, 0x23 }
};
/* clang-format on */
static const size_t curve_prot_len[NCURVES] = {3, 4, 4};

struct keypair {
	char cert[256];
	char key[256];
};

static struct {
	char dir[160];
	struct keypair curve[NCURVES];
	struct keypair expired;
	struct keypair future;
	struct keypair rsa;
	char other_key[256]; /* P-384, unrelated to any certificate */
	char encrypted_key[256];
	char garbage[256];
	char missing[256];
} fx;

static void fx_path(char *out, const char *name)
{
	snprintf(out, 256, "%s/%s", fx.dir, name);
}

static void write_key(const char *path, EVP_PKEY *key, const EVP_CIPHER *cipher)
{
	BIO *bio = BIO_new_file(path, "w");
	static unsigned char pass[] = "secret";

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PrivateKey(bio, key, cipher, cipher ? pass : NULL,
						  cipher ? 6 : 0, NULL, NULL),
			 1);
	BIO_free(bio);
}

static X509 *make_cert(EVP_PKEY *key, long from, long to, const EVP_MD *md)
{
	X509 *x = X509_new();
	X509_NAME *name;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"nectl tests",
				   -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"nectl test signer", -1, -1, 0);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_true(X509_sign(x, key, md) > 0);
	return x;
}

static void write_cert(const char *path, X509 *x)
{
	BIO *bio = BIO_new_file(path, "w");

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	BIO_free(bio);
}

static void make_pair(struct keypair *kp, const char *tag, EVP_PKEY *key, long from, long to,
		      const EVP_MD *md)
{
	char name[64];
	X509 *x = make_cert(key, from, to, md);

	snprintf(name, sizeof(name), "%s.crt", tag);
	fx_path(kp->cert, name);
	snprintf(name, sizeof(name), "%s.key", tag);
	fx_path(kp->key, name);
	write_cert(kp->cert, x);
	write_key(kp->key, key, NULL);
	X509_free(x);
}

static void make_curve_pairs(void)
{
	for (int i = 0; i < NCURVES; i++) {
		EVP_PKEY *key = EVP_EC_gen(curve_names[i]);
		char tag[16];

		assert_non_null(key);
		snprintf(tag, sizeof(tag), "ec%d", i);
		make_pair(&fx.curve[i], tag, key, -DAY, 365 * DAY, EVP_sha384());
		if (i == P384) {
			make_pair(&fx.expired, "expired", key, -10 * DAY, -DAY, EVP_sha384());
			make_pair(&fx.future, "future", key, 10 * DAY, 20 * DAY, EVP_sha384());
			fx_path(fx.encrypted_key, "encrypted.key");
			write_key(fx.encrypted_key, key, EVP_aes_256_cbc());
		}
		EVP_PKEY_free(key);
	}
}

static void make_other_files(void)
{
	EVP_PKEY *other = EVP_EC_gen("P-384");
	EVP_PKEY *rsa = EVP_RSA_gen(2048);
	FILE *f;

	assert_non_null(other);
	assert_non_null(rsa);
	fx_path(fx.other_key, "other.key");
	write_key(fx.other_key, other, NULL);
	make_pair(&fx.rsa, "rsa", rsa, -DAY, DAY, EVP_sha256());
	EVP_PKEY_free(other);
	EVP_PKEY_free(rsa);
	fx_path(fx.garbage, "garbage.pem");
	f = fopen(fx.garbage, "w");
	assert_non_null(f);
	fputs("this is not PEM\n", f);
	fclose(f);
	fx_path(fx.missing, "does-not-exist.pem");
}

static int group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(fx.dir, sizeof(fx.dir), "%s/nectl-test-sign-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx.dir))
		return -1;
	make_curve_pairs();
	make_other_files();
	return 0;
}

static void remove_pair(const struct keypair *kp)
{
	unlink(kp->cert);
	unlink(kp->key);
}

static int group_teardown(void **state)
{
	for (int i = 0; i < NCURVES; i++)
		remove_pair(&fx.curve[i]);
	remove_pair(&fx.expired);
	remove_pair(&fx.future);
	remove_pair(&fx.rsa);
	unlink(fx.other_key);
	unlink(fx.encrypted_key);
	unlink(fx.garbage);
	return rmdir(fx.dir);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 16);

	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	return buf;
}

static X509 *read_cert(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x;

	assert_non_null(bio);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static struct eif_signer *load_signer(const struct keypair *kp)
{
	struct nectl_err err = {0};
	struct eif_signer *s = NULL;

	if (eif_signer_load(&s, kp->cert, kp->key, &err))
		fail_msg("eif_signer_load: %s", err.msg);
	return s;
}

/* A signed section for pcr0 by the pair's key. */
static uint8_t *sign_with(const struct keypair *kp, const uint8_t pcr0[EIF_HASH_SIZE], size_t *len)
{
	struct nectl_err err = {0};
	struct eif_signer *s = load_signer(kp);
	uint8_t *section = NULL;

	if (eif_signature_build(s, pcr0, &section, len, &err))
		fail_msg("eif_signature_build: %s", err.msg);
	eif_signer_free(s);
	return section;
}

static void random_pcr(uint8_t pcr[EIF_HASH_SIZE])
{
	assert_int_equal(RAND_bytes(pcr, EIF_HASH_SIZE), 1);
}

static void test_section_vector(void **state)
{
	static const uint8_t cert[] = {'A', 'B'};
	static const uint8_t sig[] = {1, 2};
	/* clang-format off */
	static const uint8_t expect[] = {
		0x81, 0xa2, 0x73, 's', 'i', 'g', 'n', 'i', 'n', 'g', '_', 'c', 'e', 'r', 't',
		'i', 'f', 'i', 'c', 'a', 't', 'e', 0x82, 0x18, 0x41, 0x18, 0x42, 0x69, 's',
		'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', 0x82, 0x01, 0x02,
	};
	/* clang-format on */
	struct nectl_err err = {0};
	uint8_t *out, *c, *s;
	size_t len, clen, slen;

	assert_int_equal(sign_section_encode(cert, 2, sig, 2, &out, &len, &err), 0);
	assert_int_equal(len, sizeof(expect));
	assert_memory_equal(out, expect, sizeof(expect));
	assert_int_equal(eif_signature_parse(out, len, &c, &clen, &s, &slen, &err), 0);
	assert_int_equal(clen, 2);
	assert_memory_equal(c, cert, 2);
	assert_int_equal(slen, 2);
	assert_memory_equal(s, sig, 2);
	free(out);
	free(c);
	free(s);
}

static void test_pcrinfo_vector(void **state)
{
	static const uint8_t value[] = {0xaa, 0xaa, 0xaa};
	/* clang-format off */
	static const uint8_t expect[] = {
		0xa2, 0x6e, 'r', 'e', 'g', 'i', 's', 't', 'e', 'r', '_', 'i', 'n', 'd', 'e', 'x',
		0x00, 0x6e, 'r', 'e', 'g', 'i', 's', 't', 'e', 'r', '_', 'v', 'a', 'l', 'u', 'e',
		0x83, 0x18, 0xaa, 0x18, 0xaa, 0x18, 0xaa,
	};
	/* clang-format on */
	struct nectl_err err = {0};
	uint8_t *out;
	size_t len;

	assert_int_equal(cose_pcrinfo_encode(value, 3, &out, &len, &err), 0);
	assert_int_equal(len, sizeof(expect));
	assert_memory_equal(out, expect, sizeof(expect));
	free(out);
}

static void check_cose_layout(int curve, const uint8_t *cose, size_t cose_len,
			      const uint8_t pcr0[EIF_HASH_SIZE])
{
	struct nectl_err err = {0};
	struct cose_sign1 msg;
	uint8_t *payload;
	size_t payload_len;

	/* Untagged array of 4, protected header as a 3- or 4-byte bstr. */
	assert_int_equal(cose[0], 0x84);
	assert_int_equal(cose[1], 0x40 + curve_prot_len[curve]);
	assert_memory_equal(cose + 2, curve_prot[curve], curve_prot_len[curve]);
	assert_int_equal(cose[2 + curve_prot_len[curve]], 0xa0);
	assert_int_equal(cose_sign1_decode(cose, cose_len, &msg, &err), 0);
	assert_int_equal(msg.alg, curve_algs[curve]);
	assert_int_equal(msg.sig_len, 2 * cose_alg_by_id(msg.alg)->coord_len);
	assert_int_equal(cose_pcrinfo_encode(pcr0, EIF_HASH_SIZE, &payload, &payload_len, &err), 0);
	assert_int_equal(msg.payload_len, payload_len);
	assert_memory_equal(msg.payload, payload, payload_len);
	free(payload);
	cose_sign1_free(&msg);
}

static void check_sign_verify(int curve)
{
	const struct keypair *kp = &fx.curve[curve];
	struct nectl_err err = {0};
	struct eif_sig_check check;
	uint8_t pcr0[EIF_HASH_SIZE];
	uint8_t *section, *pem, *file, *cose;
	size_t len, pem_len, file_len, cose_len;

	random_pcr(pcr0);
	section = sign_with(kp, pcr0, &len);
	assert_true(len <= EIF_SIGNATURE_MAX);
	assert_int_equal(eif_signature_verify(section, len, pcr0, &check, &err), 0);
	assert_true(check.cose_valid);
	assert_true(check.payload_matches);
	assert_true(check.cert_time_valid);
	assert_int_equal(check.alg, curve_algs[curve]);
	assert_string_equal(check.reason, "");

	assert_int_equal(eif_signature_parse(section, len, &pem, &pem_len, &cose, &cose_len, &err),
			 0);
	file = read_all(kp->cert, &file_len);
	assert_int_equal(pem_len, file_len);
	assert_memory_equal(pem, file, file_len);
	check_cose_layout(curve, cose, cose_len, pcr0);
	free(file);
	free(pem);
	free(cose);
	free(section);
}

static void test_sign_verify_p256(void **state)
{
	check_sign_verify(P256);
}

static void test_sign_verify_p384(void **state)
{
	check_sign_verify(P384);
}

static void test_sign_verify_p521(void **state)
{
	check_sign_verify(P521);
}

static void test_verify_other_pcr0(void **state)
{
	struct nectl_err err = {0};
	struct eif_sig_check check;
	uint8_t pcr0[EIF_HASH_SIZE], other[EIF_HASH_SIZE];
	uint8_t *section;
	size_t len;

	random_pcr(pcr0);
	memcpy(other, pcr0, sizeof(other));
	other[47] ^= 0x01;
	section = sign_with(&fx.curve[P384], pcr0, &len);
	assert_int_equal(eif_signature_verify(section, len, other, &check, &err), 0);
	assert_true(check.cose_valid);
	assert_false(check.payload_matches);
	assert_true(check.cert_time_valid);
	assert_string_equal(check.reason, "signed PCR0 does not match the image's PCR0");
	free(section);
}

/* Re-wraps a modified COSE_Sign1 in a section carrying the same certificate. */
static uint8_t *rewrap(const uint8_t *section, size_t len, void (*edit)(uint8_t *, size_t *),
		       size_t *out_len)
{
	struct nectl_err err = {0};
	uint8_t *pem, *cose, *out;
	size_t pem_len, cose_len;

	assert_int_equal(eif_signature_parse(section, len, &pem, &pem_len, &cose, &cose_len, &err),
			 0);
	edit(cose, &cose_len);
	assert_int_equal(sign_section_encode(pem, pem_len, cose, cose_len, &out, out_len, &err), 0);
	free(pem);
	free(cose);
	return out;
}

static void flip_last_byte(uint8_t *cose, size_t *len)
{
	cose[*len - 1] ^= 0x01;
}

/* ES384's a1 01 38 22 becomes ES256's a1 01 26: one byte shorter. */
static void relabel_es256(uint8_t *cose, size_t *len)
{
	assert_int_equal(cose[1], 0x44);
	cose[1] = 0x43;
	cose[4] = 0x26;
	memmove(cose + 5, cose + 6, *len - 6);
	(*len)--;
}

static void test_verify_flipped_signature(void **state)
{
	struct nectl_err err = {0};
	struct eif_sig_check check;
	uint8_t pcr0[EIF_HASH_SIZE];
	uint8_t *section, *bad;
	size_t len, bad_len;

	random_pcr(pcr0);
	section = sign_with(&fx.curve[P384], pcr0, &len);
	bad = rewrap(section, len, flip_last_byte, &bad_len);
	assert_int_equal(eif_signature_verify(bad, bad_len, pcr0, &check, &err), 0);
	assert_false(check.cose_valid);
	assert_true(check.payload_matches);
	assert_string_equal(check.reason,
			    "COSE signature does not verify with the certificate's key");
	free(bad);
	free(section);
}

static void test_verify_alg_mismatch(void **state)
{
	struct nectl_err err = {0};
	struct eif_sig_check check;
	uint8_t pcr0[EIF_HASH_SIZE];
	uint8_t *section, *bad;
	size_t len, bad_len;

	random_pcr(pcr0);
	section = sign_with(&fx.curve[P384], pcr0, &len);
	bad = rewrap(section, len, relabel_es256, &bad_len);
	assert_int_equal(eif_signature_verify(bad, bad_len, pcr0, &check, &err), 0);
	assert_int_equal(check.alg, EIF_COSE_ES256);
	assert_false(check.cose_valid);
	assert_non_null(strstr(check.reason, "does not match the certificate's P-384 key"));
	free(bad);
	free(section);
}

static void check_time_invalid(const struct keypair *kp, const char *reason_prefix)
{
	struct nectl_err err = {0};
	struct eif_sig_check check;
	uint8_t pcr0[EIF_HASH_SIZE];
	uint8_t *section;
	size_t len;

	random_pcr(pcr0);
	section = sign_with(kp, pcr0, &len);
	assert_int_equal(eif_signature_verify(section, len, pcr0, &check, &err), 0);
	assert_true(check.cose_valid);
	assert_true(check.payload_matches);
	assert_false(check.cert_time_valid);
	assert_int_equal(strncmp(check.reason, reason_prefix, strlen(reason_prefix)), 0);
	assert_non_null(strstr(check.reason, " GMT"));
	free(section);
}

static void test_verify_expired(void **state)
{
	check_time_invalid(&fx.expired, "certificate expired on ");
}

static void test_verify_not_yet_valid(void **state)
{
	check_time_invalid(&fx.future, "certificate not valid before ");
}

static void check_load_fails(const char *cert, const char *key, const char *fragment)
{
	struct nectl_err err = {0};
	struct eif_signer *s = (struct eif_signer *)&err;

	assert_int_equal(eif_signer_load(&s, cert, key, &err), -1);
	assert_null(s);
	assert_int_equal(err.kind, NECTL_ERR_SIGN);
	if (!strstr(err.msg, fragment))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragment);
	assert_null(strchr(err.msg, '\n'));
}

static void test_load_key_mismatch(void **state)
{
	char expect[600];

	snprintf(expect, sizeof(expect),
		 "private key %s does not match the public key of certificate %s", fx.other_key,
		 fx.curve[P384].cert);
	check_load_fails(fx.curve[P384].cert, fx.other_key, "does not match");
	check_load_fails(fx.curve[P384].cert, fx.other_key, expect);
}

static void test_load_curve_mismatch(void **state)
{
	check_load_fails(fx.curve[P256].cert, fx.curve[P384].key, "P-256");
	check_load_fails(fx.curve[P521].cert, fx.curve[P384].key, fx.curve[P521].cert);
}

static void test_load_rsa(void **state)
{
	check_load_fails(fx.rsa.cert, fx.rsa.key, "not an EC key");
	check_load_fails(fx.curve[P384].cert, fx.rsa.key, fx.rsa.key);
}

static void test_load_bad_files(void **state)
{
	check_load_fails(fx.missing, fx.curve[P384].key, "cannot read certificate");
	check_load_fails(fx.garbage, fx.curve[P384].key, "not a PEM X.509 certificate");
	check_load_fails(fx.curve[P384].cert, fx.missing, "cannot read private key");
	check_load_fails(fx.curve[P384].cert, fx.garbage, "not a PEM private key");
	/* Must fail without prompting for the passphrase. */
	check_load_fails(fx.curve[P384].cert, fx.encrypted_key, "not a PEM private key");
	check_load_fails(fx.curve[P384].cert, fx.curve[P384].cert, "not a PEM private key");
}

static void test_signer_pcr8(void **state)
{
	static const uint8_t zeros[EIF_HASH_SIZE];
	struct nectl_err err = {0};
	uint8_t digest[EIF_HASH_SIZE], expect[EIF_HASH_SIZE], got[EIF_HASH_SIZE];
	uint8_t *der = NULL, *pem;
	size_t pem_len;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct eif_signer *s;
	X509 *x = read_cert(fx.curve[P384].cert);
	int der_len = i2d_X509(x, &der);

	assert_true(der_len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)der_len, digest, NULL, EVP_sha384(), NULL), 1);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha384(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, zeros, sizeof(zeros)), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, digest, sizeof(digest)), 1);
	assert_int_equal(EVP_DigestFinal_ex(ctx, expect, NULL), 1);

	assert_int_equal(eif_cert_pcr8_file(fx.curve[P384].cert, got, &err), 0);
	assert_memory_equal(got, expect, EIF_HASH_SIZE);
	pem = read_all(fx.curve[P384].cert, &pem_len);
	memset(got, 0, sizeof(got));
	assert_int_equal(eif_cert_pcr8(pem, pem_len, got, &err), 0);
	assert_memory_equal(got, expect, EIF_HASH_SIZE);
	s = load_signer(&fx.curve[P384]);
	memset(got, 0, sizeof(got));
	eif_signer_pcr8(s, got);
	assert_memory_equal(got, expect, EIF_HASH_SIZE);

	eif_signer_free(s);
	free(pem);
	OPENSSL_free(der);
	X509_free(x);
	EVP_MD_CTX_free(ctx);
}

static void test_cert_pcr8_errors(void **state)
{
	struct nectl_err err = {0};
	uint8_t pcr8[EIF_HASH_SIZE];

	assert_int_equal(eif_cert_pcr8((const uint8_t *)"AB", 2, pcr8, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_HASH);
	assert_non_null(strstr(err.msg, ": not a PEM X.509 certificate"));
	assert_int_equal(eif_cert_pcr8_file(fx.garbage, pcr8, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_HASH);
	assert_non_null(strstr(err.msg, fx.garbage));
	assert_int_equal(eif_cert_pcr8_file(fx.missing, pcr8, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
}

static void check_signature_hex(const char *text, X509 *x)
{
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;
	const unsigned char *data;
	size_t n;
	char pair[4];

	X509_get0_signature(&sig, &alg, x);
	n = (size_t)ASN1_STRING_length(sig);
	data = ASN1_STRING_get0_data(sig);
	assert_int_equal(strlen(text), 3 * n - 1);
	for (size_t i = 0; i < n; i++) {
		snprintf(pair, sizeof(pair), "%02X", data[i]);
		assert_memory_equal(text + 3 * i, pair, 2);
		if (i + 1 < n)
			assert_int_equal(text[3 * i + 2], ':');
	}
}

static void test_cert_describe(void **state)
{
	static const char *const keys[] = {"IssuerName", "Algorithm", "NotBefore", "NotAfter",
					   "Signature"};
	struct nectl_err err = {0};
	json_t *obj, *issuer;
	uint8_t *pem;
	size_t pem_len, i = 0;
	X509 *x = read_cert(fx.curve[P384].cert);

	pem = read_all(fx.curve[P384].cert, &pem_len);
	assert_int_equal(eif_cert_describe(pem, pem_len, &obj, &err), 0);
	assert_int_equal(json_object_size(obj), 5);
	for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it))
		assert_string_equal(json_object_iter_key(it), keys[i++]);
	issuer = json_object_get(obj, "IssuerName");
	assert_string_equal(json_string_value(json_object_get(issuer, "commonName")),
			    "nectl test signer");
	assert_string_equal(json_string_value(json_object_get(issuer, "organizationName")),
			    "nectl tests");
	assert_string_equal(json_string_value(json_object_get(issuer, "countryName")), "US");
	assert_string_equal(json_string_value(json_object_get(obj, "Algorithm")),
			    "ecdsa-with-SHA384");
	assert_non_null(strstr(json_string_value(json_object_get(obj, "NotBefore")), " GMT"));
	assert_non_null(strstr(json_string_value(json_object_get(obj, "NotAfter")), " GMT"));
	check_signature_hex(json_string_value(json_object_get(obj, "Signature")), x);
	json_decref(obj);

	obj = (json_t *)&err;
	assert_int_equal(eif_cert_describe((const uint8_t *)"AB", 2, &obj, &err), -1);
	assert_null(obj);
	assert_int_equal(err.kind, NECTL_ERR_EIF);
	free(pem);
	X509_free(x);
}

struct bad_section {
	const char *name;
	const uint8_t *bytes;
	size_t len;
};

/* clang-format off */
#define BAD(name, ...)                                                                   \
	{ name, (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }) }

/* "signing_certificate" and "signature" as CBOR text strings. */
#define K_CERT 0x73, 's', 'i', 'g', 'n', 'i', 'n', 'g', '_', 'c', 'e', 'r', 't', 'i', 'f', \
	'i', 'c', 'a', 't', 'e'
#define K_SIG 0x69, 's', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e'
/* clang-format on */

/* clang-format off */
static const struct bad_section bad_sections[] = {
	BAD("not CBOR (reserved byte)", 0x1c),
	BAD("text instead of array", 0x65, 'h', 'e', 'l', 'l', 'o'),
	BAD("map at top level", 0xa0),
	BAD("empty array", 0x80),
	BAD("element is a uint", 0x81, 0x01),
	BAD("element is an empty map", 0x81, 0xa0),
	BAD("map with 3 entries", 0x81, 0xa3, K_CERT, 0x81, 0x01, K_SIG, 0x81, 0x01, 0x61, 'x',
	    0x00),
	BAD("keys swapped", 0x81, 0xa2, K_SIG, 0x81, 0x01, K_CERT, 0x81, 0x01),
	BAD("wrong key", 0x81, 0xa2, 0x64, 'c', 'e', 'r', 't', 0x81, 0x01, K_SIG, 0x81, 0x01),
	BAD("cert as bstr", 0x81, 0xa2, K_CERT, 0x41, 0x41, K_SIG, 0x81, 0x01),
	BAD("cert byte 256", 0x81, 0xa2, K_CERT, 0x81, 0x19, 0x01, 0x00, K_SIG, 0x81, 0x01),
	BAD("cert byte negative", 0x81, 0xa2, K_CERT, 0x81, 0x20, K_SIG, 0x81, 0x01),
	BAD("empty cert", 0x81, 0xa2, K_CERT, 0x80, K_SIG, 0x81, 0x01),
	BAD("truncated", 0x81, 0xa2, K_CERT, 0x82, 0x18, 0x41),
	BAD("truncated text key", 0x81, 0xa2, 0x73, 's', 'i', 'g'),
	BAD("trailing byte", 0x81, 0xa2, K_CERT, 0x81, 0x01, K_SIG, 0x81, 0x01, 0x00),
	BAD("bad second element", 0x82, 0xa2, K_CERT, 0x81, 0x01, K_SIG, 0x81, 0x01, 0x01),
	BAD("indefinite array", 0x9f, 0xa2, K_CERT, 0x81, 0x01, K_SIG, 0x81, 0x01, 0xff),
	BAD("huge declared array", 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	BAD("huge declared map", 0x81, 0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	BAD("huge declared bytes", 0x81, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	BAD("tagged element", 0x81, 0xd8, 0x12, 0xa0),
	BAD("lone break", 0xff),
};
/* clang-format on */

static void check_parse_fails(const uint8_t *bytes, size_t len, const char *name)
{
	struct nectl_err err = {0};
	uint8_t *cert = (uint8_t *)&err, *cose = (uint8_t *)&err;
	size_t clen = 1, slen = 1;

	if (eif_signature_parse(bytes, len, &cert, &clen, &cose, &slen, &err) != -1)
		fail_msg("%s: parsed", name);
	assert_int_equal(err.kind, NECTL_ERR_EIF);
	if (strncmp(err.msg, "signature section: ", 19) != 0)
		fail_msg("%s: message \"%s\"", name, err.msg);
	assert_null(cert);
	assert_null(cose);
	assert_int_equal(clen + slen, 0);
}

static void test_parse_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(bad_sections) / sizeof(bad_sections[0]); i++)
		check_parse_fails(bad_sections[i].bytes, bad_sections[i].len, bad_sections[i].name);
	check_parse_fails(NULL, 0, "empty input");
}

static void test_parse_hostile_sizes(void **state)
{
	size_t big = EIF_SIGNATURE_MAX + 1;
	uint8_t *buf = calloc(1, big);

	assert_non_null(buf);
	/* Deep nesting: [[[[...]]]] */
	memset(buf, 0x81, 4096);
	check_parse_fails(buf, 4097, "deep nesting");
	check_parse_fails(buf, big, "over the size cap");
	free(buf);
}

static void test_parse_truncations(void **state)
{
	uint8_t pcr0[EIF_HASH_SIZE];
	uint8_t *section;
	size_t len;

	random_pcr(pcr0);
	section = sign_with(&fx.curve[P256], pcr0, &len);
	for (size_t cut = 0; cut < len; cut++)
		check_parse_fails(section, cut, "truncated signed section");
	free(section);
}

static void test_parse_second_element(void **state)
{
	/* clang-format off */
	static const uint8_t two[] = { 0x82, 0xa2, K_CERT, 0x81, 0x18, 0x41, K_SIG, 0x81, 0x01,
				       0xa2, K_CERT, 0x81, 0x18, 0x42, K_SIG, 0x81, 0x02 };
	/* clang-format on */
	struct nectl_err err = {0};
	uint8_t *cert, *cose;
	size_t clen, slen;

	assert_int_equal(eif_signature_parse(two, sizeof(two), &cert, &clen, &cose, &slen, &err),
			 0);
	assert_int_equal(clen, 1);
	assert_int_equal(cert[0], 'A');
	assert_int_equal(slen, 1);
	assert_int_equal(cose[0], 1);
	free(cert);
	free(cose);
}

static void check_verify_malformed(const uint8_t *cert, size_t cert_len, const uint8_t *cose,
				   size_t cose_len, const char *fragment)
{
	struct nectl_err err = {0};
	struct eif_sig_check check;
	uint8_t pcr0[EIF_HASH_SIZE] = {0};
	uint8_t *section;
	size_t len;

	assert_int_equal(sign_section_encode(cert, cert_len, cose, cose_len, &section, &len, &err),
			 0);
	assert_int_equal(eif_signature_verify(section, len, pcr0, &check, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_EIF);
	if (!strstr(err.msg, fragment))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragment);
	free(section);
}

static void test_verify_malformed(void **state)
{
	/* clang-format off */
	static const uint8_t garbage[] = { 0x01, 0x02 };
	static const uint8_t three[] = { 0x83, 0x40, 0xa0, 0x40 };
	static const uint8_t no_alg[] = { 0x84, 0x41, 0xa0, 0xa0, 0x40, 0x40 };
	static const uint8_t text_alg[] = { 0x84, 0x44, 0xa1, 0x01, 0x61, 'x', 0xa0, 0x40, 0x40 };
	static const uint8_t nil_payload[] = { 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0xf6, 0x40 };
	static const uint8_t wrong_tag[] = { 0xd8, 0x11, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x40,
					     0x40 };
	static const uint8_t short_tag[] = { 0xd1, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x40, 0x40 };
	/* clang-format on */
	uint8_t pcr0[EIF_HASH_SIZE];
	struct nectl_err err = {0};
	uint8_t *section, *pem, *cose;
	size_t len, pem_len, cose_len;

	check_verify_malformed((const uint8_t *)"AB", 2, garbage, sizeof(garbage),
			       "signature section: COSE_Sign1");
	check_verify_malformed((const uint8_t *)"AB", 2, three, sizeof(three),
			       "COSE_Sign1 is not an array of 4 items");
	check_verify_malformed((const uint8_t *)"AB", 2, no_alg, sizeof(no_alg), "no algorithm");
	check_verify_malformed((const uint8_t *)"AB", 2, text_alg, sizeof(text_alg),
			       "not an integer");
	check_verify_malformed((const uint8_t *)"AB", 2, nil_payload, sizeof(nil_payload),
			       "payload is not a byte string");
	check_verify_malformed((const uint8_t *)"AB", 2, wrong_tag, sizeof(wrong_tag),
			       "unexpected CBOR tag 17");
	check_verify_malformed((const uint8_t *)"AB", 2, short_tag, sizeof(short_tag),
			       "signature section: COSE_Sign1");

	/* A well-formed COSE_Sign1 but a certificate that is not PEM. */
	random_pcr(pcr0);
	section = sign_with(&fx.curve[P384], pcr0, &len);
	assert_int_equal(eif_signature_parse(section, len, &pem, &pem_len, &cose, &cose_len, &err),
			 0);
	check_verify_malformed((const uint8_t *)"AB", 2, cose, cose_len,
			       "not a PEM X.509 certificate");
	free(section);
	free(pem);
	free(cose);
}

static void test_verify_tagged(void **state)
{
	struct nectl_err err = {0};
	struct eif_sig_check check;
	uint8_t pcr0[EIF_HASH_SIZE];
	uint8_t *section, *pem, *cose, *tagged, *again;
	size_t len, pem_len, cose_len, again_len;

	random_pcr(pcr0);
	section = sign_with(&fx.curve[P384], pcr0, &len);
	assert_int_equal(eif_signature_parse(section, len, &pem, &pem_len, &cose, &cose_len, &err),
			 0);
	tagged = malloc(cose_len + 1);
	assert_non_null(tagged);
	tagged[0] = 0xd2; /* tag 18, COSE_Sign1_Tagged */
	memcpy(tagged + 1, cose, cose_len);
	assert_int_equal(
	    sign_section_encode(pem, pem_len, tagged, cose_len + 1, &again, &again_len, &err), 0);
	assert_int_equal(eif_signature_verify(again, again_len, pcr0, &check, &err), 0);
	assert_true(check.cose_valid);
	assert_true(check.payload_matches);
	free(again);
	free(tagged);
	free(pem);
	free(cose);
	free(section);
}

static void test_section_too_large(void **state)
{
	struct nectl_err err = {0};
	uint8_t *cert = malloc(20000), *out = (uint8_t *)&err;
	size_t len = 1;

	assert_non_null(cert);
	memset(cert, 'A', 20000);
	assert_int_equal(sign_section_encode(cert, 20000, cert, 10, &out, &len, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_SIGN);
	assert_null(out);
	assert_int_equal(len, 0);
	free(cert);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_section_vector),
	    cmocka_unit_test(test_pcrinfo_vector),
	    cmocka_unit_test(test_sign_verify_p256),
	    cmocka_unit_test(test_sign_verify_p384),
	    cmocka_unit_test(test_sign_verify_p521),
	    cmocka_unit_test(test_verify_other_pcr0),
	    cmocka_unit_test(test_verify_flipped_signature),
	    cmocka_unit_test(test_verify_alg_mismatch),
	    cmocka_unit_test(test_verify_expired),
	    cmocka_unit_test(test_verify_not_yet_valid),
	    cmocka_unit_test(test_verify_tagged),
	    cmocka_unit_test(test_verify_malformed),
	    cmocka_unit_test(test_load_key_mismatch),
	    cmocka_unit_test(test_load_curve_mismatch),
	    cmocka_unit_test(test_load_rsa),
	    cmocka_unit_test(test_load_bad_files),
	    cmocka_unit_test(test_signer_pcr8),
	    cmocka_unit_test(test_cert_pcr8_errors),
	    cmocka_unit_test(test_cert_describe),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test(test_parse_hostile_sizes),
	    cmocka_unit_test(test_parse_truncations),
	    cmocka_unit_test(test_parse_second_element),
	    cmocka_unit_test(test_section_too_large),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
