/* Attestation documents (reference/aws-nitro-ecosystem.md §5.5): the payload
 * map in AWS's field order and serde_cbor's encoding, signed as an untagged
 * COSE_Sign1 with ES384 by the project's COSE code, whose protected header
 * {1: -35} (a1 01 38 22), empty unprotected map and 96-byte r || s are what
 * real documents carry. */
#include <stdlib.h>
#include <time.h>

#include "nectl/cose.h"
#include "nsm_internal.h"

/* In payload order: the three optional fields of the request. */
enum { NSM_F_PUBLIC_KEY, NSM_F_USER_DATA, NSM_F_NONCE, NSM_F_COUNT };

static const char *const nsm_field_names[NSM_F_COUNT] = {"public_key", "user_data", "nonce"};

struct nsm_field {
	const uint8_t *data;
	size_t len;
	bool present; /* absent and null both mean None */
};

static enum nsm_code nsm_field_get(const cbor_item_t *args, const char *key, struct nsm_field *f)
{
	const cbor_item_t *item = nsm_arg(args, key);

	f->present = false;
	if (!item || cbor_is_null(item))
		return NSM_OK;
	if (!nsm_arg_bytes(item, &f->data, &f->len))
		return NSM_E_INVALID_OPERATION;
	if (f->len > NSM_FIELD_MAX)
		return NSM_E_INVALID_ARGUMENT;
	f->present = true;
	return NSM_OK;
}

static uint64_t nsm_now_ms(const struct nsm *n)
{
	struct timespec ts;

	if (n->clock_ms)
		return n->clock_ms(n->clock_ctx);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Every locked PCR, ascending as serde writes a BTreeMap; a debug enclave's
 * are zero, as AWS hides them. */
static cbor_item_t *nsm_doc_pcrs(const struct nsm *n)
{
	static const uint8_t zero[NSM_PCR_LEN];
	size_t count = 0;
	cbor_item_t *map;

	for (unsigned i = 0; i < NSM_PCR_COUNT; i++)
		count += n->pcrs[i].locked;
	map = cbor_new_definite_map(count);
	for (unsigned i = 0; map && i < NSM_PCR_COUNT; i++) {
		const uint8_t *value = n->debug ? zero : n->pcrs[i].value;

		if (n->pcrs[i].locked &&
		    !cose_cbor_map_put(map, nsm_cbor_uint(i), nsm_cbor_bstr(value, NSM_PCR_LEN)))
			cbor_decref(&map);
	}
	return map;
}

static cbor_item_t *nsm_doc_bundle(const struct nsm *n)
{
	cbor_item_t *array = cbor_new_definite_array(n->cabundle_len);

	for (size_t i = 0; array && i < n->cabundle_len; i++)
		if (!nsm_cbor_push(array, nsm_cbor_bstr(n->cabundle[i].data, n->cabundle[i].len)))
			cbor_decref(&array);
	return array;
}

static cbor_item_t *nsm_doc_optional(const struct nsm_field *f)
{
	return f->present ? nsm_cbor_bstr(f->data, f->len) : cbor_new_null();
}

static bool nsm_doc_put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	return cose_cbor_map_put(map, cbor_build_string(key), value);
}

static cbor_item_t *nsm_doc_payload(const struct nsm *n, const struct nsm_field *f)
{
	cbor_item_t *map = cbor_new_definite_map(6 + NSM_F_COUNT);
	bool ok = map && nsm_doc_put(map, "module_id", cbor_build_string(n->module_id)) &&
		  nsm_doc_put(map, "digest", cbor_build_string("SHA384")) &&
		  nsm_doc_put(map, "timestamp", nsm_cbor_uint(nsm_now_ms(n))) &&
		  nsm_doc_put(map, "pcrs", nsm_doc_pcrs(n)) &&
		  nsm_doc_put(map, "certificate", nsm_cbor_bstr(n->cert.data, n->cert.len)) &&
		  nsm_doc_put(map, "cabundle", nsm_doc_bundle(n));

	for (unsigned i = 0; ok && i < NSM_F_COUNT; i++)
		ok = nsm_doc_put(map, nsm_field_names[i], nsm_doc_optional(&f[i]));
	if (!ok && map)
		cbor_decref(&map);
	return map;
}

/* The untagged COSE_Sign1 over the payload; NULL when out of memory or the
 * key refuses to sign (then only InternalError can be said). */
static uint8_t *nsm_doc_sign(const struct nsm *n, const struct nsm_field *f, size_t *len)
{
	cbor_item_t *payload = nsm_doc_payload(n, f);
	uint8_t *buf = NULL, *doc = NULL;
	struct nectl_err err;
	size_t buf_len;

	if (!payload)
		return NULL;
	if (cose_cbor_dump(payload, &buf, &buf_len) == 0 &&
	    cose_sign1_encode(n->key, buf, buf_len, &doc, len, &err))
		doc = NULL;
	cbor_decref(&payload);
	free(buf);
	return doc;
}

enum nsm_code nsm_attest_run(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply)
{
	struct nsm_field f[NSM_F_COUNT];
	enum nsm_code code;
	uint8_t *doc;
	size_t len;

	for (unsigned i = 0; i < NSM_F_COUNT; i++) {
		code = nsm_field_get(args, nsm_field_names[i], &f[i]);
		if (code)
			return code;
	}
	doc = nsm_doc_sign(n, f, &len);
	if (!doc)
		return NSM_E_INTERNAL;
	code = nsm_reply_one("Attestation", "document", nsm_cbor_bstr(doc, len), reply);
	free(doc);
	return code;
}
