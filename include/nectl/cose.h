/* Strict CBOR loading and COSE_Sign1 (RFC 8152) in the exact shape
 * aws-nitro-enclaves-cose produces for EIF signatures and attestation
 * documents (reference/aws-nitro-ecosystem.md §3.7, §5.5). */
#ifndef NECTL_COSE_H
#define NECTL_COSE_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "nectl/eif_sign.h"

/* The EIF structures nest three levels; anything far deeper is hostile. */
#define COSE_CBOR_MAX_DEPTH 16
/* r || s of the largest supported curve (P-521). */
#define COSE_SIG_MAX 132

struct cose_alg {
	int id;		   /* EIF_COSE_ES256, ... */
	int nid;	   /* OpenSSL curve NID */
	const char *name;  /* "ES384" */
	const char *curve; /* "P-384" */
	size_t coord_len;  /* bytes of r and of s */
	const EVP_MD *(*md)(void);
};

const struct cose_alg *cose_alg_by_id(int id);
/* NULL unless key is an EC key on P-256, P-384 or P-521. */
const struct cose_alg *cose_alg_by_key(const EVP_PKEY *key);

/* Decodes one definite-length CBOR item that spans exactly buf[0..len).
 * Declared lengths and nesting are checked before libcbor allocates, so
 * hostile input cannot make it reserve memory by claimed sizes. On failure
 * returns NULL and points *why at a short description. */
cbor_item_t *cose_cbor_load(const uint8_t *buf, size_t len, const char **why);
/* Serializes item into a malloc'd buffer. Returns 0 or -1 (out of memory). */
int cose_cbor_dump(const cbor_item_t *item, uint8_t **out, size_t *len);
/* serde's Vec<u8>: an array of unsigned integers, shortest encoding each. */
cbor_item_t *cose_cbor_build_bytes(const uint8_t *bytes, size_t len);
/* Inverse of cose_cbor_build_bytes; every element must be a uint <= 255.
 * Returns 0, or -1 with *why set (or *why NULL when out of memory). */
int cose_cbor_read_bytes(const cbor_item_t *item, uint8_t **out, size_t *len, const char **why);
bool cose_cbor_text_is(const cbor_item_t *item, const char *text);
/* Adds key -> value to a definite map, consuming the caller's references to
 * both (either may be NULL from a failed build, which makes this fail). */
bool cose_cbor_map_put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value);

/* CBOR of PcrInfo{register_index: 0, register_value: value}. */
int cose_pcrinfo_encode(const uint8_t *value, size_t len, uint8_t **out, size_t *out_len,
			struct nectl_err *err);

/* Untagged COSE_Sign1 of payload, signed with key (alg from its curve). */
int cose_sign1_encode(EVP_PKEY *key, const uint8_t *payload, size_t payload_len, uint8_t **out,
		      size_t *out_len, struct nectl_err *err);

struct cose_sign1 {
	uint8_t *prot; /* protected header bstr contents, as signed */
	size_t prot_len;
	uint8_t *payload;
	size_t payload_len;
	uint8_t *sig;
	size_t sig_len;
	int alg;
};

/* Strict decode; malformed input fails with NECTL_ERR_EIF. */
int cose_sign1_decode(const uint8_t *buf, size_t len, struct cose_sign1 *msg,
		      struct nectl_err *err);
void cose_sign1_free(struct cose_sign1 *msg);
/* 1 when the signature verifies with key and alg matches key's curve; 0 with
 * a reason in why otherwise; -1 (err set) when verification could not run. */
int cose_sign1_verify(const struct cose_sign1 *msg, EVP_PKEY *key, char *why, size_t why_len,
		      struct nectl_err *err);

#endif
