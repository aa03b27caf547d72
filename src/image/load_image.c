/* Container images: an OCI image layout (directory), an OCI archive (a tar of
 * a layout) or a `docker save` archive. The store (load_blob.c) hides which;
 * this file picks the image for the wanted architecture, checks what it
 * reads against the digests that name it, and applies the layers in order.
 * When index.json exists it is preferred over manifest.json (newer docker
 * saves carry both). Everything is resolved and checked before the first
 * layer touches the tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/load.h"

struct img_layer {
	char *name; /* member or file of the store */
	char digest[LOAD_DIGEST_LEN + 1];
	int64_t size; /* -1 when the source does not say */
};

struct img_pick {
	struct load_config conf;
	struct img_layer *layers;
	size_t nlayers;
	char **avail; /* platforms seen that did not match, for the error */
	size_t navail;
};

static void pick_free(struct img_pick *p)
{
	load_config_free(&p->conf);
	for (size_t i = 0; i < p->nlayers; i++)
		free(p->layers[i].name);
	free(p->layers);
	for (size_t i = 0; i < p->navail; i++)
		free(p->avail[i]);
	free(p->avail);
	memset(p, 0, sizeof(*p));
}

static void pick_avail(struct img_pick *p, const char *os, const char *arch, const char *variant)
{
	char *s, **grown;

	if (!arch || !*arch || !strcmp(arch, "unknown"))
		return; /* attestation manifests and the like */
	if (asprintf(&s, "%s%s%s%s%s", os && strcmp(os, "linux") ? os : "",
		     os && strcmp(os, "linux") ? "/" : "", arch, variant ? "/" : "",
		     variant ? variant : "") < 0)
		return;
	for (size_t i = 0; i < p->navail; i++) {
		if (!strcmp(p->avail[i], s)) {
			free(s);
			return;
		}
	}
	grown = realloc(p->avail, (p->navail + 1) * sizeof(*grown));
	if (!grown) {
		free(s);
		return;
	}
	p->avail = grown;
	p->avail[p->navail++] = s;
}

static int pick_none(struct img_pick *p, const char *path, const char *arch, struct nectl_err *err)
{
	char list[512] = "";
	size_t used = 0;

	for (size_t i = 0; i < p->navail && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 p->avail[i]);
	return nectl_err_set(err, NECTL_ERR_BUILD, "%s: no manifest for arch %s (available: %s)",
			     path, arch, p->navail ? list : "none");
}

static bool os_linux(const char *os)
{
	return !os || !strcmp(os, "linux");
}

/* Reads and parses a config. what names it in messages. */
static int pick_config(struct load_store *s, const char *name, const char *digest, int64_t size,
		       struct load_config *lc, struct nectl_err *err)
{
	char *buf, what[LOAD_PATH_MAX + 256];
	size_t len;

	snprintf(what, sizeof(what), "%s: %s", s->path, name);
	if (load_store_read(s, name, digest, size, LOAD_JSON_MAX, &buf, &len, err) < 0)
		return -1;
	return load_json_config(buf, len, what, lc, err);
}

static int pick_doc(struct load_store *s, const struct load_desc *d, struct load_doc *doc,
		    struct nectl_err *err)
{
	char name[80], what[LOAD_PATH_MAX + 256], *buf;
	size_t len;
	int rc;

	load_digest_path(d->digest, name);
	snprintf(what, sizeof(what), "%s: %s", s->path, name);
	if (d->size > (int64_t)LOAD_JSON_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: larger than %u bytes", what,
				     LOAD_JSON_MAX);
	if (load_store_read(s, name, d->digest, d->size, LOAD_JSON_MAX, &buf, &len, err) < 0)
		return -1;
	rc = load_json_doc(buf, len, what, doc, err);
	free(buf);
	return rc;
}

/* Takes an OCI manifest's config and layers. vetted: an index platform said
 * this is the wanted architecture. Returns 1 when the config says otherwise
 * for a manifest nothing vetted. */
