/* Signing EIFs: loading and pairing the certificate and key, the signature
 * section as nitro-cli writes it, and its verification against PCR0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "nectl/eif_sign.h"

#include "cert_internal.h"
#include "nectl/cose.h"
#include "sign_internal.h"

struct eif_signer {
	uint8_t *cert_pem; /* the file bytes, embedded verbatim in the section */
	size_t cert_pem_len;
	uint8_t *cert_der; /* OPENSSL_malloc'd */
	size_t cert_der_len;
	X509 *cert;
	EVP_PKEY *key;
	uint8_t pcr8[EIF_HASH_SIZE];
};

void eif_signer_free(struct eif_signer *signer)
{
	if (!signer)
		return;
	free(signer->cert_pem);
	OPENSSL_free(signer->cert_der);
	X509_free(signer->cert);
	EVP_PKEY_free(signer->key);
	free(signer);
}

static int sign_load_cert(struct eif_signer *s, const char *path, struct nectl_err *err)
{
	int e = cert_read_file(path, CERT_FILE_MAX, &s->cert_pem, &s->cert_pem_len);

	if (e)
		return nectl_err_sys(err, NECTL_ERR_SIGN, e, "cannot read certificate %s", path);
	s->cert = cert_from_pem(s->cert_pem, s->cert_pem_len);
	if (!s->cert)
		return nectl_err_ssl(err, NECTL_ERR_SIGN,
				     "certificate %s is not a PEM X.509 certificate", path);
	if (cert_to_der(s->cert, &s->cert_der, &s->cert_der_len) ||
	    cert_der_pcr8(s->cert_der, s->cert_der_len, s->pcr8))
		return nectl_err_ssl(err, NECTL_ERR_SIGN, "certificate %s cannot be DER-encoded",
				     path);
	return 0;
}

static EVP_PKEY *sign_read_key(const uint8_t *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, cert_no_passphrase, NULL) : NULL;

	BIO_free(bio);
	return key;
}

static const char *sign_group_name(const EVP_PKEY *key, char *buf, size_t len)
{
	size_t n;

	if (EVP_PKEY_get_group_name(key, buf, len, &n))
		return buf;
	ERR_clear_error();
	return "an unknown curve";
}

static int sign_load_key(struct eif_signer *s, const char *path, struct nectl_err *err)
{
	char group[80];
	uint8_t *pem;
	size_t len;
	int e = cert_read_file(path, CERT_FILE_MAX, &pem, &len);

	if (e)
		return nectl_err_sys(err, NECTL_ERR_SIGN, e, "cannot read private key %s", path);
	s->key = sign_read_key(pem, len);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (!s->key)
		return nectl_err_ssl(
		    err, NECTL_ERR_SIGN,
		    "private key %s is not a PEM private key (encrypted keys are not supported)",
		    path);
	if (!EVP_PKEY_is_a(s->key, "EC"))
		return nectl_err_set(err, NECTL_ERR_SIGN,
				     "private key %s is not an EC key (it is %s)", path,
				     EVP_PKEY_get0_type_name(s->key));
	if (!cose_alg_by_key(s->key))
		return nectl_err_set(
		    err, NECTL_ERR_SIGN,
		    "private key %s is on %s; only P-256, P-384 and P-521 are supported", path,
		    sign_group_name(s->key, group, sizeof(group)));
	return 0;
}

static int sign_check_pair(const struct eif_signer *s, const char *cert_path, const char *key_path,
			   struct nectl_err *err)
{
	EVP_PKEY *pub = X509_get0_pubkey(s->cert);
	const struct cose_alg *cert_alg = cose_alg_by_key(pub);
	const struct cose_alg *key_alg = cose_alg_by_key(s->key);
	int same;

	if (cert_alg && cert_alg != key_alg)
		return nectl_err_set(err, NECTL_ERR_SIGN,
				     "private key %s is on %s but certificate %s has a %s key",
				     key_path, key_alg->curve, cert_path, cert_alg->curve);
	same = pub && EVP_PKEY_eq(pub, s->key) == 1;
	ERR_clear_error();
	if (!same)
		return nectl_err_set(
		    err, NECTL_ERR_SIGN,
		    "private key %s does not match the public key of certificate %s", key_path,
		    cert_path);
	return 0;
}

