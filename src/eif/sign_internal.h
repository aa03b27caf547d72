/* Internal to src/eif (and its unit test): the signature section encoder
 * working on raw bytes, so the serde_cbor layout can be checked against a
 * known vector without a key. */
#ifndef NECTL_EIF_SIGN_INTERNAL_H
#define NECTL_EIF_SIGN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nectl/err.h"

/* CBOR [{"signing_certificate": [cert bytes], "signature": [sig bytes]}].
 * Fails (NECTL_ERR_SIGN) when the result would exceed EIF_SIGNATURE_MAX. */
int sign_section_encode(const uint8_t *cert, size_t cert_len, const uint8_t *sig, size_t sig_len,
			uint8_t **out, size_t *out_len, struct nectl_err *err);

#endif
