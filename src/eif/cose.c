/* COSE_Sign1 (RFC 8152) as nitro-cli signs PCR0: encoding, bounds-checked
 * decoding with libcbor, and ECDSA signing and verification. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "nectl/cose.h"

/* RFC 8152 §4.2: COSE_Sign1_Tagged. nitro-cli writes untagged messages but
 * its decoder accepts the tag too. */
#define COSE_SIGN1_TAG 18
/* The one-byte form of tag 18. libcbor 0.8 wrongly rejects one-byte tags
 * 6..20 as malformed, so this prefix is stripped by hand before decoding. */
#define COSE_SIGN1_TAG_BYTE 0xd2
#define COSE_HEADER_ALG	    1

static const struct cose_alg cose_algs[] = {
    {EIF_COSE_ES256, NID_X9_62_prime256v1, "ES256", "P-256", 32, EVP_sha256},
    {EIF_COSE_ES384, NID_secp384r1, "ES384", "P-384", 48, EVP_sha384},
    {EIF_COSE_ES512, NID_secp521r1, "ES512", "P-521", 66, EVP_sha512},
};

const struct cose_alg *cose_alg_by_id(int id)
{
	for (size_t i = 0; i < sizeof(cose_algs) / sizeof(cose_algs[0]); i++)
		if (cose_algs[i].id == id)
			return &cose_algs[i];
	return NULL;
}

const struct cose_alg *cose_alg_by_key(const EVP_PKEY *key)
{
	char group[80];
	size_t len;
	int nid;

	if (!key || !EVP_PKEY_is_a(key, "EC"))
		return NULL;
	if (!EVP_PKEY_get_group_name(key, group, sizeof(group), &len)) {
		ERR_clear_error();
		return NULL;
	}
	nid = OBJ_sn2nid(group);
	for (size_t i = 0; i < sizeof(cose_algs) / sizeof(cose_algs[0]); i++)
		if (cose_algs[i].nid == nid)
			return &cose_algs[i];
	return NULL;
}

/* What the last header decoded by cbor_stream_decode announced. */
struct cose_scan {
	size_t children;
	const char *why;
};

static void cose_scan_array(void *ctx, size_t size)
{
	((struct cose_scan *)ctx)->children = size;
}

static void cose_scan_map(void *ctx, size_t size)
{
	struct cose_scan *scan = ctx;

	if (size > SIZE_MAX / 2)
		scan->why = "CBOR length exceeds the data";
	else
		scan->children = 2 * size;
}

static void cose_scan_tag(void *ctx, uint64_t tag)
{
	((struct cose_scan *)ctx)->children = 1;
}

/* serde_cbor never writes indefinite lengths; refusing them keeps the
 * length checks below simple and exact. */
static void cose_scan_indefinite(void *ctx)
{
	((struct cose_scan *)ctx)->why = "indefinite-length CBOR is not allowed";
}

static struct cbor_callbacks cose_scan_callbacks(void)
{
	struct cbor_callbacks cb = cbor_empty_callbacks;

	cb.array_start = cose_scan_array;
	cb.map_start = cose_scan_map;
	cb.tag = cose_scan_tag;
	cb.indef_array_start = cose_scan_indefinite;
	cb.indef_map_start = cose_scan_indefinite;
	cb.byte_string_start = cose_scan_indefinite;
	cb.string_start = cose_scan_indefinite;
	cb.indef_break = cose_scan_indefinite;
	return cb;
}

/* Walks the item headers without building anything. Every child takes at
 * least one byte, so a container may not announce more children than bytes
 * remain; strings are bounds-checked by the stream decoder itself. */
static const char *cose_cbor_scan(const uint8_t *buf, size_t len)
{
	struct cbor_callbacks cb = cose_scan_callbacks();
	size_t pending[COSE_CBOR_MAX_DEPTH];
	unsigned depth = 1;
	size_t off = 0;

	pending[0] = 1;
	while (depth > 0) {
		struct cose_scan scan = {0, NULL};
		struct cbor_decoder_result res;

		if (off == len)
			return "truncated CBOR";
		res = cbor_stream_decode(buf + off, len - off, &cb, &scan);
		if (res.status == CBOR_DECODER_NEDATA)
			return "truncated CBOR";
		if (res.status != CBOR_DECODER_FINISHED)
			return "not valid CBOR";
		if (scan.why)
			return scan.why;
		off += res.read;
		pending[depth - 1]--;
		if (scan.children > len - off)
			return "CBOR length exceeds the data";
		if (scan.children > 0) {
			if (depth == COSE_CBOR_MAX_DEPTH)
				return "CBOR nested too deeply";
			pending[depth++] = scan.children;
		}
		while (depth > 0 && pending[depth - 1] == 0)
			depth--;
	}
	return off == len ? NULL : "trailing bytes after the CBOR item";
}

