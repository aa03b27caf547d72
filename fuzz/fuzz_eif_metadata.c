/* fuzz_eif_metadata.c: the EIF metadata JSON as describe-eif and
 * describe-enclaves read it from a hostile image (eif_metadata_describe), and
 * as build-eif writes it around a user's custom JSON (eif_metadata_build).
 * The first byte picks which; the rest is the JSON. Besides crashes, it traps
 * on broken promises: every failure carries its code, and whatever
 * eif_metadata_build writes, eif_metadata_describe reads back with the custom
 * fields flattened into "Metadata". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nectl/eif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_describe(const uint8_t *json, size_t len)
{
	struct eif_image img = {0};
	struct nectl_err err = {0};
	json_t *out = json_object();

	img.metadata = (uint8_t *)json;
	img.metadata_len = len;
	if (eif_metadata_describe(&img, out, &err) == 0) {
		if (!json_is_object(json_object_get(out, "Metadata")) ||
		    !json_object_get(out, "ImageName") || !json_object_get(out, "ImageVersion"))
			abort();
	} else if (err.kind != NECTL_ERR_EIF || !err.msg[0]) {
		abort();
	}
	json_decref(out);
}

/* The custom JSON (NUL-terminated text) wrapped by build, read back by describe. */
static void fuzz_roundtrip(const char *custom)
{
	struct eif_metadata_fields f = {.image_name = "fuzz",
					.image_version = "1",
					.build_time = "1970-01-01T00:00:00+00:00",
					.custom_json = custom};
	struct nectl_err err = {0};
	struct eif_image img = {0};
	json_t *out;
	char *meta;
	size_t len;

	if (eif_metadata_build(&f, &meta, &len, &err) < 0) {
		if (err.kind != NECTL_ERR_SERDE || !err.msg[0])
			abort();
		return;
	}
	if (len != strlen(meta))
		abort();
	img.metadata = (uint8_t *)meta;
	img.metadata_len = len;
	out = json_object();
	if (eif_metadata_describe(&img, out, &err) < 0 ||
	    !json_is_object(json_object_get(out, "Metadata")))
		abort();
	json_decref(out);
	free(meta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		fuzz_describe(data + 1, size - 1);
		return 0;
	}
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	fuzz_roundtrip(text);
	free(text);
	return 0;
}
