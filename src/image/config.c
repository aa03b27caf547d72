/* The JSON documents of an image: OCI index and manifest (and Docker's
 * equivalents), `docker save`'s manifest.json, oci-layout and the image config.
 * Only the fields nectl uses are read; anything else is ignored, anything
 * malformed in what is read is an error naming the document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "image/load.h"

bool load_media_is_index(const char *mt)
{
	return mt && (!strcmp(mt, "application/vnd.oci.image.index.v1+json") ||
		      !strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json"));
}

bool load_media_is_manifest(const char *mt)
{
	return mt && (!strcmp(mt, "application/vnd.oci.image.manifest.v1+json") ||
		      !strcmp(mt, "application/vnd.docker.distribution.manifest.v2+json"));
}

bool load_media_is_layer(const char *mt)
{
	/* tar, tar+gzip, tar+zstd, nondistributable and foreign variants:
	 * libarchive recognizes the compression from the bytes. */
	return mt && (!strncmp(mt, "application/vnd.oci.image.layer.", 32) ||
		      !strncmp(mt, "application/vnd.docker.image.rootfs.", 36));
}

static json_t *json_parse(const char *buf, size_t len, const char *what, struct nectl_err *err)
{
	json_error_t jerr;
	json_t *root;

	if (len > LOAD_JSON_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: larger than %u bytes", what,
				     LOAD_JSON_MAX),
		       NULL;
	root = json_loadb(buf, len, 0, &jerr);
	if (!root)
		nectl_err_set(err, NECTL_ERR_BUILD, "%s: invalid JSON (line %d: %s)", what,
			      jerr.line, jerr.text);
	return root;
}

/* An optional string member: NULL when absent or null, an error otherwise. */
static int json_str(json_t *o, const char *key, char **out, const char *what, struct nectl_err *err)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: `%s` is not a string", what, key);
	*out = strndup(json_string_value(v), json_string_length(v));
	return *out ? 0 : nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* A list of strings; a lone string counts as a list of one, as Docker's
 * own decoder accepts. NULL when absent or null. */
static int json_strv(json_t *o, const char *key, char ***out, size_t *count, const char *what,
		     struct nectl_err *err)
{
	json_t *v = json_object_get(o, key), *item;
	size_t n, i;
	char **list;

	*out = NULL;
	if (count)
		*count = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) && !json_is_string(v))
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: `%s` is not a list of strings",
				     what, key);
	n = json_is_array(v) ? json_array_size(v) : 1;
	list = calloc(n + 1, sizeof(*list));
	if (!list)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	for (i = 0; i < n; i++) {
		item = json_is_array(v) ? json_array_get(v, i) : v;
		if (!json_is_string(item)) {
			strv_free(list);
			return nectl_err_set(err, NECTL_ERR_BUILD,
					     "%s: `%s` is not a list of strings", what, key);
		}
		list[i] = strndup(json_string_value(item), json_string_length(item));
		if (!list[i]) {
			strv_free(list);
			return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
		}
	}
	*out = list;
	if (count)
		*count = n;
	return 0;
}

static void desc_free(struct load_desc *d)
{
	free(d->media_type);
	free(d->arch);
	free(d->os);
	free(d->variant);
	memset(d, 0, sizeof(*d));
}

static int desc_parse(json_t *o, const char *what, struct load_desc *d, struct nectl_err *err)
{
	json_t *digest = json_object_get(o, "digest"), *size = json_object_get(o, "size");
	json_t *platform = json_object_get(o, "platform");

	memset(d, 0, sizeof(*d));
	if (!json_is_object(o))
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: a descriptor is not an object",
				     what);
	if (!json_is_string(digest) || !load_digest_valid(json_string_value(digest)))
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "%s: a descriptor has no digest or an unsupported one "
				     "(only sha256 is supported)",
				     what);
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: descriptor %s has no valid size",
				     what, json_string_value(digest));
	strcpy(d->digest, json_string_value(digest));
	d->size = json_integer_value(size);
	if (json_str(o, "mediaType", &d->media_type, what, err) < 0)
		return -1;
	if (!platform || json_is_null(platform))
		return 0;
	d->has_platform = true;
	if (json_str(platform, "architecture", &d->arch, what, err) < 0 ||
	    json_str(platform, "os", &d->os, what, err) < 0 ||
	    json_str(platform, "variant", &d->variant, what, err) < 0) {
		desc_free(d);
		return -1;
	}
	return 0;
}