int eif_signer_load(struct eif_signer **out, const char *cert_path, const char *key_path,
		    struct nectl_err *err)
{
	struct eif_signer *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return nectl_err_set(err, NECTL_ERR_SIGN, "signer: out of memory");
	if (sign_load_cert(s, cert_path, err) || sign_load_key(s, key_path, err) ||
	    sign_check_pair(s, cert_path, key_path, err)) {
		eif_signer_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void eif_signer_pcr8(const struct eif_signer *signer, uint8_t pcr8[EIF_HASH_SIZE])
{
	memcpy(pcr8, signer->pcr8, EIF_HASH_SIZE);
}

int sign_section_encode(const uint8_t *cert, size_t cert_len, const uint8_t *sig, size_t sig_len,
			uint8_t **out, size_t *out_len, struct nectl_err *err)
{
	cbor_item_t *top = cbor_new_definite_array(1);
	cbor_item_t *entry = cbor_new_definite_map(2);
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	if (top && entry &&
	    cose_cbor_map_put(entry, cbor_build_string("signing_certificate"),
			      cose_cbor_build_bytes(cert, cert_len)) &&
	    cose_cbor_map_put(entry, cbor_build_string("signature"),
			      cose_cbor_build_bytes(sig, sig_len)) &&
	    cbor_array_push(top, entry))
		rc = cose_cbor_dump(top, out, out_len);
	if (top)
		cbor_decref(&top);
	if (entry)
		cbor_decref(&entry);
	if (rc)
		return nectl_err_set(err, NECTL_ERR_SIGN, "signature section: out of memory");
	if (*out_len > EIF_SIGNATURE_MAX) {
		size_t n = *out_len;

		free(*out);
		*out = NULL;
		*out_len = 0;
		return nectl_err_set(err, NECTL_ERR_SIGN,
				     "signature section would be %zu bytes, over the %d-byte "
				     "limit; the certificate is too large",
				     n, EIF_SIGNATURE_MAX);
	}
	return 0;
}

int eif_signature_build(const struct eif_signer *signer, const uint8_t pcr0[EIF_HASH_SIZE],
			uint8_t **out, size_t *out_len, struct nectl_err *err)
{
	uint8_t *payload = NULL, *cose = NULL;
	size_t payload_len, cose_len;
	int rc;

	*out = NULL;
	*out_len = 0;
	rc = cose_pcrinfo_encode(pcr0, EIF_HASH_SIZE, &payload, &payload_len, err);
	if (!rc)
		rc = cose_sign1_encode(signer->key, payload, payload_len, &cose, &cose_len, err);
	if (!rc)
		rc = sign_section_encode(signer->cert_pem, signer->cert_pem_len, cose, cose_len,
					 out, out_len, err);
	free(payload);
	free(cose);
	return rc;
}

static int sign_parse_bytes(const cbor_item_t *value, size_t idx, const char *key, uint8_t **out,
			    size_t *len, struct nectl_err *err)
{
	const char *why;

	if (cose_cbor_read_bytes(value, out, len, &why))
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "signature section: element %zu: \"%s\" %s", idx, key, why);
	return 0;
}

static int sign_parse_entry(const cbor_item_t *entry, size_t idx, uint8_t **cert, size_t *cert_len,
			    uint8_t **cose, size_t *cose_len, struct nectl_err *err)
{
	struct cbor_pair *pairs;

	if (!cbor_isa_map(entry) || cbor_map_size(entry) != 2)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "signature section: element %zu is not a map with 2 entries",
				     idx);
	pairs = cbor_map_handle(entry);
	if (!cose_cbor_text_is(pairs[0].key, "signing_certificate") ||
	    !cose_cbor_text_is(pairs[1].key, "signature"))
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "signature section: element %zu: keys are not "
				     "\"signing_certificate\" then \"signature\"",
				     idx);
	if (sign_parse_bytes(pairs[0].value, idx, "signing_certificate", cert, cert_len, err) ||
	    sign_parse_bytes(pairs[1].value, idx, "signature", cose, cose_len, err))
		return -1;
	if (*cert_len == 0)
		return nectl_err_set(
		    err, NECTL_ERR_EIF,
		    "signature section: element %zu: \"signing_certificate\" is empty", idx);
	return 0;
}

/* nitro-cli deserializes every element, so one bad element spoils the
 * section even though only the first is used. */
static int sign_parse_rest(cbor_item_t **elems, size_t n, struct nectl_err *err)
{
	for (size_t i = 1; i < n; i++) {
		uint8_t *cert = NULL, *cose = NULL;
		size_t cert_len, cose_len;
		int rc = sign_parse_entry(elems[i], i, &cert, &cert_len, &cose, &cose_len, err);

		free(cert);
		free(cose);
		if (rc)
			return -1;
	}
	return 0;
}

