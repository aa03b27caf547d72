/* Enclave filesystem images: a root filesystem from a directory, a tar, an OCI
 * layout or archive, or a `docker save` archive, merged into a tree, then
 * written as deterministic newc cpio ramdisks (reference/aws-nitro-ecosystem.md
 * §3.5). No network, no Docker daemon. */
#ifndef NECTL_IMAGE_H
#define NECTL_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/eif.h"
#include "nectl/err.h"

enum image_type {
	IMAGE_REG = 1,
	IMAGE_DIR,
	IMAGE_SYMLINK,
	IMAGE_HARDLINK, /* target: the path (in the same tree) of the linked file */
	IMAGE_CHR,
	IMAGE_BLK,
	IMAGE_FIFO,
};

/* Where a regular file's bytes are. */
enum image_data {
	IMAGE_DATA_NONE,  /* empty file */
	IMAGE_DATA_FILE,  /* data_path on the host */
	IMAGE_DATA_SPOOL, /* spool_off in the tree's spool file */
	IMAGE_DATA_MEM,   /* mem (owned by the tree) */
};

struct image_node {
	char *path; /* normalized: relative, no "." or ".." parts, no leading or trailing "/" */
	enum image_type type;
	uint32_t mode; /* permission bits, including setuid/setgid/sticky (07777) */
	int64_t mtime;
	uint64_t size; /* regular files */
	char *target;  /* symlink target (verbatim) or hard-link target path (normalized) */
	uint32_t rdev_major, rdev_minor;
	enum image_data data;
	char *data_path;
	/* IMAGE_DATA_FILE: the file the scan saw (ino 0: not recorded). It is
	 * opened again to be read, and must still be that file. */
	uint64_t data_dev, data_ino;
	uint64_t spool_off;
	uint8_t *mem;
};

/* Non-fatal things a build did that a user should hear about (dropped
 * sockets, files skipped...). The CLI prints them. */
