/* The local CA (files, modes, reload, leaf chains) and the attestation
 * verifier against documents built here the way the NSM builds them, with
 * real OpenSSL keys: accepted, then rejected for each way one can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <cbor.h>
#include <openssl/sha.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "nectl/attest.h"
#include "nectl/cose.h"

static const char *const ca_files[] = {"root.key", "root.pem", "intermediate.key",
				       "intermediate.pem"};

struct fixture {
	char dir[64];
	struct attest_ca *ca;
	EVP_PKEY *leaf_key;
	uint8_t *leaf_der;
	size_t leaf_len;
	uint8_t *bundle[ATTEST_CA_BUNDLE_LEN];
	size_t bundle_len[ATTEST_CA_BUNDLE_LEN];
	uint64_t now_ms;
};

/* What one document holds; tests change one thing at a time. */
struct doc_spec {
	const char *module_id;
	uint64_t timestamp_ms;
	uint8_t pcr_fill; /* byte of PCR0..2; 0 is a debug enclave */
	size_t n_pcrs;
	const uint8_t *nonce;
	size_t nonce_len;
	size_t user_data_len; /* bytes of 0x55 */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void path_in(const struct fixture *f, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/ca/%s", f->dir, name);
}

static void ca_dir(const struct fixture *f, char *out, size_t cap)
{
	snprintf(out, cap, "%s/ca", f->dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nectl_err err = {0};
	char dir[96];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/nectl-attest-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	ca_dir(f, dir, sizeof(dir));
	assert_int_equal(attest_ca_load_or_init(dir, &f->ca, NULL, &err), 0);
	assert_int_equal(attest_ca_issue_leaf(f->ca, "i-0123456789abcdef0-enc0123456789abcdef",
					      ATTEST_LEAF_LIFETIME_S, &f->leaf_key, &f->leaf_der,
					      &f->leaf_len, &err),
			 0);
	assert_int_equal(attest_ca_bundle(f->ca, f->bundle, f->bundle_len, &err), 0);
	f->now_ms = now_ms();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	for (size_t i = 0; i < sizeof(ca_files) / sizeof(ca_files[0]); i++) {
		path_in(f, ca_files[i], path, sizeof(path));
		unlink(path);
	}
	path_in(f, "lock", path, sizeof(path));
	unlink(path);
	ca_dir(f, path, sizeof(path));
	rmdir(path);
	rmdir(f->dir);
	attest_ca_free(f->ca);
	EVP_PKEY_free(f->leaf_key);
	OPENSSL_free(f->leaf_der);
	for (int i = 0; i < ATTEST_CA_BUNDLE_LEN; i++)
		OPENSSL_free(f->bundle[i]);
	free(f);
	return 0;
}

static cbor_item_t *bstr(const uint8_t *p, size_t n)
{
	static const uint8_t none;

	return cbor_build_bytestring(p ? p : &none, n);
}

static void put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	assert_true(cose_cbor_map_put(map, cbor_build_string(key), value));
}

static cbor_item_t *pcr_map(const struct doc_spec *s)
{
	cbor_item_t *m = cbor_new_definite_map(s->n_pcrs);
	uint8_t v[ATTEST_PCR_LEN];

	for (size_t i = 0; i < s->n_pcrs; i++) {
		memset(v, i < 3 ? s->pcr_fill : 0, sizeof(v));
		assert_true(cose_cbor_map_put(m, cbor_build_uint8((uint8_t)i), bstr(v, sizeof(v))));
	}
	return m;
}

static cbor_item_t *optional(const uint8_t *p, size_t n)
{
	return p ? bstr(p, n) : cbor_new_null();
}

/* AWS's field order (§5.5). */
static void payload_encode(const struct fixture *f, const struct doc_spec *s, uint8_t **out,
			   size_t *len)
{
	cbor_item_t *m = cbor_new_definite_map(9), *bundle = cbor_new_definite_array(2);
	uint8_t *ud = s->user_data_len ? malloc(s->user_data_len) : NULL;

	if (ud)
		memset(ud, 0x55, s->user_data_len);
	for (int i = 0; i < ATTEST_CA_BUNDLE_LEN; i++)
		assert_true(
		    cbor_array_push(bundle, cbor_move(bstr(f->bundle[i], f->bundle_len[i]))));
	put(m, "module_id", cbor_build_string(s->module_id));
	put(m, "digest", cbor_build_string("SHA384"));
	put(m, "timestamp", cbor_build_uint64(s->timestamp_ms));
	put(m, "pcrs", pcr_map(s));
	put(m, "certificate", bstr(f->leaf_der, f->leaf_len));
	put(m, "cabundle", bundle);
	put(m, "public_key", cbor_new_null());
	put(m, "user_data", optional(ud, s->user_data_len));
	put(m, "nonce", optional(s->nonce, s->nonce_len));
	assert_int_equal(cose_cbor_dump(m, out, len), 0);
	cbor_decref(&m);
	free(ud);
}

static const uint8_t test_nonce[] = {0xde, 0xad, 0xbe, 0xef};

static struct doc_spec spec_default(const struct fixture *f)
{
	return (struct doc_spec){.module_id = "i-0123456789abcdef0-enc0123456789abcdef",
				 .timestamp_ms = f->now_ms,
				 .pcr_fill = 0xab,
				 .n_pcrs = 16,
				 .nonce = test_nonce,
				 .nonce_len = sizeof(test_nonce)};
}

static void doc_build(const struct fixture *f, const struct doc_spec *s, uint8_t **doc, size_t *len)
{
	struct nectl_err err = {0};
	uint8_t *payload;
	size_t plen;

	payload_encode(f, s, &payload, &plen);
	assert_int_equal(cose_sign1_encode(f->leaf_key, payload, plen, doc, len, &err), 0);
	free(payload);
}

static struct attest_policy policy_default(const struct fixture *f)
{
	return (struct attest_policy){.root = f->ca->root, .now_ms = f->now_ms};
}

static bool has_reason(const struct attest_verdict *v, const char *text)
{
	for (size_t i = 0; i < v->n_reasons; i++)
		if (strstr(v->reasons[i], text))
			return true;
	return false;
}

static void verify_bytes(const uint8_t *doc, size_t len, const struct attest_policy *p,
			 struct attest_verdict *v)
{
	struct nectl_err err = {0};