static int desc_list(json_t *a, size_t max, const char *key, const char *what, struct load_doc *doc,
		     struct nectl_err *err)
{
	size_t n = json_array_size(a);

	if (!json_is_array(a))
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: `%s` is not a list", what, key);
	if (n > max)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: more than %zu %s", what, max, key);
	doc->descs = calloc(n ? n : 1, sizeof(*doc->descs));
	if (!doc->descs)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	for (; doc->count < n; doc->count++)
		if (desc_parse(json_array_get(a, doc->count), what, &doc->descs[doc->count], err) <
		    0)
			return -1;
	return 0;
}

void load_doc_free(struct load_doc *doc)
{
	for (size_t i = 0; i < doc->count; i++)
		desc_free(&doc->descs[i]);
	free(doc->descs);
	desc_free(&doc->config);
	memset(doc, 0, sizeof(*doc));
}

int load_json_doc(const char *buf, size_t len, const char *what, struct load_doc *doc,
		  struct nectl_err *err)
{
	json_t *root = json_parse(buf, len, what, err), *manifests, *layers;
	int rc;

	memset(doc, 0, sizeof(*doc));
	if (!root)
		return -1;
	manifests = json_object_get(root, "manifests");
	layers = json_object_get(root, "layers");
	if (manifests) {
		doc->kind = LOAD_DOC_INDEX;
		rc = desc_list(manifests, LOAD_DESCS_MAX, "manifests", what, doc, err);
	} else if (layers) {
		doc->kind = LOAD_DOC_MANIFEST;
		rc = desc_list(layers, LOAD_LAYERS_MAX, "layers", what, doc, err);
		if (rc == 0)
			rc = desc_parse(json_object_get(root, "config"), what, &doc->config, err);
	} else {
		rc = nectl_err_set(err, NECTL_ERR_BUILD,
				   "%s: neither an image index nor an image manifest", what);
	}
	json_decref(root);
	if (rc < 0)
		load_doc_free(doc);
	return rc;
}

void load_docker_free(struct load_docker_image *imgs, size_t count)
{
	for (size_t i = 0; imgs && i < count; i++) {
		free(imgs[i].config);
		strv_free(imgs[i].layers);
	}
	free(imgs);
}

int load_json_docker(const char *buf, size_t len, const char *what, struct load_docker_image **out,
		     size_t *count, struct nectl_err *err)
{
	json_t *root = json_parse(buf, len, what, err);
	struct load_docker_image *imgs = NULL;
	size_t n = 0;
	int rc = 0;

	if (!root)
		return -1;
	if (!json_is_array(root) || json_array_size(root) == 0 ||
	    json_array_size(root) > LOAD_DESCS_MAX)
		rc = nectl_err_set(err, NECTL_ERR_BUILD, "%s: not a list of 1 to %d images", what,
				   LOAD_DESCS_MAX);
	else if (!(imgs = calloc(json_array_size(root), sizeof(*imgs))))
		rc = nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	for (; rc == 0 && n < json_array_size(root); n++) {
		json_t *o = json_array_get(root, n);

		if (json_str(o, "Config", &imgs[n].config, what, err) < 0 ||
		    json_strv(o, "Layers", &imgs[n].layers, &imgs[n].nlayers, what, err) < 0)
			rc = -1;
		else if (!imgs[n].config || !imgs[n].layers)
			rc = nectl_err_set(err, NECTL_ERR_BUILD,
					   "%s: an image lacks Config or Layers", what);
		else if (imgs[n].nlayers > LOAD_LAYERS_MAX)
			rc = nectl_err_set(err, NECTL_ERR_BUILD, "%s: more than %d layers", what,
					   LOAD_LAYERS_MAX);
	}
	json_decref(root);
	if (rc < 0) {
		load_docker_free(imgs, n);
		return -1;
	}
	*out = imgs;
	*count = n;
	return 0;
}