struct image_notes {
	char **lines;
	size_t count, cap;
};
void image_notes_add(struct image_notes *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void image_notes_free(struct image_notes *n);

/* ---- the tree (src/image/tree.c) ---- */

/* What one tree takes in from its inputs, which are hostile: a 2.5 KiB tar
 * can claim a 1 TiB sparse file, a small compressed one a million entries.
 * A zero field means its default. */
struct image_limits {
	uint64_t max_bytes;   /* file data: the sum of the regular files' sizes, holes
			       * included (the ramdisk holds them as zeros) */
	uint64_t max_entries; /* entries read from the inputs, and nodes in the tree */
};
#define IMAGE_MAX_BYTES_DEFAULT	  (4ull << 30) /* 4 GiB */
#define IMAGE_MAX_ENTRIES_DEFAULT 250000

struct image_tree;

/* A new tree has the default limits. */
int image_tree_new(struct image_tree **out, struct nectl_err *err);
void image_tree_set_limits(struct image_tree *t, const struct image_limits *l);
const struct image_limits *image_tree_limits(const struct image_tree *t);
/* Counts entries and bytes of file data a loader is about to take in against
 * the limits: NECTL_ERR_BUILD naming the limit (and nothing counted) when
 * either would be exceeded. The loaders call it before they write anything. */
int image_tree_charge(struct image_tree *t, uint64_t entries, uint64_t bytes,
		      struct nectl_err *err);
/* "4 GiB", "1 KiB", "1000 bytes": a limit as messages show it. */
void image_size_text(uint64_t bytes, char out[32]);
void image_tree_free(struct image_tree *t);
/* Normalizes a path ("./a//b/" -> "a/b"). Fails (NECTL_ERR_BUILD) on ".."
 * components that would climb out of the root, and on empty or NUL-containing
 * paths. out must hold strlen(path) + 1 bytes. "" (the root) is allowed only if
 * allow_root. */
int image_path_normalize(const char *path, char *out, bool allow_root, struct nectl_err *err);
/* Adds or replaces the node at n->path (already normalized). The tree copies
 * the strings (and takes ownership of n->mem on success). Missing parent
 * directories are created as 0755 directories with n's mtime; a parent that
 * exists but is not a directory is an error (an archive cannot put a file
 * inside a symlink or a file). Replacing a directory with a non-directory
 * removes what was under it, as tar extraction does. */
int image_tree_put(struct image_tree *t, const struct image_node *n, struct nectl_err *err);
struct image_node *image_tree_get(const struct image_tree *t, const char *path);
/* Removes path and everything under it; a no-op when absent. */
void image_tree_remove(struct image_tree *t, const char *path);
/* Removes everything under path, keeping path itself. */
void image_tree_clear_dir(struct image_tree *t, const char *path);
/* Calls fn for each child of path ("" for the top level), in no particular
 * order, until fn returns non-zero, which is then returned. fn may walk the
 * children's children the same way, but must not change the tree. */
int image_tree_each_child(struct image_tree *t, const char *path,
			  int (*fn)(void *ctx, struct image_node *child), void *ctx);
size_t image_tree_count(const struct image_tree *t);
/* All nodes sorted by path (bytewise, so "a" < "a/b" < "a0"); the array is
 * owned by the tree and valid until it changes. */
struct image_node *const *image_tree_sorted(struct image_tree *t, size_t *count);
/* The spool: an unlinked temporary file holding bytes of files read from
 * archives. spool_write appends len bytes; spool_hole appends len zero bytes
 * as a hole (a sparse file stays sparse on disk). */
int image_tree_spool_write(struct image_tree *t, const void *buf, size_t len, uint64_t *off,
			   struct nectl_err *err);
int image_tree_spool_hole(struct image_tree *t, uint64_t len, struct nectl_err *err);
/* Bytes the spool spans (holes included). */
uint64_t image_tree_spool_size(const struct image_tree *t);
int image_tree_spool_read(const struct image_tree *t, uint64_t off, void *buf, size_t len,
			  struct nectl_err *err);

/* ---- loading (src/image/load_*.c) ---- */

struct image_config {
	char **cmd; /* NULL-terminated; NULL when unset */
	char **entrypoint;
	char **env;
	char *working_dir;
	char *architecture; /* OCI/Docker spelling: "amd64", "arm64" */
	char *os;
	char *image_id;	   /* "sha256:..." of the config blob */
	char *config_json; /* the image config as found, for the metadata's DockerInfo */
};
void image_config_free(struct image_config *c);

/* Each loader merges into t under prefix ("" or e.g. "rootfs"). */
int image_load_dir(struct image_tree *t, const char *dir, const char *prefix,
		   struct image_notes *notes, struct nectl_err *err);
/* A tar archive, plain or compressed (gzip, zstd, xz, bzip2: libarchive
 * detects). Applies OCI whiteouts when whiteouts is true. */
int image_load_tar(struct image_tree *t, const char *path, const char *prefix, bool whiteouts,
		   struct image_notes *notes, struct nectl_err *err);
/* An OCI image layout directory, an OCI archive (tar of a layout) or a
 * `docker save` archive: picks the manifest for arch ("amd64"/"arm64"; a clear
 * error listing what exists when absent), applies its layers in order with
 * whiteouts, and fills cfg. */
int image_load_image(struct image_tree *t, const char *path, const char *arch,
		     const char *prefix, struct image_config *cfg, struct image_notes *notes,
		     struct nectl_err *err);

/* ---- writing (src/image/cpio.c) ---- */

struct image_cpio_opts {
	int64_t mtime_max; /* every mtime is clamped to this */
	uint64_t *entries_done; /* if set, incremented after each entry (progress) */
};

/* Exact size of the archive image_cpio_write will produce. */
uint64_t image_cpio_size(struct image_tree *t);
/* Writes a deterministic newc archive of the whole tree: entries in sorted
 * order, uid/gid 0, no user/group names, inode numbers 1, 2, ... in that order,
 * device 0, mtimes clamped, hard links sharing an inode with the data on the
 * last one (in sorted order), then the trailer. Output goes through emit. */
int image_cpio_write(struct image_tree *t, const struct image_cpio_opts *opts,
		     int (*emit)(void *ctx, const void *buf, size_t len, struct nectl_err *err),
		     void *ctx, struct nectl_err *err);

/* ---- kernel modules (src/image/modules.c) ---- */

struct image_module {
	char name[64]; /* canonical: '-' replaced by '_' */
	uint8_t *data; /* uncompressed .ko */
	size_t len;
};

/* Finds each wanted module under modules_dir (a lib/modules/<version>
 * directory; .ko, .ko.xz, .ko.zst, .ko.gz), skips those listed in
 * modules.builtin, reads dependencies from each module's .modinfo "depends="
 * field, and returns all needed modules decompressed, dependencies first.
 * A wanted module that is neither built in nor found is an error. */
int image_modules_resolve(const char *modules_dir, const char *const *wanted, size_t nwanted,
			  struct image_module **out, size_t *count, struct nectl_err *err);
void image_modules_free(struct image_module *mods, size_t count);

#endif
