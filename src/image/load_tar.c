/* Tar archives (plain, gzip, zstd, xz, bzip2) into the tree. Nothing is
 * extracted to disk: file bytes go to the tree's spool. What is kept of an
 * entry: type, permission bits with setuid/setgid/sticky, mtime in seconds,
 * size, symlink target, device numbers. Owners are dropped on purpose: the
 * enclave ramdisk is written root-owned (uid/gid 0), like nitro-cli's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/load.h"

struct archive *load_tar_reader(void)
{
	struct archive *a = archive_read_new();

	if (!a)
		return NULL;
	/* Named filters only: filter_all includes ones that run external programs
	 * (lrzip, lzop, grzip) on what could be hostile input. */
	if (archive_read_support_filter_gzip(a) < ARCHIVE_WARN ||
	    archive_read_support_filter_bzip2(a) < ARCHIVE_WARN ||
	    archive_read_support_filter_xz(a) < ARCHIVE_WARN ||
	    archive_read_support_filter_zstd(a) < ARCHIVE_WARN ||
	    archive_read_support_filter_lz4(a) < ARCHIVE_WARN ||
	    archive_read_support_format_tar(a) < ARCHIVE_WARN) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static int tar_archive_fail(struct load_ctx *c, struct archive *a, struct nectl_err *err)
{
	const char *why = archive_error_string(a);

	return nectl_err_set(err, NECTL_ERR_BUILD, "%s: %s", c->label,
			     why ? why : "unreadable archive");
}

/* Copies an entry's data to the spool; sparse holes stay holes there, so the
 * file is one contiguous run that costs the disk only its data. */
static int tar_spool_data(struct load_ctx *c, struct archive *a, struct image_node *n,
			  struct nectl_err *err)
{
	const void *buf;
	size_t len;
	la_int64_t at;
	uint64_t pos = 0, off;
	int r;

	if (image_tree_spool_write(c->t, "", 0, &n->spool_off, err) < 0)
		return -1;
	while ((r = archive_read_data_block(a, &buf, &len, &at)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			return tar_archive_fail(c, a, err);
		if (at < 0 || (uint64_t)at < pos || (uint64_t)at > n->size ||
		    len > n->size - (uint64_t)at)
			return nectl_err_set(err, NECTL_ERR_BUILD, "data does not match its size");
		if (image_tree_spool_hole(c->t, (uint64_t)at - pos, err) < 0 ||
		    image_tree_spool_write(c->t, buf, len, &off, err) < 0)
			return -1;
		pos = (uint64_t)at + len;
	}
	return image_tree_spool_hole(c->t, n->size - pos, err);
}

static int tar_put_reg(struct load_ctx *c, struct archive *a, struct archive_entry *e,
		       struct image_node *n, struct nectl_err *err)
{
	la_int64_t size = archive_entry_size(e);

	if (size < 0)
		return nectl_err_set(err, NECTL_ERR_BUILD, "negative size");
	/* The size it claims, holes included, before a byte is written: the
	 * ramdisk will hold all of it. */
	if (image_tree_charge(c->t, 0, (uint64_t)size, err) < 0)
		return -1;
	n->size = (uint64_t)size;
	n->data = size ? IMAGE_DATA_SPOOL : IMAGE_DATA_NONE;
	if (size && tar_spool_data(c, a, n, err) < 0)
		return -1;
	return load_put(c, n, err);
}

static int tar_put_link(struct load_ctx *c, struct archive_entry *e, const char *path,
			const char *linkname, struct nectl_err *err)
{
	char *target;
	int rc = load_path(c, linkname, &target, err);

	if (rc == 1)
		return nectl_err_set(err, NECTL_ERR_BUILD, "hard link to the root directory");
	if (rc < 0)
		return -1;
	rc = load_put_link(c, path, target, archive_entry_mtime(e), err);
	free(target);
	return rc;
}

/* Returns 1 if the entry was a whiteout (handled), 0 if it is an ordinary
 * entry. path is the entry's tree path; it is edited in place. */
static int tar_whiteout(struct load_ctx *c, char *path, struct nectl_err *err)
{
	char *slash = strrchr(path, '/');
	char *base = slash ? slash + 1 : path;
	int rc = 0;

	if (strncmp(base, ".wh.", 4) != 0)
		return 0;
	if (strcmp(base, ".wh..wh..opq") == 0) {
		*base = '\0';
		if (slash)
			*slash = '\0';
		rc = load_opaque(c, path, err);
	} else if (strncmp(base, ".wh..wh.", 8) != 0 && strcmp(base, ".wh..") != 0 &&
		   strcmp(base, ".wh...") != 0 && base[4]) {
		/* Names starting ".wh..wh." are AUFS bookkeeping, never content. */
		memmove(base, base + 4, strlen(base + 4) + 1);
		rc = load_whiteout(c, path, err);
	}
	return rc < 0 ? -1 : 1;
}

static int tar_put_node(struct load_ctx *c, struct archive *a, struct archive_entry *e,
			const char *name, struct image_node *n, struct nectl_err *err)
{
	const char *target;

	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		n->type = IMAGE_REG;
		return tar_put_reg(c, a, e, n, err);
	case AE_IFDIR:
		n->type = IMAGE_DIR;
		break;
	case AE_IFLNK:
		target = archive_entry_symlink(e);
		if (!target)
			target = archive_entry_symlink_utf8(e);
		if (!target || !*target || strlen(target) > LOAD_PATH_MAX)
			return nectl_err_set(err, NECTL_ERR_BUILD, "symlink with a bad target");
		n->type = IMAGE_SYMLINK;
		n->target = (char *)target;
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		n->type = archive_entry_filetype(e) == AE_IFCHR ? IMAGE_CHR : IMAGE_BLK;
		n->rdev_major = (uint32_t)archive_entry_rdevmajor(e);
		n->rdev_minor = (uint32_t)archive_entry_rdevminor(e);
		break;
	case AE_IFIFO:
		n->type = IMAGE_FIFO;
		break;
	default:
		load_note(c, name,
			  archive_entry_filetype(e) == AE_IFSOCK ? "a socket"
								 : "an unsupported entry type");
		return 0;
	}
	return load_put(c, n, err);
}

