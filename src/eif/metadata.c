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
		return nectl_err_set(err, NECTL_E_SERDE, "%s is not valid JSON: %s (line %d)", key,
				     jerr.text, jerr.line);
	json_object_set_new(obj, key, v);
	return 0;
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
		nectl_err_set(err, NECTL_E_SERDE, "metadata: cannot encode JSON (invalid UTF-8?)");
		goto out;
	}
	*len = strlen(*out);
	rc = 0;
out:
	json_decref(root);
	return rc;
}