static int sign_parse_root(const cbor_item_t *root, uint8_t **cert, size_t *cert_len,
			   uint8_t **cose, size_t *cose_len, struct nectl_err *err)
{
	cbor_item_t **elems;
	size_t n;

	if (!cbor_isa_array(root))
		return nectl_err_set(err, NECTL_ERR_EIF, "signature section: not a CBOR array");
	n = cbor_array_size(root);
	if (n == 0)
		return nectl_err_set(err, NECTL_ERR_EIF, "signature section: empty array");
	elems = cbor_array_handle(root);
	if (sign_parse_entry(elems[0], 0, cert, cert_len, cose, cose_len, err))
		return -1;
	return sign_parse_rest(elems, n, err);
}

int eif_signature_parse(const uint8_t *section, size_t len, uint8_t **cert_pem, size_t *cert_len,
			uint8_t **cose, size_t *cose_len, struct nectl_err *err)
{
	const char *why;
	cbor_item_t *root;
	int rc;

	*cert_pem = *cose = NULL;
	*cert_len = *cose_len = 0;
	if (len > EIF_SIGNATURE_MAX)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "signature section: %zu bytes, over the %d-byte limit", len,
				     EIF_SIGNATURE_MAX);
	root = cose_cbor_load(section, len, &why);
	if (!root)
		return nectl_err_set(err, NECTL_ERR_EIF, "signature section: %s", why);
	rc = sign_parse_root(root, cert_pem, cert_len, cose, cose_len, err);
	cbor_decref(&root);
	if (rc) {
		free(*cert_pem);
		free(*cose);
		*cert_pem = *cose = NULL;
		*cert_len = *cose_len = 0;
	}
	return rc;
}

static int sign_payload_matches(const struct cose_sign1 *msg, const uint8_t pcr0[EIF_HASH_SIZE],
				bool *matches, struct nectl_err *err)
{
	uint8_t *expected;
	size_t len;

	if (cose_pcrinfo_encode(pcr0, EIF_HASH_SIZE, &expected, &len, err))
		return -1;
	*matches = len == msg->payload_len && memcmp(expected, msg->payload, len) == 0;
	free(expected);
	return 0;
}

static int sign_run_checks(const struct cose_sign1 *msg, X509 *cert,
			   const uint8_t pcr0[EIF_HASH_SIZE], struct eif_sig_check *check,
			   struct nectl_err *err)
{
	char cose_why[160] = "", time_why[160] = "";
	int valid;

	check->alg = msg->alg;
	valid = cose_sign1_verify(msg, X509_get0_pubkey(cert), cose_why, sizeof(cose_why), err);
	if (valid < 0)
		return -1;
	check->cose_valid = valid == 1;
	if (sign_payload_matches(msg, pcr0, &check->payload_matches, err))
		return -1;
	check->cert_time_valid = cert_time_valid(cert, time_why, sizeof(time_why));
	if (!check->cose_valid)
		snprintf(check->reason, sizeof(check->reason), "%s", cose_why);
	else if (!check->payload_matches)
		snprintf(check->reason, sizeof(check->reason),
			 "signed PCR0 does not match the image's PCR0");
	else if (!check->cert_time_valid)
		snprintf(check->reason, sizeof(check->reason), "%s", time_why);
	return 0;
}

int eif_signature_verify(const uint8_t *section, size_t len, const uint8_t pcr0[EIF_HASH_SIZE],
			 struct eif_sig_check *check, struct nectl_err *err)
{
	struct cose_sign1 msg = {0};
	uint8_t *pem = NULL, *raw = NULL;
	size_t pem_len, raw_len;
	X509 *cert = NULL;
	int rc;

	memset(check, 0, sizeof(*check));
	rc = eif_signature_parse(section, len, &pem, &pem_len, &raw, &raw_len, err);
	if (!rc)
		rc = cose_sign1_decode(raw, raw_len, &msg, err);
	if (!rc) {
		cert = cert_from_pem(pem, pem_len);
		if (!cert)
			rc = nectl_err_ssl(err, NECTL_ERR_EIF,
					   "signature section: signing_certificate is not a PEM "
					   "X.509 certificate");
	}
	if (!rc)
		rc = sign_run_checks(&msg, cert, pcr0, check, err);
	/* A failed check is a result, not an error: drop OpenSSL's leftovers so
	 * they do not leak into the next nectl_err_ssl message. */
	if (!rc)
		ERR_clear_error();
	X509_free(cert);
	cose_sign1_free(&msg);
	free(pem);
	free(raw);
	return rc;
}
