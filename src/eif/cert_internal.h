/* Internal to src/eif: X.509 helpers shared by the signer and the verifier. */
#ifndef NECTL_EIF_CERT_INTERNAL_H
#define NECTL_EIF_CERT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "nectl/eif.h"

/* Certificates and keys are a few KiB; the cap only stops a wrong path
 * (a disk image, /dev/zero) from being slurped. */
#define CERT_FILE_MAX (1u << 20)

/* Reads a whole file of at most max bytes into a malloc'd buffer. Returns 0,
 * or an errno value (EFBIG when the file is larger than max). */
int cert_read_file(const char *path, size_t max, uint8_t **out, size_t *len);
/* A pem_password_cb that supplies no passphrase: a library must not prompt. */
int cert_no_passphrase(char *buf, int size, int rwflag, void *u);
/* The first PEM certificate in pem[0..len), or NULL. */
X509 *cert_from_pem(const uint8_t *pem, size_t len);
/* DER encoding, allocated with OPENSSL_malloc. */
int cert_to_der(X509 *cert, uint8_t **der, size_t *len);
/* SHA384(0^48 || SHA384(der)). */
int cert_der_pcr8(const uint8_t *der, size_t len, uint8_t pcr8[EIF_HASH_SIZE]);
/* Whether the current time lies within the validity period; when not, a
 * reason such as "certificate expired on <date>" is written to why. */
bool cert_time_valid(const X509 *cert, char *why, size_t why_len);

#endif
