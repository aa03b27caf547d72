/* imgfix.c: builds image fixtures (see imgfix.h). Archives are written with
 * libarchive into growable memory buffers; JSON with jansson; digests with
 * OpenSSL, exactly as a registry tool would lay them out. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "imgfix.h"

#define FIX_CHECK(cond)                                                                            \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "imgfix: %s:%d: %s failed\n", __FILE__, __LINE__, #cond);  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MT_LAYER_GZ   "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_LAYER      "application/vnd.oci.image.layer.v1.tar"
#define MT_CONFIG     "application/vnd.oci.image.config.v1+json"
#define MT_MANIFEST   "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX      "application/vnd.oci.image.index.v1+json"

char *imgfix_path(const char *dir, const char *fmt, ...)
{
	static char paths[8][4200];
	static int next;
	char *p = paths[next++ % 8];
	char name[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	snprintf(p, 4200, "%s/%s", dir, name);
	return p;
}

static int fix_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* Only directories need opening up, and chmod follows symlinks: on a link
	 * such as lib -> /usr/lib it would lock up the host's directory. */
	if (flag == FTW_DP || flag == FTW_DNR)
		chmod(path, 0700);
	return remove(path);
}

int imgfix_rmtree(const char *dir)
{
	return nftw(dir, fix_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void imgfix_sha256(const void *data, size_t len, char hex[65])
{
	uint8_t md[32];

	FIX_CHECK(EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) == 1);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void imgfix_write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	FIX_CHECK(fp);
	FIX_CHECK(len == 0 || fwrite(data, 1, len, fp) == len);
	FIX_CHECK(fclose(fp) == 0);
}

void imgfix_buf_free(struct imgfix_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

static la_ssize_t fix_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct imgfix_buf *b = ctx;

	b->data = realloc(b->data, b->len + len);
	FIX_CHECK(b->data);
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	return (la_ssize_t)len;
}

/* raw: the one entry's data is the output (compressed), not a tar of it. */
static struct archive *fix_ar_open_as(enum imgfix_comp comp, struct imgfix_buf *out, bool raw)
{
	struct archive *a = archive_write_new();

	FIX_CHECK(a);
	FIX_CHECK((raw ? archive_write_set_format_raw(a)
		       : archive_write_set_format_pax_restricted(a)) == ARCHIVE_OK);
	switch (comp) {
	case IMGFIX_PLAIN:
		break;
	case IMGFIX_GZIP:
		FIX_CHECK(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
		break;
	case IMGFIX_ZSTD:
		FIX_CHECK(archive_write_add_filter_zstd(a) == ARCHIVE_OK);
		break;
	case IMGFIX_XZ:
		FIX_CHECK(archive_write_add_filter_xz(a) == ARCHIVE_OK);
		break;
	case IMGFIX_BZIP2:
		FIX_CHECK(archive_write_add_filter_bzip2(a) == ARCHIVE_OK);
		break;
	}
	FIX_CHECK(archive_write_set_bytes_in_last_block(a, 1) == ARCHIVE_OK);
	out->data = NULL;
	out->len = 0;
	FIX_CHECK(archive_write_open(a, out, NULL, fix_write_cb, NULL) == ARCHIVE_OK);
	return a;
}

static struct archive *fix_ar_open(enum imgfix_comp comp, struct imgfix_buf *out)
{
	return fix_ar_open_as(comp, out, false);
}

static void fix_ar_close(struct archive *a)
{
	FIX_CHECK(archive_write_close(a) == ARCHIVE_OK);
	archive_write_free(a);
}

static void fix_ar_add(struct archive *a, const struct imgfix_entry *e, const char *path)
{
	struct archive_entry *ae = archive_entry_new();
	size_t len = e->type == IMGFIX_REG && e->data ? strlen(e->data) : 0;

	archive_entry_set_pathname(ae, path);
	archive_entry_set_mtime(ae, e->mtime ? e->mtime : IMGFIX_MTIME, 0);
	archive_entry_set_uid(ae, 1000);
	archive_entry_set_gid(ae, 1000);
	switch (e->type) {
	case IMGFIX_DIR:
		archive_entry_set_filetype(ae, AE_IFDIR);
		archive_entry_set_perm(ae, e->mode ? e->mode : 0755);
		break;
	case IMGFIX_SYMLINK:
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_perm(ae, e->mode ? e->mode : 0777);
		archive_entry_set_symlink(ae, e->data);
		break;
	case IMGFIX_HARDLINK:
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, e->mode ? e->mode : 0644);
		archive_entry_set_hardlink(ae, e->data);
		break;
	case IMGFIX_FIFO:
		archive_entry_set_filetype(ae, AE_IFIFO);
		archive_entry_set_perm(ae, e->mode ? e->mode : 0644);
		break;
	case IMGFIX_CHR:
		archive_entry_set_filetype(ae, AE_IFCHR);
		archive_entry_set_perm(ae, e->mode ? e->mode : 0666);
		archive_entry_set_rdevmajor(ae, e->major);
		archive_entry_set_rdevminor(ae, e->minor);
		break;
	default: /* regular files and whiteout markers */
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, e->mode ? e->mode : 0644);
		archive_entry_set_size(ae, (la_int64_t)(e->hole + len));
		if (e->hole)
			archive_entry_sparse_add_entry(ae, (la_int64_t)e->hole, (la_int64_t)len);
		break;
	}
	FIX_CHECK(archive_write_header(a, ae) == ARCHIVE_OK);
	if (e->hole) {
		/* libarchive takes the whole logical file and drops the holes */
		uint8_t *full = calloc(1, e->hole + len);

		FIX_CHECK(full);
		memcpy(full + e->hole, e->data, len);
		FIX_CHECK(archive_write_data(a, full, e->hole + len) ==
			  (la_ssize_t)(e->hole + len));
		free(full);
	} else if (len) {
		FIX_CHECK(archive_write_data(a, e->data, len) == (la_ssize_t)len);
	}
	archive_entry_free(ae);
}

