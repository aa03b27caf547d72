/* Shared by the image loaders (src/image/load_*.c and config.c); not part of
 * the public API. Inputs are hostile: every count, length and size read from
 * them is capped here. */
#ifndef NECTL_IMAGE_LOAD_H
#define NECTL_IMAGE_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <archive.h>
#include <archive_entry.h>

#include "nectl/image.h"

#define LOAD_PATH_MAX	 4096	     /* longest path or link target accepted */
#define LOAD_JSON_MAX	 (16u << 20) /* largest JSON document accepted */
#define LOAD_LAYERS_MAX	 4096	     /* most layers in one image */
#define LOAD_DESCS_MAX	 4096	     /* most entries in one index or manifest.json */
#define LOAD_MEMBERS_MAX 65536	     /* most members of an image archive */
#define LOAD_NEST_MAX	 4	     /* index -> index nesting followed */
#define LOAD_DIGEST_LEN	 71	     /* "sha256:" and 64 hex digits */
#define LOAD_LABEL_MAX	 1200	     /* "<archive>: layer i/n (sha256:...)" */

/* ---- applying entries to the tree (load_layer.c) ---- */

/* A set of strings: each path the current layer has put, and "A/" for each
 * ancestor A of one ("/" for the root), so "did this layer put P" and "did it
 * put anything below P" are one lookup each. */
struct load_set {
	char **slots;
	size_t cap, count;
};

/* One loader call's state: where entries go and what they mean. */
struct load_ctx {
	struct image_tree *t;
	char *prefix; /* normalized; "" for the root */
	struct image_notes *notes;
	bool whiteouts;
	char label[LOAD_LABEL_MAX]; /* names the archive (and layer) in messages */
	struct load_set layer;
	char **links; /* paths of the tree's hard-link nodes */
	size_t nlinks, links_cap;
};

int load_ctx_init(struct load_ctx *c, struct image_tree *t, const char *prefix,
		  struct image_notes *notes, struct nectl_err *err);
