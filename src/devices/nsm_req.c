/* NSM requests (reference/aws-nitro-ecosystem.md §5.2-§5.4): telling a request
 * from its serde_cbor shape (a bare text string for unit variants,
 * {Name: {fields}} for struct variants), and the PCR bank, DescribeNSM and
 * GetRandom. Anything that is not exactly a known request is InvalidOperation. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "nectl/cose.h"
#include "nsm_internal.h"

/* What DescribeNSM reports, as QEMU's NSM does (qemu-nitro.md §8). */
#define NSM_VERSION_MAJOR 1
#define NSM_VERSION_MINOR 0
#define NSM_VERSION_PATCH 0

const cbor_item_t *nsm_arg(const cbor_item_t *args, const char *key)
{
	struct cbor_pair *pairs = cbor_map_handle(args);

	for (size_t i = 0; i < cbor_map_size(args); i++)
		if (cose_cbor_text_is(pairs[i].key, key))
			return pairs[i].value;
	return NULL;
}

bool nsm_arg_bytes(const cbor_item_t *item, const uint8_t **data, size_t *len)
{
	if (cbor_isa_bytestring(item) && cbor_bytestring_is_definite(item)) {
		*data = cbor_bytestring_handle(item);
		*len = cbor_bytestring_length(item);
		return true;
	}
	if (cbor_isa_string(item) && cbor_string_is_definite(item)) {
		*data = cbor_string_handle(item);
		*len = cbor_string_length(item);
		return true;
	}
	return false;
}

/* A u16 field (index, range): serde rejects anything else. */
static bool nsm_arg_u16(const cbor_item_t *args, const char *key, unsigned *out)
{
	const cbor_item_t *item = nsm_arg(args, key);

	if (!item || !cbor_isa_uint(item) || cbor_get_int(item) > UINT16_MAX)
		return false;
	*out = (unsigned)cbor_get_int(item);
	return true;
}

cbor_item_t *nsm_cbor_uint(uint64_t v)
{
	if (v <= UINT8_MAX)
		return cbor_build_uint8((uint8_t)v);
	if (v <= UINT16_MAX)
		return cbor_build_uint16((uint16_t)v);
	if (v <= UINT32_MAX)
		return cbor_build_uint32((uint32_t)v);
	return cbor_build_uint64(v);
}

/* libcbor copies from the handle even for empty strings, so never pass NULL. */
cbor_item_t *nsm_cbor_bstr(const uint8_t *data, size_t len)
{
	static const uint8_t none;

	return cbor_build_bytestring(data ? data : &none, len);
}

bool nsm_cbor_push(cbor_item_t *array, cbor_item_t *item)
{
	bool ok = item && cbor_array_push(array, item);

	if (item)
		cbor_decref(&item);
	return ok;
}

cbor_item_t *nsm_cbor_variant(const char *name, cbor_item_t *body)
{
	cbor_item_t *map = cbor_new_definite_map(1);

	if (!map) {
		if (body)
			cbor_decref(&body);
		return NULL;
	}
	if (!cose_cbor_map_put(map, cbor_build_string(name), body))
		cbor_decref(&map);
	return map;
}

enum nsm_code nsm_reply_one(const char *name, const char *key, cbor_item_t *value,
			    cbor_item_t **reply)
{
	cbor_item_t *body = cbor_new_definite_map(1);

	if (!body) {
		if (value)
			cbor_decref(&value);
		return NSM_E_INTERNAL;
	}
	if (!cose_cbor_map_put(body, cbor_build_string(key), value)) {
		cbor_decref(&body);
		return NSM_E_INTERNAL;
	}
	*reply = nsm_cbor_variant(name, body);
	return *reply ? NSM_OK : NSM_E_INTERNAL;
}

static enum nsm_code nsm_reply_text(const char *text, cbor_item_t **reply)
{
	*reply = cbor_build_string(text);
	return *reply ? NSM_OK : NSM_E_INTERNAL;
}

static enum nsm_code nsm_get_random(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply)
{
	uint8_t buf[NSM_RANDOM_LEN];

