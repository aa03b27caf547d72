/* Deterministic newc cpio archives of an image tree, the format the Linux
 * initramfs unpacker reads. libarchive formats the headers; everything that
 * could vary between hosts or runs (inode numbers, owners, times, order) is
 * decided here from the tree alone. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "image/load.h"

#define CPIO_HEADER_LEN 110
#define CPIO_TRAILER "TRAILER!!!"
#define CPIO_DATA_CHUNK (1u << 20)
/* Small header, name and padding writes are gathered to this size before
 * they reach emit, so a tree of many small files is not thousands of tiny
 * emit calls. */
#define CPIO_OUT_CHUNK (64u << 10)
/* newc stores sizes and times in 8 hex digits. */
#define CPIO_FIELD_MAX 0xffffffffull
/* The kernel's unpacker rejects names longer than PATH_MAX (with the NUL). */
#define CPIO_NAME_MAX 4096

/* Per sorted node: for a regular file or hard link, the index of the group's
 * regular file; for that file, the group's last member, size and inode. */
struct cpio_slot {
	size_t root;
	size_t last;
	uint32_t nlink;
	uint32_t ino;
};

struct cpio_writer {
	struct image_tree *tree;
	struct image_node *const *nodes;
	size_t count;
	struct cpio_slot *slots;
	int64_t mtime_max;
	int (*emit)(void *ctx, const void *buf, size_t len, struct nectl_err *err);
	void *ctx;
	struct nectl_err *err;
	bool failed; /* emit failed or the write was abandoned: nothing more reaches emit */
	struct archive *ar;
	struct archive_entry *entry;
	uint8_t *data; /* CPIO_DATA_CHUNK bytes */
	uint8_t out[CPIO_OUT_CHUNK];
	size_t out_len;
};

static uint64_t cpio_pad4(uint64_t n)
{
	return (n + 3) & ~(uint64_t)3;
}

static uint64_t cpio_entry_size(size_t name_len, uint64_t data_len)
{
	return cpio_pad4(CPIO_HEADER_LEN + name_len + 1) + cpio_pad4(data_len);
}

static bool cpio_is_file(const struct image_node *n)
{
	return n->type == IMAGE_REG || n->type == IMAGE_HARDLINK;
}

static int cpio_cmp_path(const void *key, const void *elem)
{
	return strcmp(key, (*(struct image_node *const *)elem)->path);
}

static int cpio_find(const struct cpio_writer *w, const char *path, size_t *idx)
{
	struct image_node *const *hit =
		bsearch(path, w->nodes, w->count, sizeof(*w->nodes), cpio_cmp_path);

	if (!hit)
		return -1;
	*idx = (size_t)(hit - w->nodes);
	return 0;
}

/* Groups every hard link with its regular file. Members are visited in
 * sorted order, so the last one seen is the one that carries the data. */
static int cpio_link_groups(struct cpio_writer *w)
{
	for (size_t i = 0; i < w->count; i++) {
		const struct image_node *n = w->nodes[i];
		size_t root = i;

		if (!cpio_is_file(n))
			continue;
		if (n->type == IMAGE_HARDLINK) {
			const char *target = n->target ? n->target : "";

			if (cpio_find(w, target, &root) < 0)
				return nectl_err_set(
				    w->err, NECTL_ERR_BUILD,
				    "hard link `%s` points to `%s`, which is not in the image",
				    n->path, target);
			if (w->nodes[root]->type != IMAGE_REG)
				return nectl_err_set(
				    w->err, NECTL_ERR_BUILD,
				    "hard link `%s` points to `%s`, which is not a regular file",
				    n->path, target);
		}
		w->slots[i].root = root;
		w->slots[root].last = i;
		w->slots[root].nlink++;
	}
	return 0;
}

/* Inode numbers count up in sorted order; a hard-link group takes its
 * number where its first member appears. */
static void cpio_number_inodes(struct cpio_writer *w)
{
	uint32_t next = 0;

	for (size_t i = 0; i < w->count; i++) {
		struct cpio_slot *s = &w->slots[i];

		if (cpio_is_file(w->nodes[i])) {
			struct cpio_slot *r = &w->slots[s->root];

			if (r->ino == 0)
				r->ino = ++next;
			s->ino = r->ino;
		} else {
			s->ino = ++next;
		}
	}
}

