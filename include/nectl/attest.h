/* Attestation: nectl's local certificate authority (the root of trust of
 * emulated NSM documents) and the verifier of attestation documents, local
 * or AWS's (reference/aws-nitro-ecosystem.md §5.5). */
#ifndef NECTL_ATTEST_H
#define NECTL_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "nectl/err.h"

/* AWS's limits (§5.4, §5.5); anything larger is refused, never allocated. */
#define ATTEST_DOC_MAX	     32768u
#define ATTEST_PAYLOAD_MAX   16384u
#define ATTEST_MODULE_ID_MAX 128u
#define ATTEST_CERT_MAX	     1024u
#define ATTEST_BLOB_MAX	     1024u /* public_key, user_data, nonce */
#define ATTEST_BUNDLE_MAX    8u
#define ATTEST_PCR_COUNT     32u
#define ATTEST_PCR_LEN	     48u
/* AWS's leaf certificates live three hours. */
#define ATTEST_LEAF_LIFETIME_S (3u * 3600u)

/* The CA's directory under the state directory: $NECTL_STATE_DIR, else
 * /var/lib/nectl as root, else $XDG_STATE_HOME/nectl or ~/.local/state/nectl;
 * "/ca" appended. Nothing is created. */
int attest_ca_default_dir(char *out, size_t cap, struct nectl_err *err);

struct attest_ca {
	X509 *root;
	X509 *inter;
	EVP_PKEY *inter_key; /* the root's key stays on disk: only init uses it */
};

/* Loads the CA from dir, creating dir (0700), the root and the intermediate
 * first when there is none; concurrent callers wait on a lock and load what
 * the first created. Refuses key files readable by group or others, or owned
 * by another user. *created (may be NULL) tells whether this call made it. */
int attest_ca_load_or_init(const char *dir, struct attest_ca **out, bool *created,
			   struct nectl_err *err);
void attest_ca_free(struct attest_ca *ca);

/* A fresh P-384 key and its certificate (DER, OPENSSL_malloc'd) for one
 * enclave, issued by the intermediate, valid from now for lifetime_s. */
int attest_ca_issue_leaf(const struct attest_ca *ca, const char *module_id, uint64_t lifetime_s,
			 EVP_PKEY **key, uint8_t **cert_der, size_t *cert_len,
			 struct nectl_err *err);

/* The cabundle as AWS orders it: root first. der[i] are OPENSSL_malloc'd. */
#define ATTEST_CA_BUNDLE_LEN 2
int attest_ca_bundle(const struct attest_ca *ca, uint8_t *der[ATTEST_CA_BUNDLE_LEN],
		     size_t len[ATTEST_CA_BUNDLE_LEN], struct nectl_err *err);

/* AWS's public Nitro Enclaves root (G1), carried in nectl as data. */
X509 *attest_aws_root(void);

struct attest_pcr_expect {
	unsigned index;
	uint8_t value[ATTEST_PCR_LEN];
};

struct attest_policy {
	X509 *root; /* the only trust anchor */
	const struct attest_pcr_expect *pcrs;
	size_t n_pcrs;
	const uint8_t *nonce; /* NULL: not checked */
	size_t nonce_len;
	const uint8_t *user_data; /* NULL: not checked */
	size_t user_data_len;
	uint64_t max_age_ms; /* 0: not checked */
	uint64_t now_ms;     /* 0: the current time */
	bool allow_debug;    /* accept zero PCR0..2 (a debug-mode enclave) */
};

/* What the payload says, once it parsed. */
struct attest_doc {
	char module_id[ATTEST_MODULE_ID_MAX + 1];
	uint64_t timestamp_ms;
	uint32_t pcr_present; /* bit i: PCR i is in the document */
	uint8_t pcrs[ATTEST_PCR_COUNT][ATTEST_PCR_LEN];
	uint8_t *certificate;
	size_t certificate_len;
	uint8_t *cabundle[ATTEST_BUNDLE_MAX];
	size_t cabundle_len[ATTEST_BUNDLE_MAX];
	size_t n_cabundle;
	uint8_t *public_key, *user_data, *nonce; /* NULL when absent or null */
	size_t public_key_len, user_data_len, nonce_len;
};

#define ATTEST_REASONS_MAX 16
#define ATTEST_REASON_LEN  256

struct attest_verdict {
	bool valid;
	bool parsed; /* doc holds the payload */
	struct attest_doc doc;
	size_t n_reasons;
	char reasons[ATTEST_REASONS_MAX][ATTEST_REASON_LEN];
};

/* Checks the document against the policy; every failed check adds a reason
 * to v and makes it invalid. Returns 0 whenever checking ran (whatever the
 * verdict), -1 with err set when it could not (out of memory). */
int attest_verify(const uint8_t *doc, size_t len, const struct attest_policy *p,
		  struct attest_verdict *v, struct nectl_err *err);
void attest_verdict_free(struct attest_verdict *v);

/* Expected PCRs from build-enclave --pcrs-out's or describe-eif's JSON
 * ({"Measurements": {"PCR0": hex, ...}}) or the bare Measurements object. */
int attest_pcrs_from_json(const json_t *j, struct attest_pcr_expect **out, size_t *n,
			  struct nectl_err *err);
/* Even-length hex into out (at most cap bytes). */
int attest_hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *len,
		      struct nectl_err *err);

#endif
