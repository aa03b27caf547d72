/* The NSM core's life cycle and its one entry point: checking and copying the
 * configuration (signer, CA bundle, boot PCRs), and answering a raw request
 * with a response that always fits the driver's buffer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "nectl/cose.h"
#include "nectl/eif_sign.h"
#include "nsm_internal.h"

static const char *const nsm_code_names[] = {
    [NSM_OK] = "Success",
    [NSM_E_INVALID_ARGUMENT] = "InvalidArgument",
    [NSM_E_INVALID_INDEX] = "InvalidIndex",
    [NSM_E_READ_ONLY_INDEX] = "ReadOnlyIndex",
    [NSM_E_INVALID_OPERATION] = "InvalidOperation",
    [NSM_E_BUFFER_TOO_SMALL] = "BufferTooSmall",
    [NSM_E_INPUT_TOO_LARGE] = "InputTooLarge",
    [NSM_E_INTERNAL] = "InternalError",
};

/* Parses one DER certificate of the size a document may carry. */
static X509 *nsm_der_parse(const struct nsm_der *d, const char *what, struct nectl_err *err)
{
	const unsigned char *p = d->der;
	X509 *x;

	if (!d->der || d->len == 0 || d->len > NSM_DER_MAX) {
		nectl_err_set(err, NECTL_ERR_INVALID_ARG,
			      "NSM: %s is %zu bytes, documents allow 1..%d", what, d->len,
			      NSM_DER_MAX);
		return NULL;
	}
	x = d2i_X509(NULL, &p, (long)d->len);
	if (!x || p != d->der + d->len) {
		X509_free(x);
		nectl_err_ssl(err, NECTL_ERR_INVALID_ARG, "NSM: %s is not a DER certificate", what);
		return NULL;
	}
	return x;
}

/* Root first, the last entry the leaf's issuer: the order of §5.5 that a
 * verifier walks backwards from the leaf. */
static int nsm_check_order(X509 *root, X509 *last, X509 *leaf, struct nectl_err *err)
{
	if (X509_check_issued(root, root) != X509_V_OK)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "NSM: the CA bundle must be root first, and its first "
				     "certificate is not self-issued");
	if (X509_check_issued(last, leaf) != X509_V_OK)
		return nectl_err_set(
		    err, NECTL_ERR_INVALID_ARG,
		    "NSM: the CA bundle's last certificate is not the leaf's issuer");
	return 0;
}

static int nsm_check_bundle(const struct nsm_cfg *cfg, X509 *leaf, struct nectl_err *err)
{
	X509 *root = NULL, *last = NULL;
	int rc = 0;

	if (cfg->cabundle_len == 0 || cfg->cabundle_len > NSM_CABUNDLE_MAX || !cfg->cabundle)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "NSM: the CA bundle holds %zu certificates, 1..%d allowed",
				     cfg->cabundle_len, NSM_CABUNDLE_MAX);
	for (size_t i = 0; i < cfg->cabundle_len && rc == 0; i++) {
		X509 *x = nsm_der_parse(&cfg->cabundle[i], "a CA bundle certificate", err);

		rc = x ? 0 : -1;
		if (i == 0)
			root = x;
		else if (x) {
			X509_free(last);
			last = x;
		}
	}
	if (rc == 0)
		rc = nsm_check_order(root, last ? last : root, leaf, err);
	X509_free(root);
	X509_free(last);
	return rc;
}

static int nsm_check_signer(const struct nsm_cfg *cfg, struct nectl_err *err)
{
	const struct cose_alg *alg = cfg->key ? cose_alg_by_key(cfg->key) : NULL;
	X509 *leaf;
	int rc;

	if (!alg || alg->id != EIF_COSE_ES384)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "NSM: the signing key is not a P-384 EC key (ES384)");
	leaf = nsm_der_parse(&cfg->cert, "the signing certificate", err);
	if (!leaf)
		return -1;
	if (X509_check_private_key(leaf, cfg->key) != 1)
		rc = nectl_err_ssl(err, NECTL_ERR_INVALID_ARG,
				   "NSM: the signing key does not match the signing certificate");
	else
		rc = nsm_check_bundle(cfg, leaf, err);
	X509_free(leaf);
	return rc;
}