static int oci_manifest(struct load_store *s, const struct load_doc *m, const char *arch,
			bool vetted, struct img_pick *p, struct nectl_err *err)
{
	struct load_config lc;
	char name[80];
	const char *carch;

	load_digest_path(m->config.digest, name);
	if (m->config.size > (int64_t)LOAD_JSON_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: %s: larger than %u bytes", s->path,
				     name, LOAD_JSON_MAX);
	if (pick_config(s, name, m->config.digest, m->config.size, &lc, err) < 0)
		return -1;
	carch = lc.cfg.architecture;
	if (vetted && carch && strcmp(carch, arch)) {
		load_config_free(&lc);
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "%s: the index lists %s for arch %s, but its config says %s",
				     s->path, name, arch, carch);
	}
	if (!vetted && ((carch && strcmp(carch, arch)) || !os_linux(lc.cfg.os))) {
		pick_avail(p, lc.cfg.os, carch, NULL);
		load_config_free(&lc);
		return 1;
	}
	p->layers = calloc(m->count ? m->count : 1, sizeof(*p->layers));
	if (!p->layers) {
		load_config_free(&lc);
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	}
	p->conf = lc;
	for (size_t i = 0; i < m->count; i++) {
		const struct load_desc *d = &m->descs[i];
		struct img_layer *l = &p->layers[p->nlayers];

		if (d->media_type && !load_media_is_layer(d->media_type))
			return nectl_err_set(err, NECTL_ERR_BUILD, "%s: layer %s has media type %s",
					     s->path, d->digest, d->media_type);
		l->name = malloc(80);
		if (!l->name)
			return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
		p->nlayers++;
		load_digest_path(d->digest, l->name);
		strcpy(l->digest, d->digest);
		l->size = d->size;
	}
	return 0;
}

static int oci_index(struct load_store *s, const struct load_doc *idx, const char *arch, int depth,
		     struct img_pick *p, struct nectl_err *err);

/* Follows one descriptor of an index: 0 picked, 1 not this one, -1 error. */
static int oci_follow(struct load_store *s, const struct load_desc *d, const char *arch, int depth,
		      struct img_pick *p, struct nectl_err *err)
{
	struct load_doc doc;
	int rc;

	if (pick_doc(s, d, &doc, err) < 0)
		return -1;
	if (doc.kind == LOAD_DOC_INDEX)
		rc = oci_index(s, &doc, arch, depth + 1, p, err);
	else
		rc = oci_manifest(s, &doc, arch, d->has_platform, p, err);
	load_doc_free(&doc);
	return rc;
}

/* First the descriptors whose platform matches; then those without one
 * (single-image layouts, nested indexes), judged by what they lead to. */
static int oci_index(struct load_store *s, const struct load_doc *idx, const char *arch, int depth,
		     struct img_pick *p, struct nectl_err *err)
{
	if (depth > LOAD_NEST_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: indexes nested more than %d deep",
				     s->path, LOAD_NEST_MAX);
	for (size_t i = 0; i < idx->count; i++) {
		const struct load_desc *d = &idx->descs[i];
		int rc;

		if (!d->has_platform || !d->arch || strcmp(d->arch, arch) || !os_linux(d->os))
			continue;
		rc = oci_follow(s, d, arch, depth, p, err);
		if (rc != 1)
			return rc;
	}
	for (size_t i = 0; i < idx->count; i++)
		if (idx->descs[i].has_platform)
			pick_avail(p, idx->descs[i].os, idx->descs[i].arch, idx->descs[i].variant);
	for (size_t i = 0; i < idx->count; i++) {
		const struct load_desc *d = &idx->descs[i];
		int rc;

		if (d->has_platform || (d->media_type && !load_media_is_index(d->media_type) &&
					!load_media_is_manifest(d->media_type)))
			continue;
		rc = oci_follow(s, d, arch, depth, p, err);
		if (rc != 1)
			return rc;
	}
	return 1;
}

static int oci_pick(struct load_store *s, const char *arch, struct img_pick *p,
		    struct nectl_err *err)
{
	char what[LOAD_PATH_MAX + 64], *buf;
	struct load_doc idx;
	size_t len;
	int rc;