cbor_item_t *cose_cbor_load(const uint8_t *buf, size_t len, const char **why)
{
	struct cbor_load_result res;
	cbor_item_t *item;

	*why = cose_cbor_scan(buf, len);
	if (*why)
		return NULL;
	item = cbor_load(buf, len, &res);
	if (item && res.error.code == CBOR_ERR_NONE && res.read == len)
		return item;
	if (item)
		cbor_decref(&item);
	*why = res.error.code == CBOR_ERR_MEMERROR ? "out of memory" : "not valid CBOR";
	return NULL;
}

int cose_cbor_dump(const cbor_item_t *item, uint8_t **out, size_t *len)
{
	unsigned char *buf = NULL;
	size_t cap = 0;
	size_t n = cbor_serialize_alloc(item, &buf, &cap);

	if (n == 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

static bool cose_cbor_array_put(cbor_item_t *array, cbor_item_t *item)
{
	bool ok = item && cbor_array_push(array, item);

	if (item)
		cbor_decref(&item);
	return ok;
}

bool cose_cbor_map_put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value)
{
	bool ok = key && value && cbor_map_add(map, (struct cbor_pair){.key = key, .value = value});

	if (key)
		cbor_decref(&key);
	if (value)
		cbor_decref(&value);
	return ok;
}

cbor_item_t *cose_cbor_build_bytes(const uint8_t *bytes, size_t len)
{
	cbor_item_t *array = cbor_new_definite_array(len);

	for (size_t i = 0; array && i < len; i++) {
		if (!cose_cbor_array_put(array, cbor_build_uint8(bytes[i])))
			cbor_decref(&array);
	}
	return array;
}

int cose_cbor_read_bytes(const cbor_item_t *item, uint8_t **out, size_t *len, const char **why)
{
	cbor_item_t **elems;
	uint8_t *buf;
	size_t n;

	*out = NULL;
	*len = 0;
	if (!cbor_isa_array(item)) {
		*why = "is not an array of bytes";
		return -1;
	}
	n = cbor_array_size(item);
	elems = cbor_array_handle(item);
	buf = malloc(n ? n : 1);
	if (!buf) {
		*why = "out of memory";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!cbor_isa_uint(elems[i]) || cbor_get_int(elems[i]) > UINT8_MAX) {
			free(buf);
			*why = "holds an element that is not a byte (uint <= 255)";
			return -1;
		}
		buf[i] = (uint8_t)cbor_get_int(elems[i]);
	}
	*out = buf;
	*len = n;
	return 0;
}

bool cose_cbor_text_is(const cbor_item_t *item, const char *text)
{
	size_t n = strlen(text);

	if (!cbor_isa_string(item) || !cbor_string_is_definite(item) ||
	    cbor_string_length(item) != n)
		return false;
	return n == 0 || memcmp(cbor_string_handle(item), text, n) == 0;
}

/* libcbor copies from the handle even for empty strings, so never pass NULL. */
static cbor_item_t *cose_cbor_bstr(const uint8_t *bytes, size_t len)
{
	static const uint8_t none;

	return cbor_build_bytestring(bytes ? bytes : &none, len);
}

static cbor_item_t *cose_cbor_int(int value)
{
	if (value < 0)
		return cbor_build_negint8((uint8_t)(-1 - value));
	return cbor_build_uint8((uint8_t)value);
}

int cose_pcrinfo_encode(const uint8_t *value, size_t len, uint8_t **out, size_t *out_len,
			struct nectl_err *err)
{
	cbor_item_t *map = cbor_new_definite_map(2);
	int rc = -1;

	if (map &&
	    cose_cbor_map_put(map, cbor_build_string("register_index"), cbor_build_uint8(0)) &&
	    cose_cbor_map_put(map, cbor_build_string("register_value"),
			      cose_cbor_build_bytes(value, len)))
		rc = cose_cbor_dump(map, out, out_len);
	if (map)
		cbor_decref(&map);
	if (rc)
		return nectl_err_set(err, NECTL_ERR_SIGN, "PcrInfo: out of memory");
	return 0;
}