/* Adds a file member with the given bytes. */
static void fix_ar_bytes(struct archive *a, const char *path, const void *data, size_t len)
{
	struct archive_entry *ae = archive_entry_new();

	archive_entry_set_pathname(ae, path);
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, 0644);
	archive_entry_set_mtime(ae, IMGFIX_MTIME, 0);
	archive_entry_set_size(ae, (la_int64_t)len);
	FIX_CHECK(archive_write_header(a, ae) == ARCHIVE_OK);
	if (len)
		FIX_CHECK(archive_write_data(a, data, len) == (la_ssize_t)len);
	archive_entry_free(ae);
}

static void fix_ar_symlink(struct archive *a, const char *path, const char *target)
{
	struct imgfix_entry e = {.type = IMGFIX_SYMLINK, .data = target};

	fix_ar_add(a, &e, path);
}

void imgfix_tar(const struct imgfix_entry *e, size_t n, enum imgfix_comp comp,
		struct imgfix_buf *out)
{
	struct archive *a = fix_ar_open(comp, out);

	for (size_t i = 0; i < n; i++) {
		const char *slash = strrchr(e[i].path, '/');
		int dirlen = slash ? (int)(slash - e[i].path) + 1 : 0;
		char path[4200];

		if (e[i].type == IMGFIX_WHITEOUT)
			snprintf(path, sizeof(path), "%.*s.wh.%s", dirlen, e[i].path,
				 e[i].path + dirlen);
		else if (e[i].type == IMGFIX_OPAQUE)
			snprintf(path, sizeof(path), "%s%s.wh..wh..opq", e[i].path,
				 *e[i].path ? "/" : "");
		else
			snprintf(path, sizeof(path), "%s", e[i].path);
		fix_ar_add(a, &e[i], path);
	}
	fix_ar_close(a);
}

void imgfix_tar_file(const char *path, const struct imgfix_entry *e, size_t n,
		     enum imgfix_comp comp)
{
	struct imgfix_buf b;

	imgfix_tar(e, n, comp, &b);
	imgfix_write_file(path, b.data, b.len);
	imgfix_buf_free(&b);
}

/* ---- raw tar headers: what libarchive's writer will not say ---- */

/* A numeric field: octal digits and a NUL, or GNU's base-256 when too big. */
static void fix_hdr_num(uint8_t *f, size_t w, uint64_t v)
{
	if (v < (1ull << (3 * (w - 1)))) {
		for (size_t i = w - 1; i-- > 0; v >>= 3)
			f[i] = (uint8_t)('0' + (v & 7));
		f[w - 1] = '\0';
		return;
	}
	memset(f, 0, w);
	f[0] = 0x80;
	for (size_t i = w - 1; i > 0 && v; i--, v >>= 8)
		f[i] = (uint8_t)v;
}

