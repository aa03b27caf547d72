/* EIF signature section and COSE_Sign1 over PCR0, as nitro-cli writes them
 * (reference/aws-nitro-ecosystem.md §3.7, §4.1 PCR8). */
#ifndef NECTL_EIF_SIGN_H
#define NECTL_EIF_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nectl/eif.h"

/* COSE algorithm identifiers. */
#define EIF_COSE_ES256 (-7)
#define EIF_COSE_ES384 (-35)
#define EIF_COSE_ES512 (-36)

/* Loads a PEM certificate and a PEM EC private key. Fails (NECTL_ERR_SIGN) when a
 * file cannot be read, is not PEM, the key is not P-256/P-384/P-521, or the key
 * does not belong to the certificate. */
int eif_signer_load(struct eif_signer **out, const char *cert_path, const char *key_path,
		    struct nectl_err *err);
void eif_signer_free(struct eif_signer *signer);
/* SHA384(0^48 || SHA384(DER(cert))) of the signer's certificate. */
void eif_signer_pcr8(const struct eif_signer *signer, uint8_t pcr8[EIF_HASH_SIZE]);

/* The complete signature section: CBOR [{signing_certificate: [u8..],
 * signature: [u8.. of untagged COSE_Sign1 over PcrInfo{0, pcr0}]}]. */
int eif_signature_build(const struct eif_signer *signer, const uint8_t pcr0[EIF_HASH_SIZE],
			uint8_t **out, size_t *out_len, struct nectl_err *err);

/* Splits a signature section into the certificate PEM bytes and the COSE_Sign1
 * bytes of its first element. Malformed CBOR fails with NECTL_ERR_EIF. The
 * outputs are malloc'd. */
int eif_signature_parse(const uint8_t *section, size_t len, uint8_t **cert_pem,
			size_t *cert_len, uint8_t **cose, size_t *cose_len,
			struct nectl_err *err);

/* PCR8 of a PEM certificate (NECTL_ERR_HASH if it is not a PEM certificate). */
int eif_cert_pcr8(const uint8_t *pem, size_t len, uint8_t pcr8[EIF_HASH_SIZE],
		  struct nectl_err *err);
int eif_cert_pcr8_file(const char *path, uint8_t pcr8[EIF_HASH_SIZE], struct nectl_err *err);

struct eif_sig_check {
	bool cose_valid;      /* COSE signature verifies with the cert's key, alg matches curve */
	bool payload_matches; /* payload == CBOR(PcrInfo{0, pcr0}) */
	bool cert_time_valid; /* now within notBefore..notAfter */
	int alg;	      /* protected header alg */
	char reason[256];     /* first failed check, "" when all hold */
};

/* Verifies a signature section against the recomputed PCR0. Returns 0 when the
 * checks could be run (results in *check), -1 when the section is malformed. */
int eif_signature_verify(const uint8_t *section, size_t len, const uint8_t pcr0[EIF_HASH_SIZE],
			 struct eif_sig_check *check, struct nectl_err *err);

/* describe-eif's "SigningCertificate" object: IssuerName, Algorithm, NotBefore,
 * NotAfter, Signature. New reference in *out. */
int eif_cert_describe(const uint8_t *pem, size_t len, json_t **out, struct nectl_err *err);

#endif