	if (load_store_has(s, "oci-layout")) {
		snprintf(what, sizeof(what), "%s: oci-layout", s->path);
		if (load_store_read(s, "oci-layout", NULL, -1, 65536, &buf, &len, err) < 0)
			return -1;
		rc = load_json_layout(buf, len, what, err);
		free(buf);
		if (rc < 0)
			return -1;
	}
	snprintf(what, sizeof(what), "%s: index.json", s->path);
	if (load_store_read(s, "index.json", NULL, -1, LOAD_JSON_MAX, &buf, &len, err) < 0)
		return -1;
	rc = load_json_doc(buf, len, what, &idx, err);
	free(buf);
	if (rc < 0)
		return -1;
	if (idx.kind != LOAD_DOC_INDEX)
		rc = nectl_err_set(err, NECTL_ERR_BUILD, "%s: not an image index", what);
	else
		rc = oci_index(s, &idx, arch, 0, p, err);
	load_doc_free(&idx);
	return rc == 1 ? pick_none(p, s->path, arch, err) : rc;
}

/* The digest a `docker save` member name carries: "blobs/sha256/<hex>" (new
 * layout) or "<hex>.json" (classic config); "" when it carries none. */
static void docker_name_digest(const char *name, char *out)
{
	const char *slash = strrchr(name, '/');
	const char *base = slash ? slash + 1 : name;
	const char *dot = strrchr(base, '.');
	size_t dir = (size_t)(base - name);
	char hex[LOAD_DIGEST_LEN + 1];

	out[0] = '\0';
	if (dot && dot - base == 64 && strcmp(dot, ".json") == 0)
		snprintf(hex, sizeof(hex), "sha256:%.64s", base);
	else if (!dot && strlen(base) == 64 && dir >= 7 && !strncmp(base - 7, "sha256/", 7))
		snprintf(hex, sizeof(hex), "sha256:%s", base);
	else
		return;
	if (load_digest_valid(hex))
		strcpy(out, hex);
}

static int docker_layers(struct load_store *s, const struct load_docker_image *img,
			 struct img_pick *p, struct nectl_err *err)
{
	p->layers = calloc(img->nlayers ? img->nlayers : 1, sizeof(*p->layers));
	if (!p->layers)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	for (size_t i = 0; i < img->nlayers; i++) {
		struct img_layer *l = &p->layers[p->nlayers];

		if (strlen(img->layers[i]) > LOAD_PATH_MAX)
			return nectl_err_set(err, NECTL_ERR_BUILD, "%s: a layer name is too long",
					     s->path);
		l->name = strdup(img->layers[i]);
		if (!l->name)
			return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
		p->nlayers++;
		l->size = -1;
		docker_name_digest(l->name, l->digest);
		/* Classic saves name layers by v1 id; their uncompressed
		 * digests are the config's diff_ids. */
		if (!l->digest[0] && p->conf.ndiff_ids == img->nlayers)
			strcpy(l->digest, p->conf.diff_ids[i]);
		if (!l->digest[0])
			return nectl_err_set(err, NECTL_ERR_BUILD,
					     "%s: no digest for layer %s (the config lists %zu "
					     "diff_ids for %zu layers)",
					     s->path, l->name, p->conf.ndiff_ids, img->nlayers);
	}
	return 0;
}

static int docker_image(struct load_store *s, const struct load_docker_image *img, const char *arch,
			size_t count, struct img_pick *p, struct nectl_err *err)
{
	char digest[LOAD_DIGEST_LEN + 1];
	const char *carch;

	docker_name_digest(img->config, digest);
	if (pick_config(s, img->config, digest[0] ? digest : NULL, -1, &p->conf, err) < 0)
		return -1;
	carch = p->conf.cfg.architecture;
	if (carch && strcmp(carch, arch)) {
		if (count == 1)
			return nectl_err_set(err, NECTL_ERR_BUILD,
					     "%s: the image is for arch %s, not %s", s->path, carch,
					     arch);
		pick_avail(p, p->conf.cfg.os, carch, NULL);
		load_config_free(&p->conf);
		return 1;
	}
	return docker_layers(s, img, p, err);
}