static int nsm_check_cfg(const struct nsm_cfg *cfg, struct nectl_err *err)
{
	size_t id_len = cfg->module_id ? strlen(cfg->module_id) : 0;

	if (id_len == 0 || id_len > NSM_MODULE_ID_MAX)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "NSM: the module ID must be 1..%d bytes", NSM_MODULE_ID_MAX);
	return nsm_check_signer(cfg, err);
}

static int nsm_blob_copy(struct nsm_blob *b, const struct nsm_der *d)
{
	b->data = malloc(d->len);
	if (!b->data)
		return -1;
	memcpy(b->data, d->der, d->len);
	b->len = d->len;
	return 0;
}

static int nsm_copy_signer(struct nsm *n, const struct nsm_cfg *cfg)
{
	if (nsm_blob_copy(&n->cert, &cfg->cert))
		return -1;
	for (size_t i = 0; i < cfg->cabundle_len; i++, n->cabundle_len++)
		if (nsm_blob_copy(&n->cabundle[i], &cfg->cabundle[i]))
			return -1;
	if (!EVP_PKEY_up_ref(cfg->key))
		return -1;
	n->key = cfg->key;
	return 0;
}

static void nsm_init_pcrs(struct nsm *n, const struct nsm_cfg *cfg)
{
	for (unsigned i = 0; i < NSM_PCR_COUNT; i++) {
		n->pcrs[i].locked = i < NSM_PCR_BOOT_LOCKED;
		if (i < NSM_PCR_BOOT_LOCKED)
			memcpy(n->pcrs[i].value, cfg->pcrs[i], NSM_PCR_LEN);
	}
}

int nsm_new(struct nsm **out, const struct nsm_cfg *cfg, struct nectl_err *err)
{
	struct nsm *n;

	*out = NULL;
	if (nsm_check_cfg(cfg, err))
		return -1;
	n = calloc(1, sizeof(*n));
	if (!n)
		return nectl_err_sys(err, NECTL_ERR_INVALID_ARG, ENOMEM, "NSM");
	nsm_init_pcrs(n, cfg);
	n->debug = cfg->debug;
	strcpy(n->module_id, cfg->module_id);
	n->clock_ms = cfg->clock_ms;
	n->clock_ctx = cfg->clock_ctx;
	if (nsm_copy_signer(n, cfg)) {
		nsm_free(n);
		return nectl_err_sys(err, NECTL_ERR_INVALID_ARG, ENOMEM, "NSM: the signer");
	}
	*out = n;
	return 0;
}

void nsm_free(struct nsm *n)
{
	if (!n)
		return;
	free(n->cert.data);
	for (size_t i = 0; i < n->cabundle_len; i++)
		free(n->cabundle[i].data);
	EVP_PKEY_free(n->key);
	free(n);
}

/* Serializes item into resp; -1 when it does not fit cap. */
static int nsm_write(const cbor_item_t *item, uint8_t *resp, size_t cap, size_t *resp_len)
{
	size_t n = item ? cbor_serialize(item, resp, cap) : 0;

	if (n == 0)
		return -1;
	*resp_len = n;
	return 0;
}

static int nsm_write_error(enum nsm_code code, uint8_t *resp, size_t cap, size_t *resp_len)
{
	cbor_item_t *reply = nsm_cbor_variant("Error", cbor_build_string(nsm_code_names[code]));
	int rc = nsm_write(reply, resp, cap, resp_len);

	if (reply)
		cbor_decref(&reply);
	return rc;
}

int nsm_handle(struct nsm *n, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
	       size_t *resp_len)
{
	enum nsm_code too_big = NSM_E_INPUT_TOO_LARGE, code = NSM_E_INPUT_TOO_LARGE;
	cbor_item_t *reply = NULL;

	*resp_len = 0;
	if (len <= NSM_REQUEST_MAX)
		code = nsm_req_dispatch(n, req, len, &reply, &too_big);
	if (code == NSM_OK && nsm_write(reply, resp, cap, resp_len))
		code = too_big;
	if (reply)
		cbor_decref(&reply);
	if (code == NSM_OK)
		return 0;
	return nsm_write_error(code, resp, cap, resp_len);
}
