/* A host directory into the tree. Nodes point at the host files
 * (IMAGE_DATA_FILE): nothing is read now, but every file is opened once so an
 * unreadable one fails the build here rather than halfway through writing.
 * Symlinks are never followed, even when someone swaps a file for one while
 * the build runs: files are opened relative to their directory's descriptor
 * with O_NOFOLLOW, and the opened file must be the one the scan's lstat saw
 * (device and inode), now and again when the ramdisk is written (cpio.c).
 * Files sharing an inode become hard links.
 * Owners are dropped on purpose: the ramdisk is written root-owned. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "image/load.h"

#define DIR_DEPTH_MAX 512 /* one descriptor per level is open */

struct dir_inode {
	dev_t dev;
	ino_t ino;
	char *path; /* tree path of the first name seen */
};

struct dir_walk {
	struct load_ctx *c;
	struct dir_inode *inodes; /* files with more than one link */
	size_t ninodes, cap;
};

static int dir_names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dir_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* All names in a directory, sorted, so the walk (and which name of a hard
 * link carries the data) does not depend on the file system's order. */
static int dir_read_names(int fd, const char *host, char ***out, size_t *count,
			  struct nectl_err *err)
{
	int copy = dup(fd);
	DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (!d) {
		int e = errno;

		if (copy >= 0)
			close(copy);
		return nectl_err_sys(err, NECTL_ERR_FILE, e, "%s", host);
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **grown = realloc(names, (cap = cap ? 2 * cap : 32) * sizeof(*names));

			if (!grown)
				break;
			names = grown;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
		errno = 0;
	}
	if (de || errno) {
		int e = de ? ENOMEM : errno;

		closedir(d);
		dir_names_free(names, n);
		return nectl_err_sys(err, NECTL_ERR_FILE, e, "%s: cannot list", host);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), dir_names_cmp);
	*out = names;
	*count = n;
	return 0;
}

static size_t dir_inode_slot(const struct dir_walk *w, dev_t dev, ino_t ino)
{
	uint64_t h =
	    ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ino * 0xff51afd7ed558ccdull);
	size_t i = (size_t)(h ^ (h >> 29)) & (w->cap - 1);

	while (w->inodes[i].path && !(w->inodes[i].dev == dev && w->inodes[i].ino == ino))
		i = (i + 1) & (w->cap - 1);
	return i;
}

static int dir_inodes_grow(struct dir_walk *w)
{
	struct dir_walk n = {.cap = w->cap ? 2 * w->cap : 64};

	n.inodes = calloc(n.cap, sizeof(*n.inodes));
	if (!n.inodes)
		return -1;
	for (size_t i = 0; i < w->cap; i++)
		if (w->inodes[i].path)
			n.inodes[dir_inode_slot(&n, w->inodes[i].dev, w->inodes[i].ino)] =
			    w->inodes[i];
	free(w->inodes);
	w->inodes = n.inodes;
	w->cap = n.cap;
	return 0;
}

/* The tree path of an earlier name of this inode, or NULL (then remembers
 * this one; if memory runs out the file is merely stored twice). */
static const char *dir_inode_seen(struct dir_walk *w, const struct stat *st, const char *path)
{
	struct dir_inode *in;

	if (2 * (w->ninodes + 1) > w->cap && dir_inodes_grow(w) < 0)
		return NULL;
	in = &w->inodes[dir_inode_slot(w, st->st_dev, st->st_ino)];
	if (in->path)
		return in->path;
	in->path = strdup(path);
	if (in->path) {
		in->dev = st->st_dev;
		in->ino = st->st_ino;
		w->ninodes++;
	}
	return NULL;
}

int load_file_open(int dirfd, const char *name, const char *shown, uint64_t dev, uint64_t ino,
		   struct nectl_err *err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	const char *now = NULL;
	struct stat st;

	/* O_NONBLOCK: a file swapped for a FIFO must fail, not hang. */
	if (fd < 0 && errno != ELOOP)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", shown);
	if (fd < 0)
		now = "a symlink";
	else if (fstat(fd, &st) < 0)
		now = "unreadable";
	else if (!S_ISREG(st.st_mode))
		now = "not a regular file";
	else if (ino && ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino))
		now = "another file";
	if (!now)
		return fd;
	if (fd >= 0)
		close(fd);
	return nectl_err_set(err, NECTL_ERR_FILE,
			     "%s: changed since the input was read (it is now %s); not read", shown,
			     now);
}

/* Prefixes the error with the host path it is about; returns -1. */
static int dir_fail(const char *host, struct nectl_err *err)
{
	char inner[NECTL_ERR_MSG_MAX];

	if (!err)
		return -1;
	memcpy(inner, err->msg, sizeof(inner));
	return nectl_err_set(err, err->kind, "%s: %s", host, inner);
}

static int dir_put_reg(struct dir_walk *w, int dirfd, const char *name, const char *host,
		       struct image_node *n, const struct stat *st, struct nectl_err *err)
{
	int fd = load_file_open(dirfd, name, host, (uint64_t)st->st_dev, (uint64_t)st->st_ino, err);
	const char *first;