static int cose_prot_encode(const struct cose_alg *alg, uint8_t **out, size_t *len)
{
	cbor_item_t *map = cbor_new_definite_map(1);
	int rc = -1;

	if (map &&
	    cose_cbor_map_put(map, cbor_build_uint8(COSE_HEADER_ALG), cose_cbor_int(alg->id)))
		rc = cose_cbor_dump(map, out, len);
	if (map)
		cbor_decref(&map);
	return rc;
}

/* Digest of Sig_structure ["Signature1", protected, external_aad = h'',
 * payload] (RFC 8152 §4.4), hashed as the algorithm prescribes. */
static int cose_tbs_digest(const struct cose_alg *alg, const uint8_t *prot, size_t prot_len,
			   const uint8_t *payload, size_t payload_len, uint8_t md[EVP_MAX_MD_SIZE],
			   size_t *md_len)
{
	cbor_item_t *array = cbor_new_definite_array(4);
	uint8_t *tbs = NULL;
	size_t tbs_len;
	unsigned n = 0;
	int rc = -1;

	if (array && cose_cbor_array_put(array, cbor_build_string("Signature1")) &&
	    cose_cbor_array_put(array, cose_cbor_bstr(prot, prot_len)) &&
	    cose_cbor_array_put(array, cose_cbor_bstr(NULL, 0)) &&
	    cose_cbor_array_put(array, cose_cbor_bstr(payload, payload_len)) &&
	    !cose_cbor_dump(array, &tbs, &tbs_len))
		rc = EVP_Digest(tbs, tbs_len, md, &n, alg->md(), NULL) ? 0 : -1;
	if (array)
		cbor_decref(&array);
	free(tbs);
	*md_len = n;
	return rc;
}

/* COSE wants r || s at the curve's fixed width, OpenSSL gives DER. */
static int cose_sig_from_der(const uint8_t *der, size_t der_len, size_t coord,
			     uint8_t rs[COSE_SIG_MAX])
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r, *s;
	int rc = -1;

	if (!sig)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, rs, (int)coord) == (int)coord &&
	    BN_bn2binpad(s, rs + coord, (int)coord) == (int)coord)
		rc = 0;
	ECDSA_SIG_free(sig);
	return rc;
}

static int cose_sig_to_der(const uint8_t *rs, size_t coord, unsigned char **der, int *der_len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, (int)coord, NULL);
	BIGNUM *s = BN_bin2bn(rs + coord, (int)coord, NULL);

	*der = NULL;
	if (!sig || !r || !s) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return -1;
	}
	ECDSA_SIG_set0(sig, r, s);
	*der_len = i2d_ECDSA_SIG(sig, der);
	ECDSA_SIG_free(sig);
	return *der_len > 0 ? 0 : -1;
}

static int cose_sign_digest(EVP_PKEY *key, const struct cose_alg *alg, const uint8_t *md,
			    size_t md_len, uint8_t rs[COSE_SIG_MAX])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	uint8_t der[256];
	size_t der_len = sizeof(der);
	int rc = -1;

	if (ctx && EVP_PKEY_sign_init(ctx) > 0 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, alg->md()) > 0 &&
	    EVP_PKEY_sign(ctx, der, &der_len, md, md_len) > 0)
		rc = cose_sig_from_der(der, der_len, alg->coord_len, rs);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

static int cose_sign1_pack(const uint8_t *prot, size_t prot_len, const uint8_t *payload,
			   size_t payload_len, const uint8_t *sig, size_t sig_len, uint8_t **out,
			   size_t *out_len)
{
	cbor_item_t *array = cbor_new_definite_array(4);
	int rc = -1;

	if (array && cose_cbor_array_put(array, cose_cbor_bstr(prot, prot_len)) &&
	    cose_cbor_array_put(array, cbor_new_definite_map(0)) &&
	    cose_cbor_array_put(array, cose_cbor_bstr(payload, payload_len)) &&
	    cose_cbor_array_put(array, cose_cbor_bstr(sig, sig_len)))
		rc = cose_cbor_dump(array, out, out_len);
	if (array)
		cbor_decref(&array);
	return rc;
}