/* A regular file's header (type '0', or GNU's old sparse 'S'), checksummed
 * last by the caller through fix_hdr_sum. */
static void fix_hdr(uint8_t h[512], const char *name, char type, uint64_t size)
{
	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	fix_hdr_num(h + 100, 8, 0644);
	fix_hdr_num(h + 108, 8, 0);
	fix_hdr_num(h + 116, 8, 0);
	fix_hdr_num(h + 124, 12, size);
	fix_hdr_num(h + 136, 12, IMGFIX_MTIME);
	h[156] = (uint8_t)type;
	memcpy(h + 257, "ustar  ", 8); /* GNU's magic and version */
}

static void fix_hdr_sum(uint8_t h[512])
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

void imgfix_sparse_bomb(const char *path, uint64_t realsize, enum imgfix_comp comp)
{
	uint8_t tar[512 + 1024 + 1024] = {0};
	struct imgfix_buf b;
	struct archive *a;
	struct archive_entry *e;

	FIX_CHECK(realsize >= 1024);
	fix_hdr(tar, "bomb", 'S', 1024);
	fix_hdr_num(tar + 386, 12, realsize - 1024); /* sparse[0]: offset, numbytes */
	fix_hdr_num(tar + 398, 12, 1024);
	fix_hdr_num(tar + 483, 12, realsize); /* realsize */
	fix_hdr_sum(tar);
	memset(tar + 512, 'x', 1024);
	if (comp == IMGFIX_PLAIN) {
		imgfix_write_file(path, tar, sizeof(tar));
		return;
	}
	a = fix_ar_open_as(comp, &b, true);
	e = archive_entry_new();
	FIX_CHECK(e);
	archive_entry_set_pathname(e, "bomb.tar");
	archive_entry_set_filetype(e, AE_IFREG);
	FIX_CHECK(archive_write_header(a, e) == ARCHIVE_OK);
	FIX_CHECK(archive_write_data(a, tar, sizeof(tar)) == (la_ssize_t)sizeof(tar));
	archive_entry_free(e);
	fix_ar_close(a);
	imgfix_write_file(path, b.data, b.len);
	imgfix_buf_free(&b);
}

void imgfix_tar_headers(int fd, unsigned count)
{
	static uint8_t buf[64 * 512];
	size_t used = 0;
	char name[32];

	for (unsigned i = 0; i <= count; i++) {
		if (used == sizeof(buf) || i == count) {
			for (size_t off = 0; off < used;) {
				ssize_t n = write(fd, buf + off, used - off);

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0)
					return; /* the reader went away: done */
				off += (size_t)n;
			}
			used = 0;
		}
		if (i == count)
			break;
		snprintf(name, sizeof(name), "f%07u", i);
		fix_hdr(buf + used, name, '0', 0);
		fix_hdr_sum(buf + used);
		used += 512;
	}
	memset(buf, 0, 1024); /* the end: two zero blocks */
	if (write(fd, buf, 1024) != 1024)
		return;
}

