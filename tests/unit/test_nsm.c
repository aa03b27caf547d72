/* The NSM core against the API's wire format (reference/aws-nitro-ecosystem.md
 * §5.2-§5.5): every request and error path, decoded with libcbor, PCR
 * arithmetic recomputed with OpenSSL, attestation documents verified with a
 * P-384 chain (root, intermediate, leaf) generated on the fly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "nectl/nsm.h"

#define DAY	 (24L * 60 * 60)
#define CLOCK_MS 1700000000123ull
#define MODULE	 "i-0123456789abcdef0-enc0123456789abcdef"

struct signer {
	EVP_PKEY *key;
	uint8_t *der;
	size_t len;
};

static struct {
	struct signer root, inter, leaf;
	EVP_PKEY *p256;
	struct nsm_der bundle[2];
} ca;

static EVP_PKEY *key_new(const char *curve)
{
	EVP_PKEY *key = EVP_EC_gen(curve);

	assert_non_null(key);
	return key;
}

static void name_set(X509_NAME *name, const char *cn)
{
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"nectl tests",
				   -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
}

static void ext_add(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for s->key, signed by issuer (itself when NULL). */
static void signer_make(struct signer *s, const char *cn, const struct signer *issuer, bool is_ca)
{
	X509 *x = X509_new();
	X509 *ix = NULL;
	unsigned char *p = NULL;
	int len;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -DAY);
	X509_gmtime_adj(X509_getm_notAfter(x), DAY);
	X509_set_pubkey(x, s->key);
	name_set(X509_get_subject_name(x), cn);
	if (issuer) {
		const unsigned char *q = issuer->der;

		ix = d2i_X509(NULL, &q, (long)issuer->len);
		assert_non_null(ix);
		X509_set_issuer_name(x, X509_get_subject_name(ix));
	} else {
		X509_set_issuer_name(x, X509_get_subject_name(x));
	}
	ext_add(x, ix ? ix : x, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	assert_true(X509_sign(x, issuer ? issuer->key : s->key, EVP_sha384()) > 0);
	len = i2d_X509(x, &p);
	assert_true(len > 0);
	s->der = p;
	s->len = (size_t)len;
	X509_free(ix);
	X509_free(x);
}

static int group_setup(void **state)
{
	ca.root.key = key_new("P-384");
	ca.inter.key = key_new("P-384");
	ca.leaf.key = key_new("P-384");
	ca.p256 = key_new("P-256");
	signer_make(&ca.root, "root", NULL, true);
	signer_make(&ca.inter, "intermediate", &ca.root, true);
	signer_make(&ca.leaf, "leaf", &ca.inter, false);
	ca.bundle[0] = (struct nsm_der){ca.root.der, ca.root.len};
	ca.bundle[1] = (struct nsm_der){ca.inter.der, ca.inter.len};
	return 0;
}

static int group_teardown(void **state)
{
	struct signer *all[] = {&ca.root, &ca.inter, &ca.leaf};

	for (size_t i = 0; i < 3; i++) {
		EVP_PKEY_free(all[i]->key);
		OPENSSL_free(all[i]->der);
	}
	EVP_PKEY_free(ca.p256);
	return 0;
}

static uint64_t fixed_clock(void *ctx)
{
	return *(uint64_t *)ctx;
}

static uint64_t clock_value = CLOCK_MS;

static void cfg_init(struct nsm_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (unsigned i = 0; i < NSM_PCR_BOOT_LOCKED; i++)
		memset(cfg->pcrs[i], 0, NSM_PCR_LEN);
	for (unsigned i = 0; i < 5; i++)
		memset(cfg->pcrs[i], 0x10 + i, NSM_PCR_LEN);
	memset(cfg->pcrs[8], 0x18, NSM_PCR_LEN);
	cfg->module_id = MODULE;
	cfg->key = ca.leaf.key;
	cfg->cert = (struct nsm_der){ca.leaf.der, ca.leaf.len};
	cfg->cabundle = ca.bundle;
	cfg->cabundle_len = 2;
	cfg->clock_ms = fixed_clock;
	cfg->clock_ctx = &clock_value;
}

static struct nsm *nsm_make(bool debug)
{
	struct nsm_cfg cfg;
	struct nectl_err err = {0};
	struct nsm *n = NULL;

	cfg_init(&cfg);
	cfg.debug = debug;
	if (nsm_new(&n, &cfg, &err))
		fail_msg("nsm_new: %s", err.msg);
	return n;
}

static int nsm_setup(void **state)
{
	*state = nsm_make(false);
	return 0;
}

static int nsm_teardown(void **state)
{
	nsm_free(*state);
	return 0;
}

/* ---- requests and responses ---- */