static int docker_pick(struct load_store *s, const char *arch, struct img_pick *p,
		       struct nectl_err *err)
{
	struct load_docker_image *imgs;
	char what[LOAD_PATH_MAX + 64], *buf;
	size_t len, count;
	int rc = 1;

	snprintf(what, sizeof(what), "%s: manifest.json", s->path);
	if (load_store_read(s, "manifest.json", NULL, -1, LOAD_JSON_MAX, &buf, &len, err) < 0)
		return -1;
	rc = load_json_docker(buf, len, what, &imgs, &count, err);
	free(buf);
	if (rc < 0)
		return -1;
	rc = 1;
	for (size_t i = 0; i < count && rc == 1; i++)
		rc = docker_image(s, &imgs[i], arch, count, p, err);
	load_docker_free(imgs, count);
	return rc == 1 ? pick_none(p, s->path, arch, err) : rc;
}

/* One layer; a parse error in a blob whose digest is wrong is reported as
 * the digest mismatch, the real cause. */
static int apply_layer(struct load_ctx *c, struct load_store *s, const struct img_layer *l,
		       struct nectl_err *err)
{
	struct load_blob *b;
	struct archive *a;
	struct nectl_err first;
	int rc;

	if (load_blob_open(s, l->name, l->digest, l->size, &b, &a, err) < 0)
		return -1;
	rc = load_tar_apply(c, a, err);
	if (rc < 0 && err) {
		first = *err;
		if (load_blob_verify(b, err) == 0)
			*err = first;
	} else if (rc == 0) {
		rc = load_blob_verify(b, err);
	}
	load_blob_free(b);
	return rc;
}

static int apply_layers(struct image_tree *t, struct load_store *s, const struct img_pick *p,
			const char *prefix, struct image_notes *notes, struct nectl_err *err)
{
	struct load_ctx c;
	int rc = 0;

	if (load_ctx_init(&c, t, prefix, notes, err) < 0)
		return -1;
	c.whiteouts = true;
	for (size_t i = 0; i < p->nlayers && rc == 0; i++) {
		load_ctx_layer(&c, "%s: layer %zu/%zu (%.19s)", s->path, i + 1, p->nlayers,
			       p->layers[i].digest);
		rc = apply_layer(&c, s, &p->layers[i], err);
	}
	load_ctx_free(&c);
	return rc;
}

/* Accepts the kernel's names for the two architectures too. */
static const char *image_arch(const char *arch)
{
	if (!strcmp(arch, "x86_64"))
		return "amd64";
	if (!strcmp(arch, "aarch64"))
		return "arm64";
	return arch;
}

int image_load_image(struct image_tree *t, const char *path, const char *arch, const char *prefix,
		     struct image_config *cfg, struct image_notes *notes, struct nectl_err *err)
{
	struct img_pick p = {0};
	struct load_store s;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (!arch || !*arch)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "no architecture given");
	arch = image_arch(arch);
	if (load_store_open(&s, path, image_tree_limits(t), err) < 0)
		return load_done(-1, err);
	if (load_store_has(&s, "index.json"))
		rc = oci_pick(&s, arch, &p, err);
	else if (load_store_has(&s, "manifest.json"))
		rc = docker_pick(&s, arch, &p, err);
	else
		rc = nectl_err_set(err, NECTL_ERR_BUILD,
				   "%s: not an OCI image layout or `docker save` archive "
				   "(no index.json or manifest.json)",
				   path);
	if (rc == 0)
		rc = apply_layers(t, &s, &p, prefix, notes, err);
	if (rc == 0) {
		*cfg = p.conf.cfg;
		memset(&p.conf.cfg, 0, sizeof(p.conf.cfg));
	}
	pick_free(&p);
	load_store_close(&s);
	return load_done(rc, err);
}