int load_json_layout(const char *buf, size_t len, const char *what, struct nectl_err *err)
{
	json_t *root = json_parse(buf, len, what, err);
	const char *v;
	int rc = 0;

	if (!root)
		return -1;
	v = json_string_value(json_object_get(root, "imageLayoutVersion"));
	if (!v || strncmp(v, "1.", 2) != 0)
		rc = nectl_err_set(err, NECTL_ERR_BUILD, "%s: unsupported imageLayoutVersion %s",
				   what, v ? v : "(none)");
	json_decref(root);
	return rc;
}

void image_config_free(struct image_config *c)
{
	if (!c)
		return;
	strv_free(c->cmd);
	strv_free(c->entrypoint);
	strv_free(c->env);
	free(c->working_dir);
	free(c->architecture);
	free(c->os);
	free(c->image_id);
	free(c->config_json);
	memset(c, 0, sizeof(*c));
}

void load_config_free(struct load_config *lc)
{
	image_config_free(&lc->cfg);
	strv_free(lc->diff_ids);
	memset(lc, 0, sizeof(*lc));
}

static int config_image_id(struct load_config *lc, const char *buf, size_t len)
{
	uint8_t md[32];

	lc->cfg.image_id = malloc(LOAD_DIGEST_LEN + 1);
	if (!lc->cfg.image_id || EVP_Digest(buf, len, md, NULL, EVP_sha256(), NULL) != 1)
		return -1;
	strcpy(lc->cfg.image_id, "sha256:");
	for (int i = 0; i < 32; i++)
		snprintf(lc->cfg.image_id + 7 + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int config_fields(json_t *root, const char *what, struct load_config *lc,
			 struct nectl_err *err)
{
	struct image_config *c = &lc->cfg;
	json_t *conf = json_object_get(root, "config");
	json_t *rootfs = json_object_get(root, "rootfs");

	if (conf && !json_is_null(conf) && !json_is_object(conf))
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: `config` is not an object", what);
	if (json_str(root, "architecture", &c->architecture, what, err) < 0 ||
	    json_str(root, "os", &c->os, what, err) < 0 ||
	    json_strv(conf, "Cmd", &c->cmd, NULL, what, err) < 0 ||
	    json_strv(conf, "Entrypoint", &c->entrypoint, NULL, what, err) < 0 ||
	    json_strv(conf, "Env", &c->env, NULL, what, err) < 0 ||
	    json_str(conf, "WorkingDir", &c->working_dir, what, err) < 0 ||
	    json_strv(rootfs, "diff_ids", &lc->diff_ids, &lc->ndiff_ids, what, err) < 0)
		return -1;
	for (size_t i = 0; i < lc->ndiff_ids; i++)
		if (!load_digest_valid(lc->diff_ids[i]))
			return nectl_err_set(err, NECTL_ERR_BUILD,
					     "%s: diff_id `%.80s` is not a sha256 digest", what,
					     lc->diff_ids[i]);
	return 0;
}

int load_json_config(char *buf, size_t len, const char *what, struct load_config *lc,
		     struct nectl_err *err)
{
	json_t *root;
	int rc;

	memset(lc, 0, sizeof(*lc));
	lc->cfg.config_json = buf;
	root = json_parse(buf, len, what, err);
	if (!root) {
		load_config_free(lc);
		return -1;
	}
	if (!json_is_object(root))
		rc = nectl_err_set(err, NECTL_ERR_BUILD, "%s: not a JSON object", what);
	else
		rc = config_fields(root, what, lc, err);
	if (rc == 0 && config_image_id(lc, buf, len) < 0)
		rc = nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	json_decref(root);
	if (rc < 0)
		load_config_free(lc);
	return rc;
}