static cbor_item_t *answer_cap(struct nsm *n, const uint8_t *req, size_t len, size_t cap)
{
	uint8_t *resp = malloc(cap ? cap : 1);
	struct cbor_load_result res;
	size_t resp_len = 0;
	cbor_item_t *item;

	assert_non_null(resp);
	assert_int_equal(nsm_handle(n, req, len, resp, cap, &resp_len), 0);
	assert_true(resp_len > 0 && resp_len <= cap);
	item = cbor_load(resp, resp_len, &res);
	assert_non_null(item);
	assert_int_equal(res.read, resp_len);
	free(resp);
	return item;
}

static cbor_item_t *answer(struct nsm *n, const uint8_t *req, size_t len)
{
	return answer_cap(n, req, len, NSM_RESPONSE_MAX);
}

static cbor_item_t *answer_item_cap(struct nsm *n, const cbor_item_t *req, size_t resp_cap)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len = cbor_serialize_alloc(req, &buf, &cap);
	cbor_item_t *item;

	assert_true(len > 0);
	item = answer_cap(n, buf, len, resp_cap);
	free(buf);
	return item;
}

static cbor_item_t *answer_item(struct nsm *n, const cbor_item_t *req)
{
	return answer_item_cap(n, req, NSM_RESPONSE_MAX);
}

static bool text_is(const cbor_item_t *item, const char *text)
{
	size_t n = strlen(text);

	return cbor_isa_string(item) && cbor_string_length(item) == n &&
	       memcmp(cbor_string_handle(item), text, n) == 0;
}

/* The value under key in a map; fails the test when absent. */
static cbor_item_t *map_get(const cbor_item_t *map, const char *key)
{
	struct cbor_pair *pairs = cbor_map_handle(map);

	assert_true(cbor_isa_map(map));
	for (size_t i = 0; i < cbor_map_size(map); i++)
		if (text_is(pairs[i].key, key))
			return pairs[i].value;
	fail_msg("no key %s", key);
	return NULL;
}

/* Checks the keys of map are exactly keys, in this order. */
static void map_keys(const cbor_item_t *map, const char *const *keys, size_t n)
{
	struct cbor_pair *pairs = cbor_map_handle(map);

	assert_true(cbor_isa_map(map));
	assert_int_equal(cbor_map_size(map), n);
	for (size_t i = 0; i < n; i++)
		if (!text_is(pairs[i].key, keys[i]))
			fail_msg("key %zu is not %s", i, keys[i]);
}

/* {name: body} with one key: returns body. */
static cbor_item_t *variant(const cbor_item_t *resp, const char *name)
{
	const char *keys[] = {name};

	map_keys(resp, keys, 1);
	return map_get(resp, name);
}

static void expect_error(cbor_item_t *resp, const char *code)
{
	if (!text_is(variant(resp, "Error"), code))
		fail_msg("expected Error %s", code);
	cbor_decref(&resp);
}

/* A response that is not {"Error": ...}. */
static void expect_ok(cbor_item_t *resp)
{
	if (cbor_isa_map(resp) && cbor_map_size(resp) == 1 &&
	    text_is(cbor_map_handle(resp)[0].key, "Error"))
		fail_msg("unexpected error response");
	cbor_decref(&resp);
}

static void expect_text(cbor_item_t *resp, const char *text)
{
	assert_true(text_is(resp, text));
	cbor_decref(&resp);
}

static void add(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_item_t *k = cbor_build_string(key);

	assert_true(cbor_map_add(map, (struct cbor_pair){.key = k, .value = value}));
	cbor_decref(&k);
	cbor_decref(&value);
}

/* {name: {key: value}}, or {name: {}} when key is NULL; consumes value. */
static cbor_item_t *req_one(const char *name, const char *key, cbor_item_t *value)
{
	cbor_item_t *outer = cbor_new_definite_map(1);
	cbor_item_t *inner = cbor_new_definite_map(2);

	if (key)
		add(inner, key, value);
	add(outer, name, inner);
	return outer;
}

static cbor_item_t *answer_one(struct nsm *n, const char *name, const char *key, cbor_item_t *value)
{
	cbor_item_t *req = req_one(name, key, value);
	cbor_item_t *resp = answer_item(n, req);

	cbor_decref(&req);
	return resp;
}

static cbor_item_t *bstr(const uint8_t *data, size_t len)
{
	static const uint8_t none;

	return cbor_build_bytestring(data ? data : &none, len);
}

static cbor_item_t *extend_req(unsigned index, const uint8_t *data, size_t len)
{
	cbor_item_t *outer = cbor_new_definite_map(1);
	cbor_item_t *inner = cbor_new_definite_map(2);

	add(inner, "index", cbor_build_uint16((uint16_t)index));
	add(inner, "data", bstr(data, len));
	add(outer, "ExtendPCR", inner);
	return outer;
}

static cbor_item_t *extend(struct nsm *n, unsigned index, const uint8_t *data, size_t len)
{
	cbor_item_t *req = extend_req(index, data, len);
	cbor_item_t *resp = answer_item(n, req);

	cbor_decref(&req);
	return resp;
}