void imgfix_blob(const char *dir, const void *data, size_t len, struct imgfix_desc *d)
{
	char hex[65], path[4096];

	imgfix_sha256(data, len, hex);
	snprintf(path, sizeof(path), "%s/blobs", dir);
	FIX_CHECK(mkdir(path, 0755) == 0 || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	FIX_CHECK(mkdir(path, 0755) == 0 || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, hex);
	imgfix_write_file(path, data, len);
	snprintf(d->digest, sizeof(d->digest), "sha256:%s", hex);
	d->size = len;
}

static json_t *fix_strv(const char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *fix_desc(const char *media_type, const struct imgfix_desc *d)
{
	return json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", d->digest, "size",
			 (json_int_t)d->size);
}

/* The config JSON of img; diff_ids are the uncompressed layers' digests. */
static char *fix_config(const struct imgfix_image *img, char (*diff_ids)[72])
{
	json_t *root = json_object(), *conf = json_object(), *ids = json_array();
	char *text;

	if (img->arch)
		json_object_set_new(root, "architecture", json_string(img->arch));
	if (img->os)
		json_object_set_new(root, "os", json_string(img->os));
	if (img->cmd)
		json_object_set_new(conf, "Cmd", fix_strv(img->cmd));
	if (img->entrypoint)
		json_object_set_new(conf, "Entrypoint", fix_strv(img->entrypoint));
	if (img->env)
		json_object_set_new(conf, "Env", fix_strv(img->env));
	if (img->working_dir)
		json_object_set_new(conf, "WorkingDir", json_string(img->working_dir));
	json_object_set_new(root, "config", conf);
	for (size_t i = 0; i < img->nlayers; i++)
		json_array_append_new(ids, json_string(diff_ids[i]));
	json_object_set_new(root, "rootfs",
			    json_pack("{s:s, s:o}", "type", "layers", "diff_ids", ids));
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	FIX_CHECK(text);
	json_decref(root);
	return text;
}

static const char *fix_layer_type(enum imgfix_comp comp)
{
	return comp == IMGFIX_GZIP ? MT_LAYER_GZ : comp == IMGFIX_ZSTD ? MT_LAYER_ZSTD : MT_LAYER;
}

void imgfix_oci_image(const char *dir, const struct imgfix_image *img, struct imgfix_desc *manifest,
		      struct imgfix_desc *config)
{
	char(*diff_ids)[72] = calloc(img->nlayers + 1, sizeof(*diff_ids));
	json_t *root, *layers = json_array();
	struct imgfix_desc d, cd;
	char *text, hex[65];

	FIX_CHECK(diff_ids);
	for (size_t i = 0; i < img->nlayers; i++) {
		const struct imgfix_layer *l = &img->layers[i];
		struct imgfix_buf plain, blob;

		imgfix_tar(l->entries, l->n, IMGFIX_PLAIN, &plain);
		imgfix_sha256(plain.data, plain.len, hex);
		snprintf(diff_ids[i], sizeof(diff_ids[i]), "sha256:%s", hex);
		imgfix_tar(l->entries, l->n, l->comp, &blob);
		imgfix_blob(dir, blob.data, blob.len, &d);
		json_array_append_new(layers, fix_desc(fix_layer_type(l->comp), &d));
		imgfix_buf_free(&plain);
		imgfix_buf_free(&blob);
	}
	text = fix_config(img, diff_ids);
	imgfix_blob(dir, text, strlen(text), &cd);
	free(text);
	root = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType", MT_MANIFEST,
			 "config", fix_desc(MT_CONFIG, &cd), "layers", layers);
	text = json_dumps(root, JSON_COMPACT);
	FIX_CHECK(text);
	imgfix_blob(dir, text, strlen(text), manifest);
	if (config)
		*config = cd;
	free(text);
	json_decref(root);
	free(diff_ids);
}

static json_t *fix_index(const char *dir, const struct imgfix_image *imgs, size_t n, bool platforms)
{
	json_t *list = json_array();

	for (size_t i = 0; i < n; i++) {
		struct imgfix_desc m;
		json_t *d;

		imgfix_oci_image(dir, &imgs[i], &m, NULL);
		d = fix_desc(MT_MANIFEST, &m);
		if (platforms) {
			json_t *p = json_pack("{s:s, s:s}", "architecture",
					      imgs[i].arch ? imgs[i].arch : "unknown", "os",
					      imgs[i].os ? imgs[i].os : "linux");

			if (imgs[i].variant)
				json_object_set_new(p, "variant", json_string(imgs[i].variant));
			json_object_set_new(d, "platform", p);
		}
		json_array_append_new(list, d);
	}
	return json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", MT_INDEX, "manifests",
			 list);
}

void imgfix_oci_layout(const char *dir, const struct imgfix_image *imgs, size_t n,
		       enum imgfix_index how)
{
	const char *layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
	char path[4096], *text;
	json_t *index;

	FIX_CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);
	index = fix_index(dir, imgs, n, how != IMGFIX_INDEX_PLAIN);
	if (how == IMGFIX_INDEX_NESTED) {
		struct imgfix_desc d;

		text = json_dumps(index, JSON_COMPACT);
		FIX_CHECK(text);
		imgfix_blob(dir, text, strlen(text), &d);
		free(text);
		json_decref(index);
		index = json_pack("{s:i, s:s, s:[o]}", "schemaVersion", 2, "mediaType", MT_INDEX,
				  "manifests", fix_desc(MT_INDEX, &d));
	}
	text = json_dumps(index, JSON_COMPACT);
	FIX_CHECK(text);
	snprintf(path, sizeof(path), "%s/index.json", dir);
	imgfix_write_file(path, text, strlen(text));
	free(text);
	json_decref(index);
	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	imgfix_write_file(path, layout, strlen(layout));
}

