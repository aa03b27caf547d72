/* The NSM's virtio device on fake guest memory, driven as Linux's nsm
 * driver drives it (a readable request chain, then a writable 0x3000-byte
 * response chain, one kick), with a real NSM core signed by nectl's local
 * CA; the document that comes back is checked by nectl's verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "nectl/attest.h"
#include "nectl/nsm_virtio.h"

#define MEM	(256 * 1024)
#define DESC	0x1000
#define AVAIL	0x2000
#define USED	0x3000
#define REQ	0x4000
#define RESP	0x8000
#define F_NEXT	1
#define F_WRITE 2

static struct {
	struct guestmem gm;
	uint8_t *mem;
	struct nsm *core;
	struct nsm_virtio *dev;
	int irq;
	uint16_t avail_idx, used_seen;
	char dir[64];
	X509 *root;
} g;

static void set_irq(void *ctx, int level)
{
	(void)ctx;
	g.irq = level;
}

static void wr32(uint64_t off, uint32_t v)
{
	virtio_mmio_write(nsm_virtio_mmio(g.dev), off, &v, 4);
}

static uint32_t rd32(uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(nsm_virtio_mmio(g.dev), off, &v, 4);
	return v;
}

static void put_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = g.mem + DESC + 16 * i;

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void post(uint16_t head)
{
	uint16_t idx = g.avail_idx++;

	memcpy(g.mem + AVAIL + 4 + 2 * (idx % NSM_QUEUE_SIZE), &head, 2);
	memcpy(g.mem + AVAIL + 2, &g.avail_idx, 2);
}

/* The used element n: its id and length. */
static void used(uint16_t n, uint32_t *id, uint32_t *len)
{
	memcpy(id, g.mem + USED + 4 + 8 * (n % NSM_QUEUE_SIZE), 4);
	memcpy(len, g.mem + USED + 8 + 8 * (n % NSM_QUEUE_SIZE), 4);
}

static uint16_t used_idx(void)
{
	uint16_t v;

	memcpy(&v, g.mem + USED + 2, 2);
	return v;
}

/* Status, features and the queue, as the virtio core does; DRIVER_OK last
 * unless held back. */
static void bring_up(bool driver_ok)
{
	wr32(0x070, 0);
	wr32(0x070, 1 | 2);
	wr32(0x024, 1);
	wr32(0x020, 1); /* VIRTIO_F_VERSION_1 */
	wr32(0x070, 1 | 2 | 8);
	wr32(0x030, 0);
	wr32(0x038, NSM_QUEUE_SIZE);
	wr32(0x080, DESC);
	wr32(0x084, 0);
	wr32(0x090, AVAIL);
	wr32(0x094, 0);
	wr32(0x0a0, USED);
	wr32(0x0a4, 0);
	wr32(0x044, 1);
	if (driver_ok)
		wr32(0x070, 1 | 2 | 8 | 4);
}

