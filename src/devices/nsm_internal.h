/* Internal to the NSM core (src/devices/nsm*.c): its state, the API's error
 * codes and the small CBOR builders the request handlers share. */
#ifndef NECTL_NSM_INTERNAL_H
#define NECTL_NSM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "nectl/nsm.h"

/* ErrorCode (reference/aws-nitro-ecosystem.md §5.3); only names go on the wire. */
enum nsm_code {
	NSM_OK,
	NSM_E_INVALID_ARGUMENT,
	NSM_E_INVALID_INDEX,
	NSM_E_READ_ONLY_INDEX,
	NSM_E_INVALID_OPERATION,
	NSM_E_BUFFER_TOO_SMALL,
	NSM_E_INPUT_TOO_LARGE,
	NSM_E_INTERNAL,
};

struct nsm_blob {
	uint8_t *data;
	size_t len;
};

struct nsm_pcr {
	uint8_t value[NSM_PCR_LEN];
	bool locked;
};

struct nsm {
	struct nsm_pcr pcrs[NSM_PCR_COUNT];
	bool debug;
	char module_id[NSM_MODULE_ID_MAX + 1];
	EVP_PKEY *key;
	struct nsm_blob cert;
	struct nsm_blob cabundle[NSM_CABUNDLE_MAX];
	size_t cabundle_len;
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
};

/* A request handler: args is the inner map of a struct variant, NULL for a
 * unit variant. On NSM_OK *reply holds the whole response item. */
typedef enum nsm_code (*nsm_run_fn)(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply);

/* Parses req and runs its handler; *too_big is the code to answer when the
 * reply does not fit (as QEMU's NSM chooses it per request). */
enum nsm_code nsm_req_dispatch(struct nsm *n, const uint8_t *req, size_t len, cbor_item_t **reply,
			       enum nsm_code *too_big);
enum nsm_code nsm_attest_run(struct nsm *n, const cbor_item_t *args, cbor_item_t **reply);

/* args[key], NULL when absent. */
const cbor_item_t *nsm_arg(const cbor_item_t *args, const char *key);
/* A byte field: a definite byte or text string (serde_bytes takes both). */
bool nsm_arg_bytes(const cbor_item_t *item, const uint8_t **data, size_t *len);
/* The shortest encoding of v, as serde_cbor writes integers. */
cbor_item_t *nsm_cbor_uint(uint64_t v);
cbor_item_t *nsm_cbor_bstr(const uint8_t *data, size_t len);
/* Appends item to array, consuming the caller's reference (item may be NULL
 * from a failed build, which makes this fail). */
bool nsm_cbor_push(cbor_item_t *array, cbor_item_t *item);
/* {name: body}, consuming body; NULL when out of memory. */
cbor_item_t *nsm_cbor_variant(const char *name, cbor_item_t *body);
/* *reply = {name: {key: value}}, consuming value; NSM_E_INTERNAL when out
 * of memory. */
enum nsm_code nsm_reply_one(const char *name, const char *key, cbor_item_t *value,
			    cbor_item_t **reply);

#endif