static void fix_ar_tree(struct archive *a, const char *root, const char *rel)
{
	char path[8400], sub[4096];
	struct dirent **names;
	int n;

	snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
	n = scandir(path, &names, NULL, alphasort);
	FIX_CHECK(n >= 0);
	for (int i = 0; i < n; i++) {
		struct stat st;
		const char *name = names[i]->d_name;

		if (strcmp(name, ".") && strcmp(name, "..")) {
			snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", name);
			snprintf(path, sizeof(path), "%s/%s", root, sub);
			FIX_CHECK(lstat(path, &st) == 0);
			if (S_ISDIR(st.st_mode)) {
				struct imgfix_entry d = {.type = IMGFIX_DIR};

				fix_ar_add(a, &d, sub);
				fix_ar_tree(a, root, sub);
			} else {
				FILE *fp = fopen(path, "rb");
				uint8_t *buf = malloc((size_t)st.st_size + 1);

				FIX_CHECK(fp && buf);
				FIX_CHECK(fread(buf, 1, (size_t)st.st_size, fp) ==
					  (size_t)st.st_size);
				fclose(fp);
				fix_ar_bytes(a, sub, buf, (size_t)st.st_size);
				free(buf);
			}
		}
		free(names[i]);
	}
	free(names);
}

void imgfix_tar_dir(const char *dir, const char *tar_path, enum imgfix_comp comp)
{
	struct imgfix_buf b;
	struct archive *a = fix_ar_open(comp, &b);

	fix_ar_tree(a, dir, "");
	fix_ar_close(a);
	imgfix_write_file(tar_path, b.data, b.len);
	imgfix_buf_free(&b);
}

/* One image of a docker save: its layers and config into a, its entry in
 * manifest.json into list. */
static void fix_docker_image(struct archive *a, const struct imgfix_image *img, bool classic,
			     json_t *list)
{
	char(*ids)[72] = calloc(img->nlayers + 1, sizeof(*ids));
	char name[256], hex[65], *config;
	json_t *layers = json_array();

	FIX_CHECK(ids);
	for (size_t i = 0; i < img->nlayers; i++) {
		struct imgfix_buf plain;
		size_t first = i;

		imgfix_tar(img->layers[i].entries, img->layers[i].n, IMGFIX_PLAIN, &plain);
		imgfix_sha256(plain.data, plain.len, hex);
		snprintf(ids[i], sizeof(ids[i]), "sha256:%s", hex);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(ids[j], ids[i]) && first == i)
				first = j;
		if (!classic) {
			snprintf(name, sizeof(name), "blobs/sha256/%s", hex);
			if (first == i)
				fix_ar_bytes(a, name, plain.data, plain.len);
		} else if (first == i) {
			snprintf(name, sizeof(name), "%s/layer.tar", hex);
			fix_ar_bytes(a, name, plain.data, plain.len);
		} else {
			/* docker links a repeated layer to its first copy */
			char target[128];

			snprintf(target, sizeof(target), "../%s/layer.tar", ids[first] + 7);
			snprintf(name, sizeof(name), "%.60s%04zu/layer.tar", hex, i);
			fix_ar_symlink(a, name, target);
		}
		json_array_append_new(layers, json_string(name));
		imgfix_buf_free(&plain);
	}
	config = fix_config(img, ids);
	imgfix_sha256(config, strlen(config), hex);
	snprintf(name, sizeof(name), classic ? "%s.json" : "blobs/sha256/%s", hex);
	fix_ar_bytes(a, name, config, strlen(config));
	json_array_append_new(list, json_pack("{s:s, s:[s], s:o}", "Config", name, "RepoTags",
					      "fixture:latest", "Layers", layers));
	free(config);
	free(ids);
}

void imgfix_docker_save(const char *tar_path, const struct imgfix_image *imgs, size_t n,
			bool classic, enum imgfix_comp comp)
{
	struct imgfix_buf b;
	struct archive *a = fix_ar_open(comp, &b);
	json_t *list = json_array();
	char *text;

	for (size_t i = 0; i < n; i++)
		fix_docker_image(a, &imgs[i], classic, list);
	text = json_dumps(list, JSON_COMPACT);
	FIX_CHECK(text);
	fix_ar_bytes(a, "manifest.json", text, strlen(text));
	free(text);
	json_decref(list);
	fix_ar_close(a);
	imgfix_write_file(tar_path, b.data, b.len);
	imgfix_buf_free(&b);
}