/* DescribePCR(index): the lock flag; copies the value into value. */
static bool describe_pcr(struct nsm *n, unsigned index, uint8_t value[NSM_PCR_LEN])
{
	static const char *const keys[] = {"lock", "data"};
	cbor_item_t *resp = answer_one(n, "DescribePCR", "index", cbor_build_uint8((uint8_t)index));
	cbor_item_t *body = variant(resp, "DescribePCR");
	cbor_item_t *data = map_get(body, "data");
	cbor_item_t *lock = map_get(body, "lock");
	bool locked;

	map_keys(body, keys, 2);
	assert_true(cbor_isa_bytestring(data));
	assert_int_equal(cbor_bytestring_length(data), NSM_PCR_LEN);
	memcpy(value, cbor_bytestring_handle(data), NSM_PCR_LEN);
	assert_true(cbor_is_bool(lock));
	locked = cbor_get_bool(lock);
	cbor_decref(&resp);
	return locked;
}

static void sha384_extend(uint8_t pcr[NSM_PCR_LEN], const uint8_t *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha384(), NULL), 1);
	EVP_DigestUpdate(ctx, pcr, NSM_PCR_LEN);
	EVP_DigestUpdate(ctx, data, len);
	assert_int_equal(EVP_DigestFinal_ex(ctx, pcr, NULL), 1);
	EVP_MD_CTX_free(ctx);
}

/* ---- the exact bytes of reference §5.2 ---- */

static const uint8_t req_describe_nsm[] = "\x6b"
					  "DescribeNSM";
static const uint8_t req_get_random[] = "\x69"
					"GetRandom";
static const uint8_t req_describe_pcr0[] = {0xa1, 0x6b, 'D', 'e', 's', 'c', 'r',
					    'i',  'b',	'e', 'P', 'C', 'R', 0xa1,
					    0x65, 'i',	'n', 'd', 'e', 'x', 0x00};
static const uint8_t req_lock_pcrs_32[] = {0xa1, 0x68, 'L', 'o', 'c', 'k', 'P', 'C',  'R', 's',
					   0xa1, 0x65, 'r', 'a', 'n', 'g', 'e', 0x18, 0x20};
static const uint8_t req_attest_nulls[] = {
    0xa1, 0x6b, 'A',  't', 't', 'e', 's', 't', 'a', 't',  'i',	'o', 'n', 0xa3, 0x69,
    'u',  's',	'e',  'r', '_', 'd', 'a', 't', 'a', 0xf6, 0x65, 'n', 'o', 'n',	'c',
    'e',  0xf6, 0x6a, 'p', 'u', 'b', 'l', 'i', 'c', '_',  'k',	'e', 'y', 0xf6};

static void test_describe_nsm(void **state)
{
	static const char *const keys[] = {"version_major", "version_minor", "version_patch",
					   "module_id",	    "max_pcrs",	     "locked_pcrs",
					   "digest"};
	cbor_item_t *resp = answer(*state, req_describe_nsm, sizeof(req_describe_nsm) - 1);
	cbor_item_t *body = variant(resp, "DescribeNSM");
	cbor_item_t *locked = map_get(body, "locked_pcrs");

	map_keys(body, keys, 7);
	assert_int_equal(cbor_get_int(map_get(body, "version_major")), 1);
	assert_int_equal(cbor_get_int(map_get(body, "version_minor")), 0);
	assert_int_equal(cbor_get_int(map_get(body, "version_patch")), 0);
	assert_true(text_is(map_get(body, "module_id"), MODULE));
	assert_int_equal(cbor_get_int(map_get(body, "max_pcrs")), 32);
	assert_true(text_is(map_get(body, "digest"), "SHA384"));
	assert_true(cbor_isa_array(locked));
	assert_int_equal(cbor_array_size(locked), NSM_PCR_BOOT_LOCKED);
	for (size_t i = 0; i < NSM_PCR_BOOT_LOCKED; i++)
		assert_int_equal(cbor_get_int(cbor_array_handle(locked)[i]), i);
	cbor_decref(&resp);
}

/* The Linux driver's hwrng takes the 19-byte prefix literally and decodes
 * only the 0x57..0x5b length forms (linux-ne-and-nsm-drivers.md §8.5). */
static void test_get_random_hwrng(void **state)
{
	static const uint8_t prefix[] = "\xa1\x69GetRandom\xa1\x66random\x59\x01\x00";
	uint8_t a[NSM_RESPONSE_MAX], b[NSM_RESPONSE_MAX];
	size_t alen = 0, blen = 0;

	assert_int_equal(nsm_handle(*state, req_get_random, 10, a, sizeof(a), &alen), 0);
	assert_int_equal(nsm_handle(*state, req_get_random, 10, b, sizeof(b), &blen), 0);
	assert_int_equal(alen, sizeof(prefix) - 1 + NSM_RANDOM_LEN);
	assert_int_equal(blen, alen);
	assert_memory_equal(a, prefix, sizeof(prefix) - 1);
	assert_memory_not_equal(a + 22, b + 22, NSM_RANDOM_LEN);
}