int cose_sign1_encode(EVP_PKEY *key, const uint8_t *payload, size_t payload_len, uint8_t **out,
		      size_t *out_len, struct nectl_err *err)
{
	const struct cose_alg *alg = cose_alg_by_key(key);
	uint8_t md[EVP_MAX_MD_SIZE];
	uint8_t rs[COSE_SIG_MAX];
	uint8_t *prot = NULL;
	size_t prot_len, md_len;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (!alg)
		return nectl_err_set(err, NECTL_ERR_SIGN,
				     "COSE_Sign1: key is not a P-256, P-384 or P-521 EC key");
	if (cose_prot_encode(alg, &prot, &prot_len))
		return nectl_err_set(err, NECTL_ERR_SIGN, "COSE_Sign1: out of memory");
	if (cose_tbs_digest(alg, prot, prot_len, payload, payload_len, md, &md_len) ||
	    cose_sign_digest(key, alg, md, md_len, rs)) {
		free(prot);
		return nectl_err_ssl(err, NECTL_ERR_SIGN, "COSE_Sign1: %s signing failed",
				     alg->name);
	}
	rc = cose_sign1_pack(prot, prot_len, payload, payload_len, rs, 2 * alg->coord_len, out,
			     out_len);
	free(prot);
	if (rc)
		return nectl_err_set(err, NECTL_ERR_SIGN, "COSE_Sign1: out of memory");
	return 0;
}

static int cose_int_value(const cbor_item_t *item, int *out, const char **why)
{
	uint64_t v;

	if (!cbor_isa_uint(item) && !cbor_isa_negint(item)) {
		*why = "algorithm is not an integer";
		return -1;
	}
	v = cbor_get_int(item);
	if (v > INT_MAX) {
		*why = "algorithm is out of range";
		return -1;
	}
	*out = cbor_isa_negint(item) ? -1 - (int)v : (int)v;
	return 0;
}

static int cose_prot_alg(const cbor_item_t *map, int *alg, const char **why)
{
	struct cbor_pair *pairs;

	if (!cbor_isa_map(map)) {
		*why = "is not a map";
		return -1;
	}
	pairs = cbor_map_handle(map);
	for (size_t i = 0; i < cbor_map_size(map); i++) {
		if (cbor_isa_uint(pairs[i].key) && cbor_get_int(pairs[i].key) == COSE_HEADER_ALG)
			return cose_int_value(pairs[i].value, alg, why);
	}
	*why = "has no algorithm";
	return -1;
}

static int cose_prot_decode(const uint8_t *prot, size_t len, int *alg, struct nectl_err *err)
{
	const char *why = "has no algorithm";
	cbor_item_t *map = len ? cose_cbor_load(prot, len, &why) : NULL;
	int rc = -1;

	if (map) {
		rc = cose_prot_alg(map, alg, &why);
		cbor_decref(&map);
	}
	if (rc)
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "signature section: COSE_Sign1 protected header %s", why);
	return 0;
}

static int cose_bstr_copy(const cbor_item_t *item, uint8_t **out, size_t *len)
{
	size_t n = cbor_bytestring_length(item);

	*out = malloc(n ? n : 1);
	if (!*out)
		return -1;
	if (n)
		memcpy(*out, cbor_bytestring_handle(item), n);
	*len = n;
	return 0;
}

static const char *cose_sign1_shape(const cbor_item_t *array)
{
	cbor_item_t **f;

	if (!cbor_isa_array(array) || cbor_array_size(array) != 4)
		return "is not an array of 4 items";
	f = cbor_array_handle(array);
	if (!cbor_isa_bytestring(f[0]))
		return "protected header is not a byte string";
	if (!cbor_isa_map(f[1]))
		return "unprotected header is not a map";
	if (!cbor_isa_bytestring(f[2]))
		return "payload is not a byte string";
	if (!cbor_isa_bytestring(f[3]))
		return "signature is not a byte string";
	return NULL;
}

static int cose_sign1_fields(const cbor_item_t *array, struct cose_sign1 *msg,
			     struct nectl_err *err)
{
	const char *why = cose_sign1_shape(array);
	cbor_item_t **f;

	if (why)
		return nectl_err_set(err, NECTL_ERR_EIF, "signature section: COSE_Sign1 %s", why);
	f = cbor_array_handle(array);
	if (cose_bstr_copy(f[0], &msg->prot, &msg->prot_len) ||
	    cose_bstr_copy(f[2], &msg->payload, &msg->payload_len) ||
	    cose_bstr_copy(f[3], &msg->sig, &msg->sig_len))
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "signature section: COSE_Sign1: out of memory");
	return cose_prot_decode(msg->prot, msg->prot_len, &msg->alg, err);
}