	assert_int_equal(attest_verify(doc, len, p, v, &err), 0);
	for (size_t i = 0; i < v->n_reasons; i++)
		print_message("  reason: %s\n", v->reasons[i]);
}

/* Builds the document of s, checks it against p, and expects a verdict
 * that holds `reason` (NULL: valid). */
static void expect(const struct fixture *f, const struct doc_spec *s, const struct attest_policy *p,
		   const char *reason)
{
	struct attest_verdict v;
	uint8_t *doc;
	size_t len;

	doc_build(f, s, &doc, &len);
	verify_bytes(doc, len, p, &v);
	if (!reason) {
		assert_true(v.valid);
		assert_int_equal(v.n_reasons, 0);
	} else {
		assert_false(v.valid);
		assert_true(has_reason(&v, reason));
	}
	attest_verdict_free(&v);
	free(doc);
}

static mode_t mode_of(const struct fixture *f, const char *name)
{
	struct stat st;
	char path[128];

	path_in(f, name, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_ca_modes(void **state)
{
	struct fixture *f = *state;
	char dir[96];
	struct stat st;

	assert_int_equal(mode_of(f, "root.key"), 0600);
	assert_int_equal(mode_of(f, "intermediate.key"), 0600);
	assert_int_equal(mode_of(f, "root.pem") & 077, 044);
	ca_dir(f, dir, sizeof(dir));
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

static void test_ca_reload_same_root(void **state)
{
	struct fixture *f = *state;
	struct nectl_err err = {0};
	struct attest_ca *again;
	bool created = true;
	char dir[96];

	ca_dir(f, dir, sizeof(dir));
	assert_int_equal(attest_ca_load_or_init(dir, &again, &created, &err), 0);
	assert_false(created);
	assert_int_equal(X509_cmp(again->root, f->ca->root), 0);
	assert_int_equal(X509_cmp(again->inter, f->ca->inter), 0);
	attest_ca_free(again);
}

static void test_ca_refuses_readable_key(void **state)
{
	struct fixture *f = *state;
	struct nectl_err err = {0};
	struct attest_ca *again = NULL;
	char dir[96], key[128];

	ca_dir(f, dir, sizeof(dir));
	path_in(f, "intermediate.key", key, sizeof(key));
	assert_int_equal(chmod(key, 0644), 0);
	assert_int_equal(attest_ca_load_or_init(dir, &again, NULL, &err), -1);
	assert_null(again);
	assert_non_null(strstr(err.msg, "intermediate.key"));
	assert_non_null(strstr(err.msg, "readable"));
	assert_int_equal(chmod(key, 0600), 0);
}

static X509 *der_cert(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;

	return d2i_X509(NULL, &p, (long)len);
}

static void test_ca_leaf_chain(void **state)
{
	struct fixture *f = *state;
	X509 *leaf = der_cert(f->leaf_der, f->leaf_len);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();

	assert_non_null(leaf);
	assert_int_equal(X509_STORE_add_cert(store, f->ca->root), 1);
	assert_true(sk_X509_push(untrusted, f->ca->inter) > 0);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
	assert_int_equal(X509_verify_cert(ctx), 1);
	/* AWS's shape: a leaf that signs, not a CA; bundle root first. */
	assert_int_equal(X509_check_ca(leaf), 0);
	assert_true(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
	assert_true(X509_check_ca(f->ca->inter) > 0);
	X509 *first = der_cert(f->bundle[0], f->bundle_len[0]);
	assert_int_equal(X509_cmp(first, f->ca->root), 0);
	X509_free(first);
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(leaf);
}

static void test_verify_accepts(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);
	struct attest_pcr_expect want = {.index = 0};

	memset(want.value, 0xab, sizeof(want.value));
	p.pcrs = &want;
	p.n_pcrs = 1;
	p.nonce = test_nonce;
	p.nonce_len = sizeof(test_nonce);
	p.max_age_ms = 60000;
	expect(f, &s, &p, NULL);
}

static void test_verify_payload_fields(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);
	struct attest_verdict v;
	uint8_t *doc;
	size_t len;

	s.user_data_len = 3;
	doc_build(f, &s, &doc, &len);
	verify_bytes(doc, len, &p, &v);
	assert_true(v.valid);
	assert_true(v.parsed);
	assert_string_equal(v.doc.module_id, s.module_id);
	assert_int_equal(v.doc.timestamp_ms, f->now_ms);
	assert_int_equal(v.doc.pcr_present, 0xffff);
	assert_int_equal(v.doc.nonce_len, sizeof(test_nonce));
	assert_memory_equal(v.doc.nonce, test_nonce, sizeof(test_nonce));
	assert_int_equal(v.doc.user_data_len, 3);
	assert_null(v.doc.public_key);
	assert_int_equal(v.doc.n_cabundle, 2);
	attest_verdict_free(&v);
	free(doc);
}

/* A flipped byte inside the payload's module_id keeps the CBOR valid. */
static void test_verify_flipped_payload_byte(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);
	struct attest_verdict v;
	uint8_t *doc, *at;
	size_t len;

	doc_build(f, &s, &doc, &len);
	at = memmem(doc, len, "i-0123", 6);
	assert_non_null(at);
	at[2] ^= 0x01;
	verify_bytes(doc, len, &p, &v);
	assert_false(v.valid);
	assert_true(has_reason(&v, "signature does not verify"));
	attest_verdict_free(&v);
	free(doc);
}

static void test_verify_wrong_root(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);

	p.root = attest_aws_root();
	assert_non_null(p.root);
	expect(f, &s, &p, "certificate chain");
	X509_free(p.root);
}

static void test_verify_expired_leaf(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);