static void test_describe_pcr(void **state)
{
	uint8_t value[NSM_PCR_LEN], want[NSM_PCR_LEN];
	cbor_item_t *resp = answer(*state, req_describe_pcr0, sizeof(req_describe_pcr0));
	cbor_item_t *body = variant(resp, "DescribePCR");

	memset(want, 0x10, sizeof(want));
	assert_memory_equal(cbor_bytestring_handle(map_get(body, "data")), want, NSM_PCR_LEN);
	cbor_decref(&resp);
	assert_true(describe_pcr(*state, 8, value));
	memset(want, 0x18, sizeof(want));
	assert_memory_equal(value, want, NSM_PCR_LEN);
	assert_true(describe_pcr(*state, 15, value));
	memset(want, 0, sizeof(want));
	assert_memory_equal(value, want, NSM_PCR_LEN);
	assert_false(describe_pcr(*state, 16, value));
	assert_memory_equal(value, want, NSM_PCR_LEN);
	assert_false(describe_pcr(*state, 31, value));
}

static void test_extend_pcr(void **state)
{
	static const uint8_t d1[] = {1, 2, 3};
	uint8_t want[NSM_PCR_LEN] = {0}, big[3000], value[NSM_PCR_LEN];
	cbor_item_t *resp, *data;

	memset(big, 0xab, sizeof(big));
	sha384_extend(want, d1, sizeof(d1));
	resp = extend(*state, 17, d1, sizeof(d1));
	data = map_get(variant(resp, "ExtendPCR"), "data");
	assert_int_equal(cbor_bytestring_length(data), NSM_PCR_LEN);
	assert_memory_equal(cbor_bytestring_handle(data), want, NSM_PCR_LEN);
	assert_int_equal(cbor_map_size(variant(resp, "ExtendPCR")), 1);
	cbor_decref(&resp);
	sha384_extend(want, big, sizeof(big));
	expect_ok(extend(*state, 17, big, sizeof(big)));
	sha384_extend(want, NULL, 0);
	expect_ok(extend(*state, 17, NULL, 0));
	assert_false(describe_pcr(*state, 17, value));
	assert_memory_equal(value, want, NSM_PCR_LEN);
}

static void test_extend_text_data(void **state)
{
	uint8_t want[NSM_PCR_LEN] = {0}, value[NSM_PCR_LEN];
	cbor_item_t *req = cbor_new_definite_map(1), *inner = cbor_new_definite_map(2);

	add(inner, "index", cbor_build_uint8(20));
	add(inner, "data", cbor_build_string("abc"));
	add(req, "ExtendPCR", inner);
	expect_ok(answer_item(*state, req));
	cbor_decref(&req);
	sha384_extend(want, (const uint8_t *)"abc", 3);
	describe_pcr(*state, 20, value);
	assert_memory_equal(value, want, NSM_PCR_LEN);
}

static void test_extend_locked(void **state)
{
	static const uint8_t d[] = {9};
	uint8_t value[NSM_PCR_LEN], want[NSM_PCR_LEN];

	for (unsigned i = 0; i < NSM_PCR_BOOT_LOCKED; i++)
		expect_error(extend(*state, i, d, 1), "ReadOnlyIndex");
	memset(want, 0x13, sizeof(want));
	describe_pcr(*state, 3, value);
	assert_memory_equal(value, want, NSM_PCR_LEN);
}

static void test_index_32(void **state)
{
	static const uint8_t d[] = {9};

	expect_error(extend(*state, 32, d, 1), "InvalidIndex");
	expect_error(extend(*state, 0xffff, d, 1), "InvalidIndex");
	expect_error(answer_one(*state, "DescribePCR", "index", cbor_build_uint8(32)),
		     "InvalidIndex");
	expect_error(answer_one(*state, "LockPCR", "index", cbor_build_uint8(32)), "InvalidIndex");
	expect_error(answer_one(*state, "LockPCRs", "range", cbor_build_uint8(33)), "InvalidIndex");
}

static void test_lock_pcr(void **state)
{
	static const uint8_t d[] = {9};
	uint8_t value[NSM_PCR_LEN];

	expect_text(answer_one(*state, "LockPCR", "index", cbor_build_uint8(16)), "LockPCR");
	assert_true(describe_pcr(*state, 16, value));
	assert_false(describe_pcr(*state, 17, value));
	expect_error(extend(*state, 16, d, 1), "ReadOnlyIndex");
	expect_error(answer_one(*state, "LockPCR", "index", cbor_build_uint8(16)), "ReadOnlyIndex");
	expect_error(answer_one(*state, "LockPCR", "index", cbor_build_uint8(5)), "ReadOnlyIndex");
}