void load_ctx_free(struct load_ctx *c);
/* Starts a layer: whiteouts from here on apply to what is already in the tree. */
void load_ctx_layer(struct load_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Turns an archive entry name into a tree path under the prefix (malloc'd
 * into *out). Returns 1 when the name is the root itself (nothing to put). */
int load_path(struct load_ctx *c, const char *name, char **out, struct nectl_err *err);
/* Replaces control characters (a hostile name's newline) with '?': every
 * message and note stays one line. */
void load_oneline(char *s);
/* The public loaders' exit: makes a failure's message one line; returns rc. */
int load_done(int rc, struct nectl_err *err);
/* A note naming something the load skipped, kept to one line. */
void load_note(struct load_ctx *c, const char *what, const char *why);
/* Rewrites err->msg as "<label>: entry `name`: <msg>"; returns -1. */
int load_fail(struct load_ctx *c, const char *name, struct nectl_err *err);
/* image_tree_put that keeps hard links whole: a regular file about to be
 * replaced or removed hands its data to a link first. */
int load_put(struct load_ctx *c, const struct image_node *n, struct nectl_err *err);
/* A hard link at path to target (both tree paths). */
int load_put_link(struct load_ctx *c, const char *path, const char *target, int64_t mtime,
		  struct nectl_err *err);
/* OCI whiteouts, applied to lower layers only. */
int load_whiteout(struct load_ctx *c, const char *path, struct nectl_err *err);
int load_opaque(struct load_ctx *c, const char *dir, struct nectl_err *err);

/* ---- host files (load_dir.c) ---- */

/* Opens name (relative to dirfd, or AT_FDCWD) for reading without following a
 * symlink in its last component, and checks that it is a regular file and,
 * when ino is not 0, the very file a scan saw: one swapped since (for a
 * symlink, another file, or anything through a directory above it swapped for
 * a symlink) is an error naming shown. Returns the descriptor. */
int load_file_open(int dirfd, const char *name, const char *shown, uint64_t dev, uint64_t ino,
		   struct nectl_err *err);

/* ---- tar streams (load_tar.c) ---- */

/* A libarchive reader for tar, any compression. */
struct archive *load_tar_reader(void);
/* Applies every entry of an opened archive to c->t. */
int load_tar_apply(struct load_ctx *c, struct archive *a, struct nectl_err *err);

/* ---- image stores: a layout directory or an image archive (load_blob.c) ---- */

struct load_member {
	char *name;    /* normalized */
	char *link;    /* symlink or hard-link target, NULL for a file */
	bool hardlink; /* link names another member, not a relative path */
	uint64_t off, size;
	bool stashed; /* off is in the stash file, not in the archive */
	size_t seq;   /* archive order, so the last of duplicate names wins */
};

struct load_store {
	const char *path; /* as the user gave it, for messages */
	int dirfd;	  /* a layout directory, or -1 */
	int fd;		  /* an image archive, or -1 */
	int stash_fd;	  /* members of a compressed archive, or -1 */
	uint64_t stash_len;
	struct image_limits lim; /* the stash's bytes and the archive's entries */
	uint64_t headers;	 /* archive entries read */
	struct load_member *m;	 /* sorted by name, then seq */
	size_t count, cap;
};

/* lim: the tree's limits, which also bound the stash and the entries read. */
int load_store_open(struct load_store *s, const char *path, const struct image_limits *lim,
		    struct nectl_err *err);
void load_store_close(struct load_store *s);
bool load_store_has(struct load_store *s, const char *name);
/* A whole member of at most max bytes, NUL-terminated. digest ("sha256:...")
 * is verified when non-NULL, want_size when >= 0. */
int load_store_read(struct load_store *s, const char *name, const char *digest, int64_t want_size,
		    size_t max, char **buf, size_t *len, struct nectl_err *err);

/* A member read as a tar stream while its sha256 is computed. */
struct load_blob;
int load_blob_open(struct load_store *s, const char *name, const char *digest, int64_t want_size,
		   struct load_blob **out, struct archive **a, struct nectl_err *err);
/* Hashes what the tar reader left unread and compares with the digest. */
int load_blob_verify(struct load_blob *b, struct nectl_err *err);
void load_blob_free(struct load_blob *b);

/* "sha256:<64 lowercase hex>" only; other algorithms are refused. */
bool load_digest_valid(const char *digest);
/* "blobs/sha256/<hex>" for a valid digest; out holds 80 bytes. */
void load_digest_path(const char *digest, char *out);

/* ---- JSON documents (config.c) ---- */

struct load_desc {
	char *media_type; /* NULL when absent */
	char digest[LOAD_DIGEST_LEN + 1];
	int64_t size;
	bool has_platform;
	char *arch, *os, *variant;
};

enum load_doc_kind { LOAD_DOC_INDEX = 1, LOAD_DOC_MANIFEST };

/* An OCI image index or image manifest (or Docker's equivalents). */
struct load_doc {
	enum load_doc_kind kind;
	struct load_desc *descs; /* index: manifests; manifest: layers */
	size_t count;
	struct load_desc config; /* manifest only */
};

/* One image of a `docker save` manifest.json. */
struct load_docker_image {
	char *config;
	char **layers;
	size_t nlayers;
};

/* The image config fields nectl uses, plus the layer digests it lists. */
struct load_config {
	struct image_config cfg;
	char **diff_ids;
	size_t ndiff_ids;
};

int load_json_doc(const char *buf, size_t len, const char *what, struct load_doc *doc,
		  struct nectl_err *err);
void load_doc_free(struct load_doc *doc);
int load_json_docker(const char *buf, size_t len, const char *what, struct load_docker_image **out,
		     size_t *count, struct nectl_err *err);
void load_docker_free(struct load_docker_image *imgs, size_t count);
/* Parses a config blob; takes ownership of buf (kept as cfg.config_json). */
int load_json_config(char *buf, size_t len, const char *what, struct load_config *lc,
		     struct nectl_err *err);
void load_config_free(struct load_config *lc);
int load_json_layout(const char *buf, size_t len, const char *what, struct nectl_err *err);
bool load_media_is_index(const char *media_type);
bool load_media_is_manifest(const char *media_type);
bool load_media_is_layer(const char *media_type);

#endif