	s.timestamp_ms = f->now_ms + (ATTEST_LEAF_LIFETIME_S + 3600u) * 1000u;
	p.now_ms = s.timestamp_ms;
	expect(f, &s, &p, "certificate has expired");
}

static void test_verify_wrong_nonce(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);
	static const uint8_t other[] = {1, 2, 3, 4};

	p.nonce = other;
	p.nonce_len = sizeof(other);
	expect(f, &s, &p, "nonce does not match");
	s.nonce = NULL;
	expect(f, &s, &p, "document has no nonce");
}

static void test_verify_wrong_pcr(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);
	struct attest_pcr_expect want[2] = {{.index = 1}, {.index = 20}};

	memset(want[0].value, 0xac, sizeof(want[0].value));
	p.pcrs = want;
	p.n_pcrs = 1;
	expect(f, &s, &p, "PCR1 does not match");
	p.pcrs = &want[1];
	expect(f, &s, &p, "PCR20 is not in the document");
}

static void test_verify_debug_pcrs(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);

	s.pcr_fill = 0;
	expect(f, &s, &p, "debug");
	p.allow_debug = true;
	expect(f, &s, &p, NULL);
}

static void test_verify_too_old(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);

	p.max_age_ms = 60000;
	p.now_ms = f->now_ms + 120000;
	expect(f, &s, &p, "older than");
	p.now_ms = f->now_ms - 600000;
	expect(f, &s, &p, "in the future");
}