static uint64_t cpio_data_len(const struct cpio_writer *w, size_t i)
{
	const struct image_node *n = w->nodes[i];

	if (n->type == IMAGE_SYMLINK)
		return n->target ? strlen(n->target) : 0;
	if (!cpio_is_file(n) || w->slots[w->slots[i].root].last != i)
		return 0;
	return w->nodes[w->slots[i].root]->size;
}

static int cpio_check_limits(const struct cpio_writer *w)
{
	for (size_t i = 0; i < w->count; i++) {
		const struct image_node *n = w->nodes[i];

		if (strlen(n->path) + 1 > CPIO_NAME_MAX)
			return nectl_err_set(
			    w->err, NECTL_ERR_BUILD,
			    "path `%.64s...` is longer than the %d bytes Linux unpacks", n->path,
			    CPIO_NAME_MAX - 1);
		if (cpio_data_len(w, i) > CPIO_FIELD_MAX)
			return nectl_err_set(w->err, NECTL_ERR_BUILD,
					     "`%s` is larger than 4 GiB, the cpio format's limit",
					     n->path);
	}
	return 0;
}

static int cpio_plan(struct cpio_writer *w, struct image_tree *t)
{
	w->tree = t;
	w->nodes = image_tree_sorted(t, &w->count);
	if (!w->nodes)
		return nectl_err_set(w->err, NECTL_ERR_BUILD, "out of memory");
	w->slots = calloc(w->count ? w->count : 1, sizeof(*w->slots));
	if (!w->slots)
		return nectl_err_set(w->err, NECTL_ERR_BUILD, "out of memory");
	if (cpio_link_groups(w) < 0)
		return -1;
	cpio_number_inodes(w);
	return cpio_check_limits(w);
}

uint64_t image_cpio_size(struct image_tree *t)
{
	struct cpio_writer w = {0};
	uint64_t total = cpio_entry_size(strlen(CPIO_TRAILER), 0);

	/* 0 (never the size of a real archive, which has at least a trailer)
	 * for a tree image_cpio_write would refuse; it reports why. */
	if (cpio_plan(&w, t) < 0) {
		free(w.slots);
		return 0;
	}
	for (size_t i = 0; i < w.count; i++)
		total += cpio_entry_size(strlen(w.nodes[i]->path), cpio_data_len(&w, i));
	free(w.slots);
	return total;
}

static int cpio_flush(struct cpio_writer *w)
{
	int rc = 0;

	if (w->out_len > 0 && !w->failed)
		rc = w->emit(w->ctx, w->out, w->out_len, w->err);
	w->out_len = 0;
	if (rc < 0)
		w->failed = true;
	return rc;
}

static la_ssize_t cpio_archive_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct cpio_writer *w = ctx;

	if (w->failed)
		return -1;
	if (w->out_len + len > sizeof(w->out) && cpio_flush(w) < 0)
		return -1;
	if (len >= sizeof(w->out)) {
		if (w->emit(w->ctx, buf, len, w->err) < 0) {
			w->failed = true;
			return -1;
		}
		return (la_ssize_t)len;
	}
	memcpy(w->out + w->out_len, buf, len);
	w->out_len += len;
	return (la_ssize_t)len;
}

/* libarchive's own message, unless a failed emit already recorded one. */
static int cpio_archive_fail(struct cpio_writer *w, const char *what, const char *path)
{
	if (w->failed)
		return -1;
	w->failed = true;
	return nectl_err_set(w->err, NECTL_ERR_BUILD, "cpio: %s `%s`: %s", what, path,
			     archive_error_string(w->ar) ? archive_error_string(w->ar) : "failed");
}