	if (RAND_bytes(buf, sizeof(buf)) != 1)
		return NSM_E_INTERNAL;
	return nsm_reply_one("GetRandom", "random", nsm_cbor_bstr(buf, sizeof(buf)), reply);
}

static cbor_item_t *nsm_locked_list(const struct nsm *n)
{
	size_t count = 0;
	cbor_item_t *array;

	for (unsigned i = 0; i < NSM_PCR_COUNT; i++)
		count += n->pcrs[i].locked;
	array = cbor_new_definite_array(count);
	for (unsigned i = 0; array && i < NSM_PCR_COUNT; i++)
		if (n->pcrs[i].locked && !nsm_cbor_push(array, nsm_cbor_uint(i)))
			cbor_decref(&array);
	return array;
}

static enum nsm_code nsm_describe_nsm(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply)
{
	cbor_item_t *body = cbor_new_definite_map(7);

	if (body &&
	    !(cose_cbor_map_put(body, cbor_build_string("version_major"),
				nsm_cbor_uint(NSM_VERSION_MAJOR)) &&
	      cose_cbor_map_put(body, cbor_build_string("version_minor"),
				nsm_cbor_uint(NSM_VERSION_MINOR)) &&
	      cose_cbor_map_put(body, cbor_build_string("version_patch"),
				nsm_cbor_uint(NSM_VERSION_PATCH)) &&
	      cose_cbor_map_put(body, cbor_build_string("module_id"),
				cbor_build_string(n->module_id)) &&
	      cose_cbor_map_put(body, cbor_build_string("max_pcrs"),
				nsm_cbor_uint(NSM_PCR_COUNT)) &&
	      cose_cbor_map_put(body, cbor_build_string("locked_pcrs"), nsm_locked_list(n)) &&
	      cose_cbor_map_put(body, cbor_build_string("digest"), cbor_build_string("SHA384"))))
		cbor_decref(&body);
	*reply = body ? nsm_cbor_variant("DescribeNSM", body) : NULL;
	return *reply ? NSM_OK : NSM_E_INTERNAL;
}

/* The index of a PCR request: InvalidOperation when missing or not a u16,
 * InvalidIndex past the bank. */
static enum nsm_code nsm_pcr_index(const cbor_item_t *args, unsigned *index)
{
	if (!nsm_arg_u16(args, "index", index))
		return NSM_E_INVALID_OPERATION;
	return *index < NSM_PCR_COUNT ? NSM_OK : NSM_E_INVALID_INDEX;
}

static enum nsm_code nsm_describe_pcr(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply)
{
	enum nsm_code code;
	cbor_item_t *body;
	unsigned i;

	code = nsm_pcr_index(args, &i);
	if (code)
		return code;
	body = cbor_new_definite_map(2);
	if (body && !(cose_cbor_map_put(body, cbor_build_string("lock"),
					cbor_build_bool(n->pcrs[i].locked)) &&
		      cose_cbor_map_put(body, cbor_build_string("data"),
					nsm_cbor_bstr(n->pcrs[i].value, NSM_PCR_LEN))))
		cbor_decref(&body);
	*reply = body ? nsm_cbor_variant("DescribePCR", body) : NULL;
	return *reply ? NSM_OK : NSM_E_INTERNAL;
}

/* new = SHA-384(old || data), the NSM's (and a TPM's) extend. */
static bool nsm_pcr_extend(uint8_t value[NSM_PCR_LEN], const uint8_t *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t md[NSM_PCR_LEN];
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) == 1 &&
		  EVP_DigestUpdate(ctx, value, NSM_PCR_LEN) == 1 &&
		  (len == 0 || EVP_DigestUpdate(ctx, data, len) == 1) &&
		  EVP_DigestFinal_ex(ctx, md, NULL) == 1;

	EVP_MD_CTX_free(ctx);
	if (ok)
		memcpy(value, md, NSM_PCR_LEN);
	return ok;
}

static enum nsm_code nsm_extend_pcr(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply)
{
	const cbor_item_t *item = nsm_arg(args, "data");
	const uint8_t *data;
	enum nsm_code code;
	size_t len;
	unsigned i;