static void test_verify_malformed_cbor(void **state)
{
	struct fixture *f = *state;
	struct attest_policy p = policy_default(f);
	struct attest_verdict v;
	uint8_t *doc;
	size_t len;
	struct doc_spec s = spec_default(f);

	doc_build(f, &s, &doc, &len);
	verify_bytes(doc, len / 2, &p, &v);
	assert_false(v.valid);
	assert_false(v.parsed);
	assert_true(has_reason(&v, "COSE_Sign1"));
	attest_verdict_free(&v);
	/* A signed payload that is not the map of §5.5. */
	uint8_t *bad;
	size_t bad_len;
	struct nectl_err err = {0};
	static const uint8_t not_map[] = {0x83, 0x01, 0x02, 0x03};

	assert_int_equal(
	    cose_sign1_encode(f->leaf_key, not_map, sizeof(not_map), &bad, &bad_len, &err), 0);
	verify_bytes(bad, bad_len, &p, &v);
	assert_false(v.valid);
	assert_true(has_reason(&v, "payload is not a map"));
	attest_verdict_free(&v);
	free(bad);
	free(doc);
}

static void test_verify_oversized_fields(void **state)
{
	struct fixture *f = *state;
	struct doc_spec s = spec_default(f);
	struct attest_policy p = policy_default(f);
	char long_id[ATTEST_MODULE_ID_MAX + 2];

	s.user_data_len = ATTEST_BLOB_MAX + 1;
	expect(f, &s, &p, "user_data is");
	s.user_data_len = 0;
	s.n_pcrs = ATTEST_PCR_COUNT + 1;
	expect(f, &s, &p, "pcrs");
	s.n_pcrs = 16;
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	s.module_id = long_id;
	expect(f, &s, &p, "module_id");
}

static void test_verify_oversized_document(void **state)
{
	struct fixture *f = *state;
	struct attest_policy p = policy_default(f);
	struct attest_verdict v;
	uint8_t *big = calloc(1, ATTEST_DOC_MAX + 1);

	assert_non_null(big);
	verify_bytes(big, ATTEST_DOC_MAX + 1, &p, &v);
	assert_false(v.valid);
	assert_true(has_reason(&v, "larger than"));
	attest_verdict_free(&v);
	free(big);
}

static void test_aws_root_hash(void **state)
{
	static const char want[] =
	    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";
	X509 *root = attest_aws_root();
	unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	int n;

	(void)state;
	assert_non_null(root);
	n = i2d_X509(root, &der);
	assert_true(n > 0);
	SHA256(der, (size_t)n, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(hex, want);
	OPENSSL_free(der);
	X509_free(root);
}

static void test_pcrs_from_json(void **state)
{
	struct nectl_err err = {0};
	struct attest_pcr_expect *e;
	char hex[2 * ATTEST_PCR_LEN + 1];
	json_t *j;
	size_t n;

	(void)state;
	memset(hex, 'a', sizeof(hex) - 1);
	hex[sizeof(hex) - 1] = '\0';
	j = json_pack("{s:{s:s,s:s,s:s}}", "Measurements", "HashAlgorithm", "Sha384 { ... }",
		      "PCR0", hex, "PCR8", hex);
	assert_int_equal(attest_pcrs_from_json(j, &e, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e[0].index + e[1].index, 8);
	assert_int_equal(e[0].value[0], 0xaa);
	free(e);
	json_decref(j);
	j = json_pack("{s:s}", "PCR0", "abc");
	assert_int_equal(attest_pcrs_from_json(j, &e, &n, &err), -1);
	assert_non_null(strstr(err.msg, "PCR0"));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ca_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ca_reload_same_root, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ca_refuses_readable_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ca_leaf_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_accepts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_payload_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_flipped_payload_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_wrong_root, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_expired_leaf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_wrong_nonce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_wrong_pcr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_debug_pcrs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_too_old, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_malformed_cbor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_oversized_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_oversized_document, setup, teardown),
	    cmocka_unit_test(test_aws_root_hash),
	    cmocka_unit_test(test_pcrs_from_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
