/* The EIF metadata section (nitro-cli's JSON, in its field order) and
 * describe-eif's and describe-enclaves' view of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "nectl/eif.h"
#include "util/fileio.h"

void eif_format_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

static int metadata_set_json(json_t *obj, const char *key, const char *text,
			     struct nectl_err *err)
{
	json_error_t jerr;
	json_t *v = text ? json_loads(text, JSON_DECODE_ANY, &jerr) : json_null();

	if (!v)
		return nectl_err_set(err, NECTL_ERR_SERDE, "%s is not valid JSON: %s (line %d)",
				     key, jerr.text, jerr.line);
	json_object_set_new(obj, key, v);
	return 0;
}

/* What build writes, describe must read: a custom or Docker JSON nested as
 * deep as jansson parses is one level too deep inside the metadata object. */
static int metadata_check_readable(const char *text, size_t len, struct nectl_err *err)
{
	json_error_t jerr;
	json_t *v = json_loadb(text, len, 0, &jerr);

	if (v) {
		json_decref(v);
		return 0;
	}
	return nectl_err_set(err, NECTL_ERR_SERDE,
			     "metadata: the JSON would not read back (%s): is the custom or "
			     "Docker JSON nested too deeply?",
			     jerr.text);
}

int eif_metadata_build(const struct eif_metadata_fields *f, char **out, size_t *len,
		       struct nectl_err *err)
{
	json_t *root = json_object();
	json_t *build = json_object();
	int rc = -1;

	/* nitro-cli's reader wants every key as a string, so absent ones are "". */
	json_object_set_new(root, "ImageName", json_string(f->image_name ? f->image_name : ""));
	json_object_set_new(root, "ImageVersion",
			    json_string(f->image_version ? f->image_version : ""));
	json_object_set_new(build, "BuildTime", json_string(f->build_time ? f->build_time : ""));
	json_object_set_new(build, "BuildTool", json_string(f->build_tool ? f->build_tool : ""));
	json_object_set_new(build, "BuildToolVersion",
			    json_string(f->build_tool_version ? f->build_tool_version : ""));
	json_object_set_new(build, "OperatingSystem",
			    json_string(f->operating_system ? f->operating_system : ""));
	json_object_set_new(build, "KernelVersion",
			    json_string(f->kernel_version ? f->kernel_version : ""));
	json_object_set_new(root, "BuildMetadata", build);
	if (metadata_set_json(root, "DockerInfo", f->docker_info_json, err) < 0 ||
	    metadata_set_json(root, "CustomMetadata", f->custom_json, err) < 0)
		goto out;
	*out = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!*out) {
		nectl_err_set(err, NECTL_ERR_SERDE,
			      "metadata: cannot encode JSON (invalid UTF-8?)");
		goto out;
	}
	*len = strlen(*out);
	if (metadata_check_readable(*out, *len, err) < 0) {
		free(*out);
		*out = NULL;
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

static void measurements_add(json_t *m, const char *key, const uint8_t *pcr)
{
	char hex[2 * EIF_HASH_SIZE + 1];

	eif_hex(pcr, EIF_HASH_SIZE, hex);
	json_object_set_new(m, key, json_string(hex));
}

json_t *eif_measurements_json(const struct eif_pcrs *pcrs)
{
	json_t *m = json_object();

	/* nitro-cli serializes a BTreeMap: keys sorted. */
	json_object_set_new(m, "HashAlgorithm", json_string("Sha384 { ... }"));
	measurements_add(m, "PCR0", pcrs->pcr0);
	measurements_add(m, "PCR1", pcrs->pcr1);
	measurements_add(m, "PCR2", pcrs->pcr2);
	if (pcrs->has_pcr8)
		measurements_add(m, "PCR8", pcrs->pcr8);
	return m;
}

static void metadata_copy(json_t *out, json_t *from, const char *key, json_t *fallback)
{
	json_t *v = json_object_get(from, key);

	if (v) {
		json_object_set(out, key, v);
		json_decref(fallback);
	} else {
		json_object_set_new(out, key, fallback);
	}
}

/* nitro-cli flattens BuildMetadata and the custom metadata into one object. */
int eif_metadata_describe(const struct eif_image *img, json_t *out, struct nectl_err *err)
{
	json_error_t jerr;
	json_t *meta, *build, *v;
	const char *key;

	meta = json_loadb((const char *)img->metadata, img->metadata_len, 0, &jerr);
	if (!meta || !json_is_object(meta)) {
		json_decref(meta);
		return nectl_err_set(err, NECTL_ERR_EIF,
				     "metadata section is not a JSON object: %s",
				     meta ? "wrong type" : jerr.text);
	}
	metadata_copy(out, meta, "ImageName", json_string(""));
	metadata_copy(out, meta, "ImageVersion", json_string(""));
	v = json_object();
	build = json_object_get(meta, "BuildMetadata");
	if (json_is_object(build))
		json_object_update(v, build);
	metadata_copy(v, meta, "DockerInfo", json_null());
	json_object_foreach(json_object_get(meta, "CustomMetadata"), key, build)
		json_object_set(v, key, build);
	json_object_set_new(out, "Metadata", v);
	json_decref(meta);
	return 0;
}