static int cpio_put(struct cpio_writer *w, const void *buf, size_t len, const char *path)
{
	const uint8_t *p = buf;

	while (len > 0) {
		la_ssize_t n = archive_write_data(w->ar, p, len);

		if (n <= 0)
			return cpio_archive_fail(w, "cannot write data of", path);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cpio_changed(struct cpio_writer *w, const struct image_node *n)
{
	return nectl_err_set(w->err, NECTL_ERR_FILE,
			     "%s: file changed while being archived (as `%s`)", n->data_path,
			     n->path);
}

static int cpio_copy_fd(struct cpio_writer *w, int fd, const struct image_node *n)
{
	uint64_t left = n->size;
	ssize_t got;

	while (left > 0) {
		size_t want = left < CPIO_DATA_CHUNK ? (size_t)left : CPIO_DATA_CHUNK;

		got = read(fd, w->data, want);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return nectl_err_sys(w->err, NECTL_ERR_FILE, errno, "%s: read failed",
					     n->data_path);
		if (got == 0)
			return cpio_changed(w, n);
		if (cpio_put(w, w->data, (size_t)got, n->path) < 0)
			return -1;
		left -= (uint64_t)got;
	}
	/* One byte more than expected means the file grew since it was listed. */
	do
		got = read(fd, w->data, 1);
	while (got < 0 && errno == EINTR);
	if (got != 0)
		return got < 0 ? nectl_err_sys(w->err, NECTL_ERR_FILE, errno, "%s: read failed",
					       n->data_path)
			       : cpio_changed(w, n);
	return 0;
}

/* The file the scan saw, or an error: never a symlink swapped in since, nor
 * another file reached through a directory swapped for one. */
static int cpio_copy_file(struct cpio_writer *w, const struct image_node *n)
{
	int fd =
	    load_file_open(AT_FDCWD, n->data_path, n->data_path, n->data_dev, n->data_ino, w->err);
	int rc;

	if (fd < 0)
		return -1;
	rc = cpio_copy_fd(w, fd, n);
	close(fd);
	return rc;
}

static int cpio_copy_spool(struct cpio_writer *w, const struct image_node *n)
{
	for (uint64_t done = 0; done < n->size;) {
		uint64_t left = n->size - done;
		size_t len = left < CPIO_DATA_CHUNK ? (size_t)left : CPIO_DATA_CHUNK;

		if (image_tree_spool_read(w->tree, n->spool_off + done, w->data, len, w->err) < 0)
			return -1;
		if (cpio_put(w, w->data, len, n->path) < 0)
			return -1;
		done += len;
	}
	return 0;
}

static int cpio_copy_data(struct cpio_writer *w, const struct image_node *n)
{
	if (n->size == 0)
		return 0;
	switch (n->data) {
	case IMAGE_DATA_FILE:
		return cpio_copy_file(w, n);
	case IMAGE_DATA_SPOOL:
		return cpio_copy_spool(w, n);
	case IMAGE_DATA_MEM:
		return cpio_put(w, n->mem, (size_t)n->size, n->path);
	case IMAGE_DATA_NONE:
		break;
	}
	return nectl_err_set(w->err, NECTL_ERR_BUILD, "`%s`: %llu bytes of data but no source",
			     n->path, (unsigned long long)n->size);
}

static int64_t cpio_mtime(const struct cpio_writer *w, int64_t mtime)
{
	if (mtime > w->mtime_max)
		mtime = w->mtime_max;
	if (mtime < 0)
		mtime = 0;
	/* libarchive silently writes ffffffff for larger values. */
	if ((uint64_t)mtime > CPIO_FIELD_MAX)
		mtime = (int64_t)CPIO_FIELD_MAX;
	return mtime;
}

static unsigned int cpio_type_bits(enum image_type type)
{
	switch (type) {
	case IMAGE_DIR:
		return AE_IFDIR;
	case IMAGE_SYMLINK:
		return AE_IFLNK;
	case IMAGE_CHR:
		return AE_IFCHR;
	case IMAGE_BLK:
		return AE_IFBLK;
	case IMAGE_FIFO:
		return AE_IFIFO;
	case IMAGE_REG:
	case IMAGE_HARDLINK:
		break;
	}
	return AE_IFREG;
}

/* Fills the entry for sorted node i. A hard link is written with the
 * metadata of the file it shares an inode with. */
static void cpio_fill_entry(struct cpio_writer *w, size_t i)
{
	const struct image_node *n = w->nodes[i];
	const struct cpio_slot *s = &w->slots[i];
	const struct image_node *meta = cpio_is_file(n) ? w->nodes[s->root] : n;
	struct archive_entry *e = w->entry;
	unsigned int nlink = 1;

	if (n->type == IMAGE_DIR)
		nlink = 2;
	else if (cpio_is_file(n))
		nlink = w->slots[s->root].nlink;
	archive_entry_clear(e);
	archive_entry_copy_pathname(e, n->path);
	archive_entry_set_mode(e, cpio_type_bits(n->type) | (meta->mode & 07777));
	archive_entry_set_ino(e, s->ino);
	archive_entry_set_nlink(e, nlink);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_dev(e, 0);
	archive_entry_set_mtime(e, cpio_mtime(w, meta->mtime), 0);
	/* The newc writer refuses entries without a size, symlinks included. */
	archive_entry_set_size(e, (la_int64_t)(n->type == IMAGE_SYMLINK ? 0 : cpio_data_len(w, i)));
	if (n->type == IMAGE_SYMLINK && n->target)
		archive_entry_copy_symlink(e, n->target);
	if (n->type == IMAGE_CHR || n->type == IMAGE_BLK) {
		archive_entry_set_rdevmajor(e, n->rdev_major);
		archive_entry_set_rdevminor(e, n->rdev_minor);
	}
}

static int cpio_write_entry(struct cpio_writer *w, size_t i)
{
	const struct image_node *n = w->nodes[i];

	cpio_fill_entry(w, i);
	if (archive_write_header(w->ar, w->entry) != ARCHIVE_OK)
		return cpio_archive_fail(w, "cannot write header of", n->path);
	if (cpio_is_file(n) && cpio_data_len(w, i) > 0)
		return cpio_copy_data(w, w->nodes[w->slots[i].root]);
	return 0;
}

static int cpio_open(struct cpio_writer *w)
{
	w->ar = archive_write_new();
	w->entry = archive_entry_new();
	w->data = malloc(CPIO_DATA_CHUNK);
	if (!w->ar || !w->entry || !w->data)
		return nectl_err_set(w->err, NECTL_ERR_BUILD, "out of memory");
	/* Block size 0: bytes go out as formatted, with no padding of the last
	 * block, so the archive is exactly what newc needs. */
	if (archive_write_set_format_cpio_newc(w->ar) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w->ar, 0) != ARCHIVE_OK ||
	    archive_write_open(w->ar, w, NULL, cpio_archive_write, NULL) != ARCHIVE_OK)
		return cpio_archive_fail(w, "cannot start", "archive");
	return 0;
}

static void cpio_close(struct cpio_writer *w)
{
	/* On failure, freeing makes libarchive write a trailer; failed keeps it
	 * from reaching emit. */
	if (w->ar)
		archive_write_free(w->ar);
	archive_entry_free(w->entry);
	free(w->data);
	free(w->slots);
}

int image_cpio_write(struct image_tree *t, const struct image_cpio_opts *opts,
		     int (*emit)(void *ctx, const void *buf, size_t len, struct nectl_err *err),
		     void *ctx, struct nectl_err *err)
{
	struct cpio_writer *w = calloc(1, sizeof(*w));
	int rc = -1;

	if (!w)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	w->emit = emit;
	w->ctx = ctx;
	w->err = err;
	w->mtime_max = opts ? opts->mtime_max : INT64_MAX;
	if (cpio_plan(w, t) < 0 || cpio_open(w) < 0)
		goto out;
	for (size_t i = 0; i < w->count; i++) {
		if (cpio_write_entry(w, i) < 0)
			goto out;
		if (opts && opts->entries_done)
			(*opts->entries_done)++;
	}
	if (archive_write_close(w->ar) != ARCHIVE_OK) {
		cpio_archive_fail(w, "cannot finish", "archive");
		goto out;
	}
	rc = cpio_flush(w);
out:
	if (rc < 0)
		w->failed = true;
	cpio_close(w);
	free(w);
	return rc;
}