static int setup(void **state)
{
	struct attest_ca *ca;
	struct nectl_err err = {0};
	struct nsm_cfg cfg = {.module_id = "i-0000000000000000-enc1"};
	uint8_t *der[ATTEST_CA_BUNDLE_LEN], *leaf;
	size_t len[ATTEST_CA_BUNDLE_LEN], leaf_len;
	struct nsm_der bundle[ATTEST_CA_BUNDLE_LEN];
	EVP_PKEY *key;
	bool created;

	(void)state;
	snprintf(g.dir, sizeof(g.dir), "/tmp/nectl-nsmv-XXXXXX");
	assert_non_null(mkdtemp(g.dir));
	if (attest_ca_load_or_init(g.dir, &ca, &created, &err) < 0 ||
	    attest_ca_issue_leaf(ca, cfg.module_id, 3600, &key, &leaf, &leaf_len, &err) < 0 ||
	    attest_ca_bundle(ca, der, len, &err) < 0)
		fail_msg("%s", err.msg);
	for (unsigned i = 0; i < ATTEST_CA_BUNDLE_LEN; i++)
		bundle[i] = (struct nsm_der){der[i], len[i]};
	memset(cfg.pcrs[0], 0xa0, sizeof(cfg.pcrs[0]));
	cfg.key = key;
	cfg.cert = (struct nsm_der){leaf, leaf_len};
	cfg.cabundle = bundle;
	cfg.cabundle_len = ATTEST_CA_BUNDLE_LEN;
	if (nsm_new(&g.core, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	EVP_PKEY_free(key);
	OPENSSL_free(leaf);
	for (unsigned i = 0; i < ATTEST_CA_BUNDLE_LEN; i++)
		OPENSSL_free(der[i]);
	g.root = ca->root;
	X509_up_ref(g.root);
	attest_ca_free(ca);
	g.mem = calloc(1, MEM);
	g.gm = (struct guestmem){.r = {{0, MEM, g.mem}}, .n = 1};
	g.dev = nsm_virtio_new(g.core, &g.gm, set_irq, NULL);
	assert_non_null(g.dev);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	nsm_virtio_free(g.dev);
	nsm_free(g.core);
	X509_free(g.root);
	free(g.mem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Posts a request chain and a response chain (descriptors 0 and 1) and
 * kicks unless told not to. */
static void request(const void *req, uint32_t len, uint32_t resp_len, bool kick)
{
	memcpy(g.mem + REQ, req, len);
	put_desc(0, REQ, len, 0, 0);
	put_desc(1, RESP, resp_len, F_WRITE, 0);
	post(0);
	post(1);
	if (kick)
		wr32(0x050, 0);
}

/* Both chains came back, request first with 0 bytes; the response's length. */
static uint32_t answered(void)
{
	uint32_t id, len;

	assert_int_equal(used_idx(), (uint16_t)(g.used_seen + 2));
	used(g.used_seen, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	used(g.used_seen + 1, &id, &len);
	assert_int_equal(id, 1);
	g.used_seen += 2;
	return len;
}

static const uint8_t get_random[] = {0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd', 'o', 'm'};

static void test_random_and_describe(void **state)
{
	/* {"DescribePCR": {"index": 0}} */
	static const uint8_t describe[] = {0xa1, 0x6b, 'D', 'e', 's', 'c', 'r',
					   'i',	 'b',  'e', 'P', 'C', 'R', 0xa1,
					   0x65, 'i',  'n', 'd', 'e', 'x', 0x00};
	uint32_t len;

	(void)state;
	bring_up(true);
	request(get_random, sizeof(get_random), NSM_RESPONSE_BYTES, true);
	len = answered();
	assert_int_equal(g.irq, 1);
	assert_true(len >= 32 + 19);
	assert_memory_equal(g.mem + RESP, "\xa1\x69GetRandom\xa1\x66random\x59\x01\x00", 19);
	wr32(0x064, rd32(0x060)); /* interrupt acknowledged */
	request(describe, sizeof(describe), NSM_RESPONSE_BYTES, true);
	len = answered();
	assert_true(len > 48);
	/* PCR0 as configured, locked. */
	assert_non_null(memmem(g.mem + RESP, len, "\x58\x30\xa0\xa0\xa0", 5));
	assert_non_null(memmem(g.mem + RESP, len, "\x64lock\xf5", 5));
	assert_int_equal(nsm_virtio_served(g.dev), 2);
}

/* The hwrng may queue its request before DRIVER_OK, and that kick is lost:
 * the device looks at its ring when the driver goes live. */
static void test_request_before_driver_ok(void **state)
{
	(void)state;
	g.avail_idx = g.used_seen = 0;
	memset(g.mem, 0, 0x4000);
	bring_up(false);
	request(get_random, sizeof(get_random), NSM_RESPONSE_BYTES, true);
	assert_int_equal(used_idx(), 0); /* not live: nothing served */
	wr32(0x070, 1 | 2 | 8 | 4);
	assert_true(answered() >= 32);
}

/* A hostile guest: a request over 4 KiB is answered with the core's error,
 * a short response chain gets at most its size, and a request without a
 * response chain comes back unused. */
static void test_hostile_chains(void **state)
{
	static uint8_t big[NSM_REQUEST_MAX + 100];
	uint32_t id, len;

	(void)state;
	g.avail_idx = g.used_seen = 0;
	memset(g.mem, 0, 0x4000);
	bring_up(true);
	memset(big, 0x41, sizeof(big));
	request(big, sizeof(big), NSM_RESPONSE_BYTES, true);
	len = answered();
	assert_non_null(memmem(g.mem + RESP, len, "InputTooLarge", 13));
	memset(g.mem + RESP, 0xee, 64);
	request(get_random, sizeof(get_random), 16, true);
	len = answered();
	assert_true(len <= 16);
	assert_int_equal(g.mem[RESP + 16], 0xee); /* nothing past the chain */
	/* A lone request chain: returned unused, the device still works. */
	put_desc(0, REQ, sizeof(get_random), 0, 0);
	post(0);
	wr32(0x050, 0);
	assert_int_equal(used_idx(), (uint16_t)(g.used_seen + 1));
	used(g.used_seen, &id, &len);
	assert_int_equal(len, 0);
	g.used_seen++;
	request(get_random, sizeof(get_random), NSM_RESPONSE_BYTES, true);
	assert_true(answered() >= 32);
}

/* An attestation document through the queue verifies against the local
 * root, with its nonce. */
static void test_attestation_verifies(void **state)
{
	/* {"Attestation": {"user_data": null, "nonce": h'0102', "public_key": null}} */
	static const uint8_t req[] = {
	    0xa1, 0x6b, 'A',  't', 't', 'e', 's', 't', 'a',  't',  'i', 'o', 'n', 0xa3, 0x69, 'u',
	    's',  'e',	'r',  '_', 'd', 'a', 't', 'a', 0xf6, 0x65, 'n', 'o', 'n', 'c',	'e',  0x42,
	    1,	  2,	0x6a, 'p', 'u', 'b', 'l', 'i', 'c',  '_',  'k', 'e', 'y', 0xf6};
	static const uint8_t nonce[] = {1, 2};
	struct attest_policy pol = {.root = g.root, .nonce = nonce, .nonce_len = 2};
	struct attest_verdict v;
	struct nectl_err err = {0};
	uint8_t *doc;
	size_t doc_len;
	uint32_t len;

	(void)state;
	g.avail_idx = g.used_seen = 0;
	memset(g.mem, 0, 0x4000);
	bring_up(true);
	request(req, sizeof(req), NSM_RESPONSE_BYTES, true);
	len = answered();
	assert_true(len > 500);
	/* {"Attestation": {"document": bytes}}: the bytes follow the keys. */
	doc = memmem(g.mem + RESP, len, "document", 8);
	assert_non_null(doc);
	doc += 8;
	assert_int_equal(doc[0], 0x59); /* a 2-byte length */
	doc_len = (size_t)doc[1] << 8 | doc[2];
	doc += 3;
	assert_int_equal(attest_verify(doc, doc_len, &pol, &v, &err), 0);
	if (!v.valid)
		fail_msg("rejected: %s", v.n_reasons ? v.reasons[0] : "?");
	assert_string_equal(v.doc.module_id, "i-0000000000000000-enc1");
	attest_verdict_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_and_describe),
	    cmocka_unit_test(test_request_before_driver_ok),
	    cmocka_unit_test(test_hostile_chains),
	    cmocka_unit_test(test_attestation_verifies),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