static void test_lock_pcrs(void **state)
{
	static const uint8_t d[] = {9};
	uint8_t value[NSM_PCR_LEN];
	cbor_item_t *resp;

	expect_text(answer_one(*state, "LockPCRs", "range", cbor_build_uint8(20)), "LockPCRs");
	for (unsigned i = 16; i < 20; i++)
		assert_true(describe_pcr(*state, i, value));
	assert_false(describe_pcr(*state, 20, value));
	expect_error(extend(*state, 19, d, 1), "ReadOnlyIndex");
	expect_ok(extend(*state, 20, d, 1));
	resp = answer(*state, req_describe_nsm, sizeof(req_describe_nsm) - 1);
	assert_int_equal(cbor_array_size(map_get(variant(resp, "DescribeNSM"), "locked_pcrs")), 20);
	cbor_decref(&resp);
	/* Locking what is locked already is no error for a range. */
	expect_text(answer(*state, req_lock_pcrs_32, sizeof(req_lock_pcrs_32)), "LockPCRs");
	assert_true(describe_pcr(*state, 31, value));
	expect_text(answer_one(*state, "LockPCRs", "range", cbor_build_uint8(0)), "LockPCRs");
}

static void test_malformed(void **state)
{
	static const uint8_t garbage[] = {0xff, 0x00};
	static const uint8_t truncated[] = {0xa1, 0x6b, 'D', 'e'};
	static const uint8_t trailing[] = "\x6b"
					  "DescribeNSM\x00";
	static const uint8_t indefinite[] = {0x7f, 0x69, 'G', 'e', 't', 'R',
					     'a',  'n',	 'd', 'o', 'm', 0xff};
	static const uint8_t deep[64] = {[0 ... 62] = 0x81, [63] = 0x00};
	struct nsm *n = *state;

	expect_error(answer(n, garbage, sizeof(garbage)), "InvalidOperation");
	expect_error(answer(n, truncated, sizeof(truncated)), "InvalidOperation");
	expect_error(answer(n, trailing, sizeof(trailing) - 1), "InvalidOperation");
	expect_error(answer(n, indefinite, sizeof(indefinite)), "InvalidOperation");
	expect_error(answer(n, deep, sizeof(deep)), "InvalidOperation");
	expect_error(answer(n, garbage, 0), "InvalidOperation");
}

static void test_unknown_request(void **state)
{
	static const uint8_t foo[] = "\x63"
				     "Foo";
	static const uint8_t num[] = {0x18, 0x20};
	cbor_item_t *two = cbor_new_definite_map(2);

	expect_error(answer(*state, foo, 4), "InvalidOperation");
	expect_error(answer(*state, num, 2), "InvalidOperation");
	expect_error(answer_one(*state, "Foo", NULL, NULL), "InvalidOperation");
	expect_error(answer_one(*state, "GetAttestationDoc", NULL, NULL), "InvalidOperation");
	add(two, "DescribePCR", cbor_new_definite_map(0));
	add(two, "LockPCR", cbor_new_definite_map(0));
	expect_error(answer_item(*state, two), "InvalidOperation");
	cbor_decref(&two);
}

/* The right name with the wrong shape is no request either. */
static void test_wrong_types(void **state)
{
	static const uint8_t lock_text[] = "\x67"
					   "LockPCR";
	struct nsm *n = *state;
	cbor_item_t *req = cbor_new_definite_map(1);

	expect_error(answer(n, lock_text, 8), "InvalidOperation");
	expect_error(answer_one(n, "DescribeNSM", NULL, NULL), "InvalidOperation");
	add(req, "DescribePCR", cbor_build_uint8(1));
	expect_error(answer_item(n, req), "InvalidOperation");
	cbor_decref(&req);
	expect_error(answer_one(n, "DescribePCR", "index", cbor_build_string("1")),
		     "InvalidOperation");
	expect_error(answer_one(n, "DescribePCR", "index", cbor_build_negint8(0)),
		     "InvalidOperation");
	expect_error(answer_one(n, "DescribePCR", "index", cbor_build_uint32(0x10000)),
		     "InvalidOperation");
	expect_error(answer_one(n, "DescribePCR", "wrong", cbor_build_uint8(1)),
		     "InvalidOperation");
	expect_error(answer_one(n, "ExtendPCR", "index", cbor_build_uint8(16)), "InvalidOperation");
	expect_error(answer_one(n, "LockPCRs", "range", cbor_build_bool(true)), "InvalidOperation");
	expect_error(answer_one(n, "Attestation", "nonce", cbor_build_uint8(1)),
		     "InvalidOperation");
	expect_error(answer_one(n, "Attestation", "user_data", cbor_new_definite_array(0)),
		     "InvalidOperation");
}

static cbor_item_t *attest_req(size_t ud, size_t nonce, size_t pk)
{
	static uint8_t fill[NSM_FIELD_MAX + 1];
	cbor_item_t *outer = cbor_new_definite_map(1);
	cbor_item_t *inner = cbor_new_definite_map(3);

	memset(fill, 0x5a, sizeof(fill));
	add(inner, "user_data", bstr(fill, ud));
	add(inner, "nonce", bstr(fill, nonce));
	add(inner, "public_key", bstr(fill, pk));
	add(outer, "Attestation", inner);
	return outer;
}