	if (fd < 0)
		return -1;
	close(fd);
	first = st->st_nlink > 1 ? dir_inode_seen(w, st, n->path) : NULL;
	if (first)
		return load_put_link(w->c, n->path, first, n->mtime, err);
	/* Its apparent size: a sparse file's holes are zeros in the ramdisk. */
	if (image_tree_charge(w->c->t, 0, (uint64_t)st->st_size, err) < 0)
		return dir_fail(host, err);
	n->type = IMAGE_REG;
	n->size = (uint64_t)st->st_size;
	n->data = st->st_size ? IMAGE_DATA_FILE : IMAGE_DATA_NONE;
	n->data_path = st->st_size ? (char *)host : NULL;
	n->data_dev = (uint64_t)st->st_dev;
	n->data_ino = (uint64_t)st->st_ino;
	return load_put(w->c, n, err);
}

static int dir_put_symlink(int dirfd, const char *name, const char *host, struct load_ctx *c,
			   struct image_node *n, struct nectl_err *err)
{
	char target[LOAD_PATH_MAX + 1];
	ssize_t len = readlinkat(dirfd, name, target, sizeof(target));

	if (len < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", host);
	if (len == 0 || (size_t)len > LOAD_PATH_MAX)
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: symlink target is empty or too long",
				     host);
	target[len] = '\0';
	n->type = IMAGE_SYMLINK;
	n->target = target;
	return load_put(c, n, err);
}

static int dir_walk(struct dir_walk *w, int fd, const char *host, const char *path, int depth,
		    struct nectl_err *err);

/* One directory entry: host and path are its host path and tree path. */
static int dir_entry(struct dir_walk *w, int dirfd, const char *name, const char *host, char *path,
		     int depth, struct nectl_err *err)
{
	struct image_node n = {.path = path};
	struct stat st;
	int fd, rc;

	if (image_tree_charge(w->c->t, 1, 0, err) < 0)
		return dir_fail(host, err);
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", host);
	n.mode = st.st_mode & 07777;
	n.mtime = st.st_mtim.tv_sec;
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		return dir_put_reg(w, dirfd, name, host, &n, &st, err);
	case S_IFLNK:
		return dir_put_symlink(dirfd, name, host, w->c, &n, err);
	case S_IFDIR:
		n.type = IMAGE_DIR;
		if (load_put(w->c, &n, err) < 0)
			return -1;
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", host);
		rc = dir_walk(w, fd, host, path, depth + 1, err);
		close(fd);
		return rc;
	case S_IFCHR:
	case S_IFBLK:
		n.type = S_ISCHR(st.st_mode) ? IMAGE_CHR : IMAGE_BLK;
		n.rdev_major = major(st.st_rdev);
		n.rdev_minor = minor(st.st_rdev);
		return load_put(w->c, &n, err);
	case S_IFIFO:
		n.type = IMAGE_FIFO;
		return load_put(w->c, &n, err);
	default:
		/* named as inside the directory, which the note's label names */
		load_note(w->c, path + (w->c->prefix[0] ? strlen(w->c->prefix) + 1 : 0),
			  S_ISSOCK(st.st_mode) ? "a socket" : "an unsupported file type");
		return 0;
	}
}

static char *dir_join(const char *a, const char *b)
{
	char *s;

	size_t n = strlen(a);

	if (asprintf(&s, "%s%s%s", a, n && a[n - 1] != '/' ? "/" : "", b) < 0)
		return NULL;
	return s;
}

static int dir_walk(struct dir_walk *w, int fd, const char *host, const char *path, int depth,
		    struct nectl_err *err)
{
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	if (depth > DIR_DEPTH_MAX)
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: nested deeper than %d directories",
				     host, DIR_DEPTH_MAX);
	if (dir_read_names(fd, host, &names, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *h = dir_join(host, names[i]), *p = dir_join(path, names[i]);

		if (!h || !p)
			rc = nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
		else if (strlen(p) > LOAD_PATH_MAX)
			rc = nectl_err_set(err, NECTL_ERR_FILE, "%s: path longer than %d bytes", h,
					   LOAD_PATH_MAX);
		else
			rc = dir_entry(w, fd, names[i], h, p, depth, err);
		free(h);
		free(p);
	}
	dir_names_free(names, n);
	return rc;
}

int image_load_dir(struct image_tree *t, const char *dir, const char *prefix,
		   struct image_notes *notes, struct nectl_err *err)
{
	struct dir_walk w = {0};
	struct load_ctx c;
	struct stat st;
	int fd, rc;

	if (stat(dir, &st) < 0)
		return load_done(nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", dir), err);
	if (!S_ISDIR(st.st_mode))
		return load_done(nectl_err_set(err, NECTL_ERR_FILE, "%s: not a directory", dir),
				 err);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return load_done(nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", dir), err);
	if (load_ctx_init(&c, t, prefix, notes, err) < 0) {
		close(fd);
		return load_done(-1, err);
	}
	load_ctx_layer(&c, "%s", dir);
	w.c = &c;
	rc = dir_walk(&w, fd, dir, c.prefix, 0, err);
	for (size_t i = 0; i < w.cap; i++)
		free(w.inodes[i].path);
	free(w.inodes);
	load_ctx_free(&c);
	close(fd);
	return load_done(rc, err);
}
