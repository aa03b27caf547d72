/* imgfix.h: container-image fixtures made to order for the image loader
 * tests: tar layers (plain or compressed), OCI image layouts, OCI archives,
 * `docker save` archives and multi-architecture indexes, all written with
 * libarchive, jansson and OpenSSL into a directory the test owns. Any failure
 * aborts: a broken fixture is a broken test. */
#ifndef NECTL_TESTS_IMGFIX_H
#define NECTL_TESTS_IMGFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMGFIX_MTIME 1700000000 /* entries' mtime unless they say otherwise */

enum imgfix_type {
	IMGFIX_REG = 1,
	IMGFIX_DIR,
	IMGFIX_SYMLINK,	 /* data: target */
	IMGFIX_HARDLINK, /* data: the linked path, as the archive names it */
	IMGFIX_FIFO,
	IMGFIX_CHR,	 /* major, minor */
	IMGFIX_WHITEOUT, /* path: what to hide; writes "<dir>/.wh.<name>" */
	IMGFIX_OPAQUE,	 /* path: the directory; writes "<dir>/.wh..wh..opq" */
};

struct imgfix_entry {
	enum imgfix_type type;
	const char *path; /* written verbatim (after the whiteout rewriting) */
	const char *data; /* file content, or link target */
	unsigned mode;	  /* 0: 0644 for files, 0755 for directories, 0777 for symlinks */
	int64_t mtime;	  /* 0: IMGFIX_MTIME */
	unsigned major, minor;
	uint64_t hole; /* IMGFIX_REG: a sparse file, hole zero bytes then data */
};

enum imgfix_comp { IMGFIX_PLAIN, IMGFIX_GZIP, IMGFIX_ZSTD, IMGFIX_XZ, IMGFIX_BZIP2 };

struct imgfix_buf {
	uint8_t *data;
	size_t len;
};

struct imgfix_layer {
	const struct imgfix_entry *entries;
	size_t n;
	enum imgfix_comp comp;
};

struct imgfix_image {
	const char *arch;	       /* config "architecture"; NULL leaves it out */
	const char *os;		       /* config "os"; NULL leaves it out */
	const char *variant;	       /* index platform variant, or NULL */
	const char *const *cmd;	       /* NULL-terminated; NULL leaves it out */
	const char *const *entrypoint; /* idem */
	const char *const *env;	       /* idem */
	const char *working_dir;
	const struct imgfix_layer *layers;
	size_t nlayers;
};

/* How index.json refers to the images of a layout. */
enum imgfix_index {
	IMGFIX_INDEX_PLAIN,	/* manifests without platform (skopeo, docker save) */
	IMGFIX_INDEX_PLATFORMS, /* manifests with their platform */
	IMGFIX_INDEX_NESTED,	/* index.json -> an index blob with platforms */
};

struct imgfix_desc {
	char digest[72]; /* "sha256:..." */
	size_t size;
};

/* Scratch space: dir/fmt... in one of 8 rotating buffers (a few paths stay
 * valid at once); and removing a test's directory with everything in it,
 * directories opened up first (tests lock some), symlinks never followed. */
char *imgfix_path(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int imgfix_rmtree(const char *dir);

void imgfix_sha256(const void *data, size_t len, char hex[65]);
void imgfix_write_file(const char *path, const void *data, size_t len);
void imgfix_buf_free(struct imgfix_buf *b);

/* A tar archive of the entries, in memory or in a file. */
void imgfix_tar(const struct imgfix_entry *e, size_t n, enum imgfix_comp comp,
		struct imgfix_buf *out);
void imgfix_tar_file(const char *path, const struct imgfix_entry *e, size_t n,
		     enum imgfix_comp comp);

/* Hostile tars, written header by header: a GNU old-style sparse file "bomb"
 * claiming realsize bytes (>= 1024) of which only the last KiB is stored,
 * about 2.5 KiB in all; and count empty files "fNNNNNNN" streamed into fd
 * (a pipe: stops quietly when the reader goes away). */
void imgfix_sparse_bomb(const char *path, uint64_t realsize, enum imgfix_comp comp);
void imgfix_tar_headers(int fd, unsigned count);

/* Stores data as blobs/sha256/<hex> under dir. */
void imgfix_blob(const char *dir, const void *data, size_t len, struct imgfix_desc *d);
/* Layers, config and manifest of img as blobs; the manifest's descriptor
 * (and the config's, when config is non-NULL). */
void imgfix_oci_image(const char *dir, const struct imgfix_image *img, struct imgfix_desc *manifest,
		      struct imgfix_desc *config);
/* A complete OCI image layout in dir (created). */
void imgfix_oci_layout(const char *dir, const struct imgfix_image *imgs, size_t n,
		       enum imgfix_index how);
/* A tar of a directory's contents (an OCI archive when dir is a layout). */
void imgfix_tar_dir(const char *dir, const char *tar_path, enum imgfix_comp comp);
/* A `docker save` archive of the images. classic: "<id>/layer.tar" layers,
 * "<hex>.json" configs, a repeated layer as a symlink to the first copy;
 * otherwise the docker 25 naming, "blobs/sha256/<hex>" (without index.json). */
void imgfix_docker_save(const char *tar_path, const struct imgfix_image *imgs, size_t n,
			bool classic, enum imgfix_comp comp);

#endif
