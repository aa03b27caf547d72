/* fuzz_nsm.c: a hostile enclave against the NSM core's request handler. The
 * input is one byte choosing the response buffer, then requests, each a u16
 * length (LE) and that many bytes, the last one taking what remains:
 *
 *   byte 0: bit 7 clear: the driver's 0x3000-byte buffer; set: (bits 0-6) * 4
 *   bytes, so answers that do not fit are exercised too.
 *
 * The requests go to one fresh NSM in order, so locks and extends reach the
 * requests after them. Besides crashes it traps on broken promises: an answer
 * is one CBOR item within the buffer, and only a buffer too small for any
 * error may go unanswered. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "nectl/cose.h"
#include "nectl/nsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* {"Error": "InvalidOperation"}, the longest error answer. */
#define FZ_ERROR_MAX 24

static struct {
	EVP_PKEY *key;
	unsigned char *der;
	int der_len;
} fz;

/* One self-signed P-384 certificate serves as leaf and as the whole bundle:
 * the handler only needs a signer nsm_new accepts. */
static void fz_signer(void)
{
	X509 *x = X509_new();

	fz.key = EVP_EC_gen("P-384");
	if (!x || !fz.key)
		abort();
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, fz.key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_sign(x, fz.key, EVP_sha384()) <= 0)
		abort();
	fz.der_len = i2d_X509(x, &fz.der);
	X509_free(x);
	if (fz.der_len <= 0)
		abort();
}

static uint64_t fz_clock(void *ctx)
{
	return 1700000000000ull;
}

static struct nsm *fz_nsm(void)
{
	struct nsm_der der;
	struct nsm_cfg cfg;
	struct nsm *n;

	if (!fz.key)
		fz_signer();
	der = (struct nsm_der){fz.der, (size_t)fz.der_len};
	memset(&cfg, 0, sizeof(cfg));
	memset(cfg.pcrs[0], 0x11, NSM_PCR_LEN);
	cfg.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
	cfg.key = fz.key;
	cfg.cert = der;
	cfg.cabundle = &der;
	cfg.cabundle_len = 1;
	cfg.clock_ms = fz_clock;
	if (nsm_new(&n, &cfg, NULL))
		abort();
	return n;
}

static void fz_request(struct nsm *n, const uint8_t *req, size_t len, size_t cap)
{
	static uint8_t resp[NSM_RESPONSE_MAX];
	size_t resp_len = 1;
	const char *why;
	cbor_item_t *item;

	if (nsm_handle(n, req, len, resp, cap, &resp_len) != 0) {
		if (resp_len != 0 || cap >= FZ_ERROR_MAX)
			abort();
		return;
	}
	if (resp_len == 0 || resp_len > cap)
		abort();
	item = cose_cbor_load(resp, resp_len, &why);
	if (!item)
		abort();
	cbor_decref(&item);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nsm *n;
	size_t cap;

	if (size < 1)
		return 0;
	cap = data[0] & 0x80 ? (size_t)(data[0] & 0x7f) * 4 : NSM_RESPONSE_MAX;
	data++;
	size--;
	n = fz_nsm();
	while (size > 0) {
		size_t len = size;

		if (size >= 2) {
			len = (size_t)data[0] | (size_t)data[1] << 8;
			data += 2;
			size -= 2;
			if (len > size)
				len = size;
		}
		fz_request(n, data, len, cap);
		data += len;
		size -= len;
	}
	nsm_free(n);
	return 0;
}