static void test_oversized_fields(void **state)
{
	size_t sizes[3][3] = {{1025, 0, 0}, {0, 1025, 0}, {0, 0, 1025}};
	cbor_item_t *req;

	for (size_t i = 0; i < 3; i++) {
		req = attest_req(sizes[i][0], sizes[i][1], sizes[i][2]);
		expect_error(answer_item(*state, req), "InvalidArgument");
		cbor_decref(&req);
	}
	req = attest_req(1024, 1024, 1024);
	expect_ok(answer_item(*state, req));
	cbor_decref(&req);
}

static void test_request_too_large(void **state)
{
	static uint8_t data[4080];
	cbor_item_t *req = extend_req(16, data, sizeof(data));
	unsigned char *buf = NULL;
	size_t cap = 0, len = cbor_serialize_alloc(req, &buf, &cap);
	uint8_t value[NSM_PCR_LEN], zero[NSM_PCR_LEN] = {0};

	assert_true(len > NSM_REQUEST_MAX);
	expect_error(answer(*state, buf, len), "InputTooLarge");
	describe_pcr(*state, 16, value);
	assert_memory_equal(value, zero, NSM_PCR_LEN);
	free(buf);
	cbor_decref(&req);
}

static void test_response_over_cap(void **state)
{
	static const uint8_t d[] = {1};
	uint8_t small[16];
	size_t len = 99;
	cbor_item_t *req = extend_req(16, d, 1);

	expect_error(answer_cap(*state, req_attest_nulls, sizeof(req_attest_nulls), 512),
		     "InputTooLarge");
	expect_error(answer_cap(*state, req_get_random, 10, 200), "InputTooLarge");
	expect_error(answer_item_cap(*state, req, 40), "BufferTooSmall");
	cbor_decref(&req);
	assert_int_equal(nsm_handle(*state, req_get_random, 10, small, sizeof(small), &len), -1);
	assert_int_equal(len, 0);
}

/* ---- attestation documents ---- */

struct doc {
	cbor_item_t *cose;
	cbor_item_t *payload;
	const uint8_t *payload_raw;
	size_t payload_len;
};

static void doc_get(struct nsm *n, const cbor_item_t *req, struct doc *d)
{
	static const char *const keys[] = {"document"};
	cbor_item_t *resp = answer_item(n, req);
	cbor_item_t *body = variant(resp, "Attestation");
	cbor_item_t *document = map_get(body, "document");
	struct cbor_load_result res;

	map_keys(body, keys, 1);
	assert_true(cbor_isa_bytestring(document));
	d->cose =
	    cbor_load(cbor_bytestring_handle(document), cbor_bytestring_length(document), &res);
	assert_non_null(d->cose);
	assert_int_equal(res.read, cbor_bytestring_length(document));
	cbor_decref(&resp);
	assert_true(cbor_isa_array(d->cose) && cbor_array_size(d->cose) == 4);
	d->payload_raw = cbor_bytestring_handle(cbor_array_handle(d->cose)[2]);
	d->payload_len = cbor_bytestring_length(cbor_array_handle(d->cose)[2]);
	d->payload = cbor_load(d->payload_raw, d->payload_len, &res);
	assert_non_null(d->payload);
}

static void doc_free(struct doc *d)
{
	cbor_decref(&d->cose);
	cbor_decref(&d->payload);
}

/* Sig_structure ["Signature1", protected, h'', payload] (RFC 8152 §4.4). */
static uint8_t *sig_structure(const cbor_item_t *prot, const cbor_item_t *payload, size_t *len)
{
	cbor_item_t *a = cbor_new_definite_array(4);
	cbor_item_t *items[4] = {
	    cbor_build_string("Signature1"),
	    bstr(cbor_bytestring_handle(prot), cbor_bytestring_length(prot)), bstr(NULL, 0),
	    bstr(cbor_bytestring_handle(payload), cbor_bytestring_length(payload))};
	unsigned char *buf = NULL;
	size_t cap = 0;

	for (size_t i = 0; i < 4; i++) {
		assert_true(cbor_array_push(a, items[i]));
		cbor_decref(&items[i]);
	}
	*len = cbor_serialize_alloc(a, &buf, &cap);
	assert_true(*len > 0);
	cbor_decref(&a);
	return buf;
}

static bool doc_verify(const struct doc *d, EVP_PKEY *key)
{
	cbor_item_t **f = cbor_array_handle(d->cose);
	const uint8_t *rs = cbor_bytestring_handle(f[3]);
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *der = NULL, *tbs;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t tbs_len;
	int der_len, ok;

	assert_int_equal(cbor_bytestring_length(f[3]), 96);
	ECDSA_SIG_set0(sig, BN_bin2bn(rs, 48, NULL), BN_bin2bn(rs + 48, 48, NULL));
	der_len = i2d_ECDSA_SIG(sig, &der);
	tbs = sig_structure(f[0], f[2], &tbs_len);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, key), 1);
	ok = EVP_DigestVerify(ctx, der, (size_t)der_len, tbs, tbs_len);
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	free(tbs);
	return ok == 1;
}

