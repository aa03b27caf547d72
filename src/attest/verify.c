/* The attestation document verifier: COSE_Sign1 (ES384) decoded strictly,
 * the payload's every field type- and size-checked, the signature checked
 * with the leaf certificate's key, the chain leaf -> cabundle -> the given
 * root at the document's own time, then the caller's policy (reference
 * §5.5). Every failure is a reason in the verdict, never a crash. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cbor.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "nectl/attest.h"
#include "nectl/cose.h"
#include "nectl/eif.h"

/* Clocks differ; a document this far ahead is still "now". */
#define VERIFY_SKEW_MS (5u * 60u * 1000u)

static void verdict_add(struct attest_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void verdict_add(struct attest_verdict *v, const char *fmt, ...)
{
	va_list ap;

	v->valid = false;
	if (v->n_reasons == ATTEST_REASONS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(v->reasons[v->n_reasons++], ATTEST_REASON_LEN, fmt, ap);
	va_end(ap);
}

enum doc_field {
	F_MODULE_ID,
	F_DIGEST,
	F_TIMESTAMP,
	F_PCRS,
	F_CERTIFICATE,
	F_CABUNDLE,
	F_PUBLIC_KEY,
	F_USER_DATA,
	F_NONCE,
	F_COUNT,
	F_REQUIRED = F_PUBLIC_KEY /* the fields before this one must be present */
};

static const char *const doc_names[F_COUNT] = {
    "module_id", "digest",     "timestamp", "pcrs",  "certificate",
    "cabundle",	 "public_key", "user_data", "nonce",
};

static int doc_fail(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int doc_fail(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, ATTEST_REASON_LEN, fmt, ap);
	va_end(ap);
	return -1;
}

/* A byte string of min..max bytes, copied out. */
static int doc_bstr(const cbor_item_t *it, const char *name, size_t min, size_t max, uint8_t **out,
		    size_t *len, char *why)
{
	size_t n;

	if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
		return doc_fail(why, "payload: %s is not a byte string", name);
	n = cbor_bytestring_length(it);
	if (n < min || n > max)
		return doc_fail(why, "payload: %s is %zu bytes, must be %zu..%zu", name, n, min,
				max);
	*out = malloc(n ? n : 1);
	if (!*out)
		return doc_fail(why, "payload: %s: out of memory", name);
	if (n)
		memcpy(*out, cbor_bytestring_handle(it), n);
	*len = n;
	return 0;
}

/* Printable ASCII only: it is shown in verdicts and logs. */
static int doc_module_id(const cbor_item_t *it, struct attest_doc *d, char *why)
{
	size_t n;
	const unsigned char *s;

	if (!cbor_isa_string(it) || !cbor_string_is_definite(it))
		return doc_fail(why, "payload: module_id is not a text string");
	n = cbor_string_length(it);
	if (n == 0 || n > ATTEST_MODULE_ID_MAX)
		return doc_fail(why, "payload: module_id is %zu bytes, must be 1..%u", n,
				ATTEST_MODULE_ID_MAX);
	s = cbor_string_handle(it);
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return doc_fail(why, "payload: module_id holds a non-printable byte");
	memcpy(d->module_id, s, n);
	d->module_id[n] = '\0';
	return 0;
}

static int doc_pcr(const struct cbor_pair *p, struct attest_doc *d, char *why)
{
	uint64_t i;

	if (!cbor_isa_uint(p->key) || (i = cbor_get_int(p->key)) >= ATTEST_PCR_COUNT)
		return doc_fail(why, "payload: pcrs has a key that is not an index 0..%u",
				ATTEST_PCR_COUNT - 1);
	if (d->pcr_present & (1u << i))
		return doc_fail(why, "payload: pcrs lists PCR%" PRIu64 " twice", i);
	if (!cbor_isa_bytestring(p->value) || !cbor_bytestring_is_definite(p->value) ||
	    cbor_bytestring_length(p->value) != ATTEST_PCR_LEN)
		return doc_fail(why, "payload: PCR%" PRIu64 " is not a %u-byte string", i,
				ATTEST_PCR_LEN);
	memcpy(d->pcrs[i], cbor_bytestring_handle(p->value), ATTEST_PCR_LEN);
	d->pcr_present |= 1u << i;
	return 0;
}

static int doc_pcrs(const cbor_item_t *it, struct attest_doc *d, char *why)
{
	size_t n;

	if (!cbor_isa_map(it))
		return doc_fail(why, "payload: pcrs is not a map");
	n = cbor_map_size(it);
	if (n == 0 || n > ATTEST_PCR_COUNT)
		return doc_fail(why, "payload: pcrs has %zu entries, must be 1..%u", n,
				ATTEST_PCR_COUNT);
	for (size_t i = 0; i < n; i++)
		if (doc_pcr(&cbor_map_handle(it)[i], d, why))
			return -1;
	return 0;
}

static int doc_cabundle(const cbor_item_t *it, struct attest_doc *d, char *why)
{
	size_t n;

	if (!cbor_isa_array(it))
		return doc_fail(why, "payload: cabundle is not an array");
	n = cbor_array_size(it);
	if (n == 0 || n > ATTEST_BUNDLE_MAX)
		return doc_fail(why, "payload: cabundle has %zu entries, must be 1..%u", n,
				ATTEST_BUNDLE_MAX);
	for (size_t i = 0; i < n; i++) {
		if (doc_bstr(cbor_array_handle(it)[i], "cabundle entry", 1, ATTEST_CERT_MAX,
			     &d->cabundle[i], &d->cabundle_len[i], why))
			return -1;
		d->n_cabundle = i + 1;
	}
	return 0;
}

/* Absent and null both mean "none" (serde writes null). */
static int doc_optional(const cbor_item_t *it, const char *name, uint8_t **out, size_t *len,
			char *why)
{
	if (cbor_is_null(it))
		return 0;
	return doc_bstr(it, name, 0, ATTEST_BLOB_MAX, out, len, why);
}

static int doc_field(enum doc_field f, const cbor_item_t *it, struct attest_doc *d, char *why)
{
	switch (f) {
	case F_MODULE_ID:
		return doc_module_id(it, d, why);
	case F_DIGEST:
		return cose_cbor_text_is(it, "SHA384")
			   ? 0
			   : doc_fail(why, "payload: digest is not the text \"SHA384\"");
	case F_TIMESTAMP:
		if (!cbor_isa_uint(it) || (d->timestamp_ms = cbor_get_int(it)) == 0)
			return doc_fail(why, "payload: timestamp is not a positive integer");
		return 0;
	case F_PCRS:
		return doc_pcrs(it, d, why);
	case F_CERTIFICATE:
		return doc_bstr(it, "certificate", 1, ATTEST_CERT_MAX, &d->certificate,
				&d->certificate_len, why);
	case F_CABUNDLE:
		return doc_cabundle(it, d, why);
	case F_PUBLIC_KEY:
		return doc_optional(it, "public_key", &d->public_key, &d->public_key_len, why);
	case F_USER_DATA:
		return doc_optional(it, "user_data", &d->user_data, &d->user_data_len, why);
	default:
		return doc_optional(it, "nonce", &d->nonce, &d->nonce_len, why);
	}
}

static int doc_key(const cbor_item_t *key, char *why)
{
	for (int f = 0; f < F_COUNT; f++)
		if (cose_cbor_text_is(key, doc_names[f]))
			return f;
	return doc_fail(why, "payload: unknown key (AWS's document has exactly %d)", F_COUNT);
}

static int doc_fields(const cbor_item_t *map, struct attest_doc *d, char *why)
{
	bool seen[F_COUNT] = {false};

	for (size_t i = 0; i < cbor_map_size(map); i++) {
		const struct cbor_pair *p = &cbor_map_handle(map)[i];
		int f = doc_key(p->key, why);

		if (f < 0)
			return -1;
		if (seen[f])
			return doc_fail(why, "payload: %s appears twice", doc_names[f]);
		seen[f] = true;
		if (doc_field((enum doc_field)f, p->value, d, why))
			return -1;
	}
	for (int f = 0; f < F_REQUIRED; f++)
		if (!seen[f])
			return doc_fail(why, "payload: %s is missing", doc_names[f]);
	return 0;
}

static void doc_free(struct attest_doc *d)
{
	free(d->certificate);
	for (size_t i = 0; i < d->n_cabundle; i++)
		free(d->cabundle[i]);
	free(d->public_key);
	free(d->user_data);
	free(d->nonce);
	memset(d, 0, sizeof(*d));
}

static int doc_parse(const uint8_t *payload, size_t len, struct attest_doc *d, char *why)
{
	const char *cbor_why;
	cbor_item_t *map;
	int rc;

	if (len > ATTEST_PAYLOAD_MAX)
		return doc_fail(why, "payload is %zu bytes, larger than %u", len,
				ATTEST_PAYLOAD_MAX);
	map = cose_cbor_load(payload, len, &cbor_why);
	if (!map)
		return doc_fail(why, "payload: %s", cbor_why);
	rc = cbor_isa_map(map) ? doc_fields(map, d, why) : doc_fail(why, "payload is not a map");
	cbor_decref(&map);
	if (rc)
		doc_free(d);
	return rc;
}

static X509 *der_to_x509(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);

	if (cert && p != der + len) {
		X509_free(cert);
		cert = NULL;
	}
	if (!cert)
		ERR_clear_error();
	return cert;
}

static void verify_signature(const struct cose_sign1 *msg, X509 *leaf, struct attest_verdict *v)
{
	char why[ATTEST_REASON_LEN] = "";
	struct nectl_err err = {0};
	int ok;

	if (msg->alg != EIF_COSE_ES384) {
		verdict_add(v, "COSE algorithm %d is not ES384 (-35)", msg->alg);
		return;
	}
	ok = cose_sign1_verify(msg, X509_get0_pubkey(leaf), why, sizeof(why), &err);
	if (ok < 0)
		verdict_add(v, "%s", err.msg);
	else if (ok == 0)
		verdict_add(v, "%s", why);
}

static bool chain_collect(const struct attest_doc *d, STACK_OF(X509) * bundle,
			  struct attest_verdict *v)
{
	for (size_t i = 0; i < d->n_cabundle; i++) {
		X509 *c = der_to_x509(d->cabundle[i], d->cabundle_len[i]);

		if (!c) {
			verdict_add(v, "cabundle[%zu] is not a DER certificate", i);
			return false;
		}
		if (!sk_X509_push(bundle, c)) {
			X509_free(c);
			verdict_add(v, "cabundle: out of memory");
			return false;
		}
	}
	return true;
}

/* leaf -> cabundle -> root, at the document's time. */
static void verify_chain(const struct attest_doc *d, X509 *leaf, X509 *root,
			 struct attest_verdict *v)
{
	STACK_OF(X509) *bundle = sk_X509_new_null();
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;

	if (!bundle || !store || !ctx || !X509_STORE_add_cert(store, root) ||
	    !X509_STORE_CTX_init(ctx, store, leaf, bundle)) {
		verdict_add(v, "certificate chain: out of memory");
	} else if (chain_collect(d, bundle, v)) {
		param = X509_STORE_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_USE_CHECK_TIME);
		X509_VERIFY_PARAM_set_time(param, (time_t)(d->timestamp_ms / 1000u));
		if (X509_verify_cert(ctx) != 1)
			verdict_add(v,
				    "certificate chain does not verify to the root at the "
				    "document's time: %s",
				    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	}
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(bundle, X509_free);
}

static void verify_leaf(const struct attest_doc *d, const struct cose_sign1 *msg,
			const struct attest_policy *p, struct attest_verdict *v)
{
	X509 *leaf = der_to_x509(d->certificate, d->certificate_len);

	if (!leaf) {
		verdict_add(v, "certificate is not a DER X.509 certificate");
		return;
	}
	if (X509_check_ca(leaf) != 0)
		verdict_add(v, "certificate is a CA certificate, not an enclave's leaf");
	if (!(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
		verdict_add(v, "certificate's key usage does not allow digital signatures");
	verify_signature(msg, leaf, v);
	verify_chain(d, leaf, p->root, v);
	X509_free(leaf);
}

static bool pcr_zero(const uint8_t *pcr)
{
	for (unsigned i = 0; i < ATTEST_PCR_LEN; i++)
		if (pcr[i])
			return false;
	return true;
}

/* A debug-mode enclave's PCR0..2 are zero (AWS's, and nectl's NSM). */
static void policy_debug(const struct attest_doc *d, const struct attest_policy *p,
			 struct attest_verdict *v)
{
	for (unsigned i = 0; i < 3; i++)
		if ((d->pcr_present & (1u << i)) && !pcr_zero(d->pcrs[i]))
			return;
	if (!p->allow_debug)
		verdict_add(v, "PCR0..2 are zero: a debug-mode enclave (allow with allow-debug)");
}

static void policy_pcrs(const struct attest_doc *d, const struct attest_policy *p,
			struct attest_verdict *v)
{
	char want[2 * ATTEST_PCR_LEN + 1], have[2 * ATTEST_PCR_LEN + 1];

	for (size_t i = 0; i < p->n_pcrs; i++) {
		unsigned idx = p->pcrs[i].index;

		if (idx >= ATTEST_PCR_COUNT || !(d->pcr_present & (1u << idx))) {
			verdict_add(v, "PCR%u is not in the document", idx);
			continue;
		}
		if (memcmp(d->pcrs[idx], p->pcrs[i].value, ATTEST_PCR_LEN) == 0)
			continue;
		eif_hex(p->pcrs[i].value, ATTEST_PCR_LEN, want);
		eif_hex(d->pcrs[idx], ATTEST_PCR_LEN, have);
		verdict_add(v, "PCR%u does not match: expected %s, document has %s", idx, want,
			    have);
	}
}

static void policy_blob(const char *name, const uint8_t *have, size_t have_len, const uint8_t *want,
			size_t want_len, struct attest_verdict *v)
{
	if (!want)
		return;
	if (!have)
		verdict_add(v, "document has no %s", name);
	else if (have_len != want_len || memcmp(have, want, want_len) != 0)
		verdict_add(v, "%s does not match the expected one", name);
}

static uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void policy_age(const struct attest_doc *d, const struct attest_policy *p,
		       struct attest_verdict *v)
{
	uint64_t now = p->now_ms ? p->now_ms : clock_ms();

	if (!p->max_age_ms)
		return;
	if (d->timestamp_ms > now + VERIFY_SKEW_MS)
		verdict_add(v, "document timestamp is %" PRIu64 " s in the future",
			    (d->timestamp_ms - now) / 1000u);
	else if (now > d->timestamp_ms && now - d->timestamp_ms > p->max_age_ms)
		verdict_add(v,
			    "document is %" PRIu64 " ms old, older than the %" PRIu64 " ms allowed",
			    now - d->timestamp_ms, p->max_age_ms);
}

static void verify_policy(const struct attest_doc *d, const struct attest_policy *p,
			  struct attest_verdict *v)
{
	policy_debug(d, p, v);
	policy_pcrs(d, p, v);
	policy_blob("nonce", d->nonce, d->nonce_len, p->nonce, p->nonce_len, v);
	policy_blob("user_data", d->user_data, d->user_data_len, p->user_data, p->user_data_len, v);
	policy_age(d, p, v);
}

/* The COSE decoder speaks of the EIF's signature section, where it was born;
 * here the same message is the document's. */
static const char *verify_cose_why(const char *msg)
{
	static const char eif_prefix[] = "signature section: ";

	if (strncmp(msg, eif_prefix, sizeof(eif_prefix) - 1) == 0)
		return msg + sizeof(eif_prefix) - 1;
	return msg;
}

int attest_verify(const uint8_t *doc, size_t len, const struct attest_policy *p,
		  struct attest_verdict *v, struct nectl_err *err)
{
	char why[ATTEST_REASON_LEN];
	struct nectl_err derr = {0};
	struct cose_sign1 msg;

	memset(v, 0, sizeof(*v));
	v->valid = true;
	if (!p || !p->root)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "attestation: no root certificate to verify against");
	if (len > ATTEST_DOC_MAX) {
		verdict_add(v, "document is %zu bytes, larger than %u", len, ATTEST_DOC_MAX);
		return 0;
	}
	if (cose_sign1_decode(doc, len, &msg, &derr) < 0) {
		verdict_add(v, "%s", verify_cose_why(derr.msg));
		return 0;
	}
	if (doc_parse(msg.payload, msg.payload_len, &v->doc, why) < 0) {
		verdict_add(v, "%s", why);
	} else {
		v->parsed = true;
		verify_leaf(&v->doc, &msg, p, v);
		verify_policy(&v->doc, p, v);
	}
	cose_sign1_free(&msg);
	return 0;
}

void attest_verdict_free(struct attest_verdict *v)
{
	doc_free(&v->doc);
	v->parsed = false;
}
