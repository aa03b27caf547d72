/* The Nitro Secure Module's core: the request/response protocol a virtio NSM
 * device serves (reference/aws-nitro-ecosystem.md §5, linux-ne-and-nsm-drivers.md
 * §8): CBOR requests in, CBOR responses out, a bank of 32 SHA-384 PCRs and
 * attestation documents signed as COSE_Sign1 (ES384) by a local key.
 *
 * Everything a request carries is hostile; a bad request gets the API's error
 * response, never a crash. One struct nsm serves one enclave from one thread. */
#ifndef NECTL_NSM_H
#define NECTL_NSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "nectl/err.h"

#define NSM_PCR_COUNT	    32
#define NSM_PCR_LEN	    48	   /* SHA-384 */
#define NSM_PCR_BOOT_LOCKED 16	   /* PCRs 0..15: set at start, locked from boot */
#define NSM_REQUEST_MAX	    0x1000 /* the driver's NSM_REQUEST_MAX_SIZE */
#define NSM_RESPONSE_MAX    0x3000 /* the driver's NSM_RESPONSE_MAX_SIZE */
#define NSM_FIELD_MAX	    1024   /* user_data, nonce, public_key each */
#define NSM_DER_MAX	    1024   /* a certificate in a document (AWS's CDDL) */
#define NSM_CABUNDLE_MAX    8	   /* AWS's chains hold a root and 3 intermediates */
#define NSM_MODULE_ID_MAX   99	   /* what libnsm's NsmDescription keeps */
#define NSM_RANDOM_LEN	    256	   /* GetRandom's bytes, as QEMU's NSM */

/* A DER certificate the caller owns (nsm_new copies it). */
struct nsm_der {
	const uint8_t *der;
	size_t len;
};

struct nsm_cfg {
	/* PCRs 0..15 at start: the caller measures 0, 1, 2, 3, 4 and 8 as the
	 * Nitro hypervisor does; the rest stay zero. PCRs 16..31 start zero. */
	uint8_t pcrs[NSM_PCR_BOOT_LOCKED][NSM_PCR_LEN];
	/* Debug-mode enclave: documents carry all-zero PCRs, as on AWS. */
	bool debug;
	const char *module_id; /* the enclave ID, 1..NSM_MODULE_ID_MAX bytes */
	/* The signer: a P-384 key (nsm_new takes a reference), its certificate
	 * and the CA bundle, root first as AWS orders it (§5.5), the last entry
	 * the leaf's issuer. */
	EVP_PKEY *key;
	struct nsm_der cert;
	const struct nsm_der *cabundle;
	size_t cabundle_len;
	/* Milliseconds since the Unix epoch for document timestamps; NULL
	 * means the real-time clock. */
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
};

struct nsm;

/* Checks cfg (key on P-384 and matching the certificate, every DER a
 * certificate of at most NSM_DER_MAX bytes, the bundle root first) and
 * copies what it needs. Fails with NECTL_ERR_INVALID_ARG. */
int nsm_new(struct nsm **out, const struct nsm_cfg *cfg, struct nectl_err *err);
void nsm_free(struct nsm *n);

/* Answers one request (raw CBOR, as the driver passes it; the hwrng's bare
 * "GetRandom" included) with a response of at most cap bytes in resp:
 * the request's answer, or {"Error": name} for a bad request, one over
 * NSM_REQUEST_MAX bytes, or an answer that would not fit cap. Returns 0,
 * or -1 with *resp_len 0 only when cap cannot hold even an error. A state
 * change (extend, lock) stands even when its answer did not fit. */
int nsm_handle(struct nsm *n, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
	       size_t *resp_len);

#endif