static void expect_bytes(const cbor_item_t *item, const uint8_t *want, size_t len)
{
	assert_true(cbor_isa_bytestring(item));
	assert_int_equal(cbor_bytestring_length(item), len);
	if (len)
		assert_memory_equal(cbor_bytestring_handle(item), want, len);
}

/* pcrs holds indexes 0..count-1; value(i) is the expected content. */
static void expect_pcrs(const cbor_item_t *pcrs, size_t count, const struct nsm_cfg *cfg)
{
	struct cbor_pair *pairs = cbor_map_handle(pcrs);
	uint8_t want[NSM_PCR_LEN];

	assert_true(cbor_isa_map(pcrs));
	assert_int_equal(cbor_map_size(pcrs), count);
	for (size_t i = 0; i < count; i++) {
		assert_true(cbor_isa_uint(pairs[i].key));
		assert_int_equal(cbor_get_int(pairs[i].key), i);
		memset(want, 0, sizeof(want));
		if (cfg && i < NSM_PCR_BOOT_LOCKED)
			memcpy(want, cfg->pcrs[i], NSM_PCR_LEN);
		expect_bytes(pairs[i].value, want, NSM_PCR_LEN);
	}
}

static void test_attestation_shape(void **state)
{
	static const char *const keys[] = {"module_id",	 "digest",	"timestamp",
					   "pcrs",	 "certificate", "cabundle",
					   "public_key", "user_data",	"nonce"};
	static const uint8_t prot[] = {0xa1, 0x01, 0x38, 0x22};
	static const uint8_t head[] = "\xa9\x69module_id\x78\x27" MODULE;
	cbor_item_t *req = attest_req(3, 5, 7);
	cbor_item_t *bundle, **f;
	uint8_t fill[8];
	struct nsm_cfg cfg;
	struct doc d;

	cfg_init(&cfg);
	memset(fill, 0x5a, sizeof(fill));
	doc_get(*state, req, &d);
	cbor_decref(&req);
	f = cbor_array_handle(d.cose);
	expect_bytes(f[0], prot, sizeof(prot));
	assert_true(cbor_isa_map(f[1]) && cbor_map_size(f[1]) == 0);
	assert_true(doc_verify(&d, ca.leaf.key));
	assert_false(doc_verify(&d, ca.inter.key));
	map_keys(d.payload, keys, 9);
	assert_memory_equal(d.payload_raw, head, sizeof(head) - 1);
	assert_true(text_is(map_get(d.payload, "module_id"), MODULE));
	assert_true(text_is(map_get(d.payload, "digest"), "SHA384"));
	assert_true(cbor_isa_uint(map_get(d.payload, "timestamp")));
	assert_int_equal(cbor_get_int(map_get(d.payload, "timestamp")), CLOCK_MS);
	expect_pcrs(map_get(d.payload, "pcrs"), NSM_PCR_BOOT_LOCKED, &cfg);
	expect_bytes(map_get(d.payload, "certificate"), ca.leaf.der, ca.leaf.len);
	bundle = map_get(d.payload, "cabundle");
	assert_true(cbor_isa_array(bundle) && cbor_array_size(bundle) == 2);
	expect_bytes(cbor_array_handle(bundle)[0], ca.root.der, ca.root.len);
	expect_bytes(cbor_array_handle(bundle)[1], ca.inter.der, ca.inter.len);
	expect_bytes(map_get(d.payload, "public_key"), fill, 7);
	expect_bytes(map_get(d.payload, "user_data"), fill, 3);
	expect_bytes(map_get(d.payload, "nonce"), fill, 5);
	doc_free(&d);
}

static void test_attestation_nulls(void **state)
{
	struct nsm *n = *state;
	cbor_item_t *req = req_one("Attestation", NULL, NULL);
	struct doc d;

	doc_get(n, req, &d);
	cbor_decref(&req);
	assert_true(cbor_is_null(map_get(d.payload, "public_key")));
	assert_true(cbor_is_null(map_get(d.payload, "user_data")));
	assert_true(cbor_is_null(map_get(d.payload, "nonce")));
	assert_true(doc_verify(&d, ca.leaf.key));
	doc_free(&d);
	req = req_one("Attestation", "nonce", cbor_build_string("hi"));
	doc_get(n, req, &d);
	cbor_decref(&req);
	expect_bytes(map_get(d.payload, "nonce"), (const uint8_t *)"hi", 2);
	doc_free(&d);
	req = req_one("Attestation", "user_data", bstr(NULL, 0));
	doc_get(n, req, &d);
	cbor_decref(&req);
	expect_bytes(map_get(d.payload, "user_data"), NULL, 0);
	doc_free(&d);
}