static int cose_sign1_unpack(const cbor_item_t *root, struct cose_sign1 *msg, struct nectl_err *err)
{
	cbor_item_t *inner;
	int rc;

	if (!cbor_isa_tag(root))
		return cose_sign1_fields(root, msg, err);
	if (cbor_tag_value(root) != COSE_SIGN1_TAG)
		return nectl_err_set(
		    err, NECTL_ERR_EIF,
		    "signature section: COSE_Sign1 has unexpected CBOR tag %" PRIu64,
		    cbor_tag_value(root));
	inner = cbor_tag_item(root);
	rc = cose_sign1_fields(inner, msg, err);
	cbor_decref(&inner);
	return rc;
}

int cose_sign1_decode(const uint8_t *buf, size_t len, struct cose_sign1 *msg, struct nectl_err *err)
{
	const char *why;
	cbor_item_t *root;
	int rc;

	memset(msg, 0, sizeof(*msg));
	if (len > 0 && buf[0] == COSE_SIGN1_TAG_BYTE) {
		buf++;
		len--;
	}
	root = cose_cbor_load(buf, len, &why);
	if (!root)
		return nectl_err_set(err, NECTL_ERR_EIF, "signature section: COSE_Sign1: %s", why);
	rc = cose_sign1_unpack(root, msg, err);
	cbor_decref(&root);
	if (rc)
		cose_sign1_free(msg);
	return rc;
}

void cose_sign1_free(struct cose_sign1 *msg)
{
	free(msg->prot);
	free(msg->payload);
	free(msg->sig);
	memset(msg, 0, sizeof(*msg));
}

static int cose_reject(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cose_reject(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return 0;
}

/* 1 valid, 0 not; OpenSSL's verify errors on garbage r/s mean "not valid". */
static int cose_verify_digest(EVP_PKEY *key, const struct cose_alg *alg, const uint8_t *md,
			      size_t md_len, const uint8_t *rs)
{
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *der;
	int der_len, ok = 0;

	if (cose_sig_to_der(rs, alg->coord_len, &der, &der_len))
		return -1;
	ctx = EVP_PKEY_CTX_new(key, NULL);
	if (!ctx || EVP_PKEY_verify_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, alg->md()) <= 0)
		ok = -1;
	else
		ok = EVP_PKEY_verify(ctx, der, (size_t)der_len, md, md_len) == 1;
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	if (ok == 0)
		ERR_clear_error();
	return ok;
}

int cose_sign1_verify(const struct cose_sign1 *msg, EVP_PKEY *key, char *why, size_t why_len,
		      struct nectl_err *err)
{
	const struct cose_alg *alg = cose_alg_by_id(msg->alg);
	const struct cose_alg *key_alg = cose_alg_by_key(key);
	uint8_t md[EVP_MAX_MD_SIZE];
	size_t md_len;
	int ok;

	if (!alg)
		return cose_reject(why, why_len, "unsupported COSE algorithm %d", msg->alg);
	if (!key_alg)
		return cose_reject(why, why_len,
				   "certificate key is not a P-256, P-384 or P-521 EC key");
	if (alg != key_alg)
		return cose_reject(why, why_len,
				   "COSE algorithm %s does not match the certificate's %s key",
				   alg->name, key_alg->curve);
	if (msg->sig_len != 2 * alg->coord_len)
		return cose_reject(why, why_len, "COSE signature is %zu bytes, %s needs %zu",
				   msg->sig_len, alg->name, 2 * alg->coord_len);
	if (cose_tbs_digest(alg, msg->prot, msg->prot_len, msg->payload, msg->payload_len, md,
			    &md_len))
		return nectl_err_ssl(err, NECTL_ERR_SIGCHECK,
				     "COSE_Sign1: cannot hash Sig_structure");
	ok = cose_verify_digest(key, alg, md, md_len, msg->sig);
	if (ok < 0)
		return nectl_err_ssl(err, NECTL_ERR_SIGCHECK, "COSE_Sign1: %s verification failed",
				     alg->name);
	if (!ok)
		return cose_reject(why, why_len,
				   "COSE signature does not verify with the certificate's key");
	return 1;
}