	if (!item || !nsm_arg_bytes(item, &data, &len))
		return NSM_E_INVALID_OPERATION;
	code = nsm_pcr_index(args, &i);
	if (code)
		return code;
	if (n->pcrs[i].locked)
		return NSM_E_READ_ONLY_INDEX;
	if (!nsm_pcr_extend(n->pcrs[i].value, data, len))
		return NSM_E_INTERNAL;
	return nsm_reply_one("ExtendPCR", "data", nsm_cbor_bstr(n->pcrs[i].value, NSM_PCR_LEN),
			     reply);
}

static enum nsm_code nsm_lock_pcr(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply)
{
	enum nsm_code code;
	unsigned i;

	code = nsm_pcr_index(args, &i);
	if (code)
		return code;
	if (n->pcrs[i].locked)
		return NSM_E_READ_ONLY_INDEX;
	n->pcrs[i].locked = true;
	return nsm_reply_text("LockPCR", reply);
}

static enum nsm_code nsm_lock_pcrs(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply)
{
	unsigned range;

	if (!nsm_arg_u16(args, "range", &range))
		return NSM_E_INVALID_OPERATION;
	if (range > NSM_PCR_COUNT)
		return NSM_E_INVALID_INDEX;
	for (unsigned i = 0; i < range; i++)
		n->pcrs[i].locked = true;
	return nsm_reply_text("LockPCRs", reply);
}

struct nsm_op {
	const char *name;
	bool has_fields; /* a struct variant, else a unit variant */
	nsm_run_fn run;
	enum nsm_code too_big;
};

static const struct nsm_op nsm_ops[] = {
    {"DescribeNSM", false, nsm_describe_nsm, NSM_E_INPUT_TOO_LARGE},
    {"GetRandom", false, nsm_get_random, NSM_E_INPUT_TOO_LARGE},
    {"DescribePCR", true, nsm_describe_pcr, NSM_E_INPUT_TOO_LARGE},
    {"ExtendPCR", true, nsm_extend_pcr, NSM_E_BUFFER_TOO_SMALL},
    {"LockPCR", true, nsm_lock_pcr, NSM_E_BUFFER_TOO_SMALL},
    {"LockPCRs", true, nsm_lock_pcrs, NSM_E_BUFFER_TOO_SMALL},
    {"Attestation", true, nsm_attest_run, NSM_E_INPUT_TOO_LARGE},
};

/* The request's variant name and, for a struct variant, its field map. */
static const struct nsm_op *nsm_op_find(const cbor_item_t *root, const cbor_item_t **args)
{
	const cbor_item_t *name = root;

	*args = NULL;
	if (cbor_isa_map(root)) {
		if (cbor_map_size(root) != 1 || !cbor_isa_map(cbor_map_handle(root)[0].value))
			return NULL;
		name = cbor_map_handle(root)[0].key;
		*args = cbor_map_handle(root)[0].value;
	}
	for (size_t i = 0; i < sizeof(nsm_ops) / sizeof(nsm_ops[0]); i++)
		if (nsm_ops[i].has_fields == (*args != NULL) &&
		    cose_cbor_text_is(name, nsm_ops[i].name))
			return &nsm_ops[i];
	return NULL;
}

enum nsm_code nsm_req_dispatch(struct nsm *n, const uint8_t *req, size_t len, cbor_item_t **reply,
			       enum nsm_code *too_big)
{
	const struct nsm_op *op;
	const cbor_item_t *args;
	cbor_item_t *root;
	enum nsm_code code = NSM_E_INVALID_OPERATION;
	const char *why;

	root = cose_cbor_load(req, len, &why);
	if (!root)
		return strcmp(why, "out of memory") ? NSM_E_INVALID_OPERATION : NSM_E_INTERNAL;
	op = nsm_op_find(root, &args);
	if (op) {
		*too_big = op->too_big;
		code = op->run(n, args, reply);
	}
	cbor_decref(&root);
	return code;
}