static void test_attestation_user_locked(void **state)
{
	static const uint8_t data[] = {7, 7};
	cbor_item_t *req = req_one("Attestation", NULL, NULL);
	uint8_t want[NSM_PCR_LEN] = {0};
	cbor_item_t *pcrs;
	struct doc d;

	expect_ok(extend(*state, 16, data, 2));
	expect_text(answer_one(*state, "LockPCR", "index", cbor_build_uint8(16)), "LockPCR");
	doc_get(*state, req, &d);
	cbor_decref(&req);
	pcrs = map_get(d.payload, "pcrs");
	assert_int_equal(cbor_map_size(pcrs), 17);
	sha384_extend(want, data, 2);
	expect_bytes(cbor_map_handle(pcrs)[16].value, want, NSM_PCR_LEN);
	doc_free(&d);
}

static void test_attestation_debug(void **state)
{
	struct nsm *n = nsm_make(true);
	cbor_item_t *req = req_one("Attestation", NULL, NULL);
	uint8_t value[NSM_PCR_LEN], want[NSM_PCR_LEN];
	struct doc d;

	doc_get(n, req, &d);
	cbor_decref(&req);
	expect_pcrs(map_get(d.payload, "pcrs"), NSM_PCR_BOOT_LOCKED, NULL);
	assert_true(doc_verify(&d, ca.leaf.key));
	doc_free(&d);
	/* Only documents hide them: the enclave still reads its own PCRs. */
	memset(want, 0x10, sizeof(want));
	describe_pcr(n, 0, value);
	assert_memory_equal(value, want, NSM_PCR_LEN);
	nsm_free(n);
}

/* ---- configuration ---- */

static void expect_cfg_error(const struct nsm_cfg *cfg, const char *fragment)
{
	struct nectl_err err = {0};
	struct nsm *n = (struct nsm *)&err;

	assert_int_equal(nsm_new(&n, cfg, &err), -1);
	assert_null(n);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
	if (!strstr(err.msg, fragment))
		fail_msg("'%s' lacks '%s'", err.msg, fragment);
}

static void test_cfg_errors(void **state)
{
	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	uint8_t big[NSM_DER_MAX + 1] = {0};
	struct nsm_der swapped[2] = {ca.bundle[1], ca.bundle[0]};
	struct nsm_der bad = {junk, sizeof(junk)};
	struct nsm_cfg cfg;

	cfg_init(&cfg);
	cfg.key = ca.p256;
	expect_cfg_error(&cfg, "P-384");
	cfg_init(&cfg);
	cfg.key = ca.inter.key;
	expect_cfg_error(&cfg, "does not match");
	cfg_init(&cfg);
	cfg.cabundle = swapped;
	expect_cfg_error(&cfg, "root first");
	cfg_init(&cfg);
	cfg.cabundle_len = 1;
	expect_cfg_error(&cfg, "issuer");
	cfg_init(&cfg);
	cfg.cabundle = &bad;
	cfg.cabundle_len = 1;
	expect_cfg_error(&cfg, "not a DER certificate");
	cfg_init(&cfg);
	cfg.cert = (struct nsm_der){big, sizeof(big)};
	expect_cfg_error(&cfg, "1024");
	cfg_init(&cfg);
	cfg.cabundle_len = 0;
	expect_cfg_error(&cfg, "CA bundle");
	cfg_init(&cfg);
	cfg.cabundle_len = NSM_CABUNDLE_MAX + 1;
	expect_cfg_error(&cfg, "CA bundle");
	cfg_init(&cfg);
	cfg.module_id = "";
	expect_cfg_error(&cfg, "module ID");
	cfg_init(&cfg);
	cfg.key = NULL;
	expect_cfg_error(&cfg, "P-384");
}

static void test_real_clock(void **state)
{
	struct nsm_cfg cfg;
	struct nectl_err err = {0};
	struct nsm *n = NULL;
	cbor_item_t *req = req_one("Attestation", NULL, NULL);
	uint64_t before = (uint64_t)time(NULL) * 1000, stamp;
	struct doc d;

	cfg_init(&cfg);
	cfg.clock_ms = NULL;
	assert_int_equal(nsm_new(&n, &cfg, &err), 0);
	doc_get(n, req, &d);
	stamp = cbor_get_int(map_get(d.payload, "timestamp"));
	assert_true(stamp >= before && stamp <= before + 60000);
	doc_free(&d);
	cbor_decref(&req);
	nsm_free(n);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nsm_setup, nsm_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_describe_nsm),
	    T(test_get_random_hwrng),
	    T(test_describe_pcr),
	    T(test_extend_pcr),
	    T(test_extend_text_data),
	    T(test_extend_locked),
	    T(test_index_32),
	    T(test_lock_pcr),
	    T(test_lock_pcrs),
	    T(test_malformed),
	    T(test_unknown_request),
	    T(test_wrong_types),
	    T(test_oversized_fields),
	    T(test_request_too_large),
	    T(test_response_over_cap),
	    T(test_attestation_shape),
	    T(test_attestation_nulls),
	    T(test_attestation_user_locked),
	    cmocka_unit_test(test_attestation_debug),
	    cmocka_unit_test(test_cfg_errors),
	    cmocka_unit_test(test_real_clock),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