static int tar_entry(struct load_ctx *c, struct archive *a, struct archive_entry *e,
		     const char *name, struct nectl_err *err)
{
	const char *linkname = archive_entry_hardlink(e);
	struct image_node n = {0};
	char *path;
	int rc = load_path(c, name, &path, err);

	if (rc != 0)
		return rc < 0 ? -1 : 0; /* "./" or "/": the root is not an entry */
	if (c->whiteouts && (rc = tar_whiteout(c, path, err)) != 0) {
		free(path);
		return rc < 0 ? -1 : 0;
	}
	if (!linkname)
		linkname = archive_entry_hardlink_utf8(e);
	if (linkname) {
		rc = tar_put_link(c, e, path, linkname, err);
	} else {
		n.path = path;
		n.mode = (uint32_t)archive_entry_perm(e) & 07777;
		n.mtime = archive_entry_mtime(e);
		rc = tar_put_node(c, a, e, name, &n, err);
	}
	free(path);
	return rc;
}

int load_tar_apply(struct load_ctx *c, struct archive *a, struct nectl_err *err)
{
	struct archive_entry *e;
	int r;

	while ((r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		const char *name;

		if (r < ARCHIVE_WARN)
			return tar_archive_fail(c, a, err);
		name = archive_entry_pathname(e);
		if (!name)
			name = archive_entry_pathname_utf8(e);
		if (!name)
			return nectl_err_set(err, NECTL_ERR_BUILD,
					     "%s: an entry has no usable name", c->label);
		if (image_tree_charge(c->t, 1, 0, err) < 0 || tar_entry(c, a, e, name, err) < 0)
			return load_fail(c, name, err);
	}
	return 0;
}

int image_load_tar(struct image_tree *t, const char *path, const char *prefix, bool whiteouts,
		   struct image_notes *notes, struct nectl_err *err)
{
	struct load_ctx c;
	struct archive *a;
	struct stat st;
	int rc;

	if (stat(path, &st) < 0)
		return load_done(nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", path), err);
	if (S_ISDIR(st.st_mode))
		return load_done(nectl_err_set(err, NECTL_ERR_FILE,
					       "%s: is a directory, not a tar archive", path),
				 err);
	if (load_ctx_init(&c, t, prefix, notes, err) < 0)
		return load_done(-1, err);
	c.whiteouts = whiteouts;
	load_ctx_layer(&c, "%s", path);
	a = load_tar_reader();
	if (!a)
		rc = nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	else if (S_ISREG(st.st_mode) && st.st_size == 0)
		rc = 0; /* an empty file is an empty archive, as tar(1) has it */
	else if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK)
		rc = tar_archive_fail(&c, a, err);
	else
		rc = load_tar_apply(&c, a, err);
	if (a)
		archive_read_free(a);
	load_ctx_free(&c);
	return load_done(rc, err);
}
