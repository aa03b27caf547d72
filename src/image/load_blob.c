/* Where an image's blobs are: files of a layout directory, or members of an
 * image archive (OCI archive, `docker save`). An archive is never extracted:
 * one pass indexes its members. For an uncompressed archive (the normal case)
 * the index holds each member's data offset in the file, so a blob is later
 * read in place with pread, at no cost in disk or memory. libarchive does not
 * name that offset, but after reading a header the position of its top
 * filter is where the data starts; the first bytes are compared to make sure
 * and the digest check covers the rest. A compressed archive cannot be read
 * in place, so its members are copied into a private unlinked temporary file
 * (the stash), freed when the load ends; the stash stops at the limit on file
 * data, checked against a member's size before its first byte is copied. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "image/load.h"
#include "util/fileio.h"

#define BLOB_BUF   65536
#define BLOB_PROBE 4096 /* bytes compared when indexing a member in place */
#define BLOB_HOPS  8	/* symlinks followed inside an archive */

struct load_blob {
	struct load_store *s;
	char name[LOAD_PATH_MAX + 1];
	char digest[LOAD_DIGEST_LEN + 1];
	int fd, own_fd;
	uint64_t pos, end;
	EVP_MD_CTX *md;
	struct archive *a;
	uint8_t buf[BLOB_BUF];
};

bool load_digest_valid(const char *digest)
{
	if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != LOAD_DIGEST_LEN)
		return false;
	for (const char *p = digest + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

void load_digest_path(const char *digest, char *out)
{
	snprintf(out, 80, "blobs/sha256/%s", digest + 7);
}

static int store_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Whether len more bytes fit the stash: its size is bounded like file data. */
static int store_stash_room(struct load_store *s, uint64_t len, const char *name,
			    struct nectl_err *err)
{
	char limit[32];

	if (len <= s->lim.max_bytes - s->stash_len)
		return 0;
	image_size_text(s->lim.max_bytes, limit);
	return nectl_err_set(err, NECTL_ERR_BUILD,
			     "%s: member `%.256s` (%llu bytes) would take the copy of the "
			     "compressed archive past the limit of %s of file data (raise it "
			     "with --max-file-data)",
			     s->path, name, (unsigned long long)len, limit);
}

static int store_stash_write(struct load_store *s, const void *buf, size_t len,
			     struct nectl_err *err)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(s->stash_fd, p, len, (off_t)s->stash_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: temporary file",
					     s->path);
		p += n;
		len -= (size_t)n;
		s->stash_len += (uint64_t)n;
	}
	return 0;
}

static int store_stash_open(struct load_store *s, struct nectl_err *err)
{
	if (s->stash_fd < 0)
		s->stash_fd = file_tmp_anon(err);
	return s->stash_fd < 0 ? -1 : 0;
}

/* Copies the current member's data (sparse holes as zeros) to the stash. */
static int store_stash_member(struct load_store *s, struct archive *a, struct load_member *m,
			      const void *head, size_t headlen, struct nectl_err *err)
{
	uint8_t buf[BLOB_BUF];
	uint64_t total = headlen;
	la_ssize_t n;

	if (store_stash_room(s, m->size, m->name, err) < 0 || store_stash_open(s, err) < 0)
		return -1;
	m->stashed = true;
	m->off = s->stash_len;
	if (store_stash_write(s, head, headlen, err) < 0)
		return -1;
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
		/* Never more than the size it claimed, which fit. */
		if ((uint64_t)n > m->size - total)
			return nectl_err_set(err, NECTL_ERR_BUILD,
					     "%s: member `%.256s` is longer than its size", s->path,
					     m->name);
		if (store_stash_write(s, buf, (size_t)n, err) < 0)
			return -1;
		total += (uint64_t)n;
	}
	if (n < 0 || total != m->size)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: %s", s->path,
				     n < 0 ? archive_error_string(a) : "truncated member");
	return 0;
}

/* Records where the current member's data is: in place when possible. */
static int store_locate(struct load_store *s, struct archive *a, struct archive_entry *e,
			struct load_member *m, struct nectl_err *err)
{
	uint8_t head[BLOB_PROBE], disk[BLOB_PROBE];
	la_int64_t off = archive_filter_bytes(a, 0);
	size_t want = m->size < BLOB_PROBE ? (size_t)m->size : BLOB_PROBE;
	la_ssize_t got = 0;
	bool plain = archive_filter_count(a) == 1 &&
		     archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE &&
		     archive_entry_sparse_count(e) == 0 && off >= 0;

	if (want)
		got = archive_read_data(a, head, want);
	if (got < 0 || (size_t)got != want)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: %s", s->path,
				     got < 0 ? archive_error_string(a) : "truncated member");
	if (plain && (want == 0 || (store_pread_all(s->fd, disk, want, (uint64_t)off) == 0 &&
				    memcmp(head, disk, want) == 0))) {
		m->off = (uint64_t)off;
		return 0;
	}
	return store_stash_member(s, a, m, head, want, err);
}

static struct load_member *store_add(struct load_store *s, const char *name, struct nectl_err *err)
{
	struct load_member *m;

	if (s->count == LOAD_MEMBERS_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: more than %d members", s->path,
				     LOAD_MEMBERS_MAX),
		       NULL;
	if (s->count == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;

		m = realloc(s->m, cap * sizeof(*m));
		if (!m)
			return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory"), NULL;
		s->m = m;
		s->cap = cap;
	}
	m = &s->m[s->count];
	memset(m, 0, sizeof(*m));
	m->name = strdup(name);
	if (!m->name)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory"), NULL;
	m->seq = s->count++;
	return m;
}

static int store_member_cmp(const void *pa, const void *pb)
{
	const struct load_member *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

static int store_index_entry(struct load_store *s, struct archive *a, struct archive_entry *e,
			     const char *name, struct nectl_err *err)
{
	const char *hard = archive_entry_hardlink(e);
	const char *sym = archive_entry_symlink(e);
	struct load_member *m;
	char norm[LOAD_PATH_MAX + 1];

	if (++s->headers > s->lim.max_entries)
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "%s: more than %llu entries, the limit (raise it with "
				     "--max-entries)",
				     s->path, (unsigned long long)s->lim.max_entries);
	if (strlen(name) > LOAD_PATH_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "%s: a member name is longer than %d bytes", s->path,
				     LOAD_PATH_MAX);
	/* Names that climb out are not blobs anyone can ask for: ignore them. */
	if (image_path_normalize(name, norm, false, NULL) < 0)
		return 0;
	if (!hard && !(sym && archive_entry_filetype(e) == AE_IFLNK) &&
	    archive_entry_filetype(e) != AE_IFREG)
		return 0;
	m = store_add(s, norm, err);
	if (!m)
		return -1;
	if (hard || archive_entry_filetype(e) == AE_IFLNK) {
		m->link = strndup(hard ? hard : sym, LOAD_PATH_MAX);
		m->hardlink = hard != NULL;
		return m->link ? 0 : nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	}
	m->size = archive_entry_size(e) > 0 ? (uint64_t)archive_entry_size(e) : 0;
	return store_locate(s, a, e, m, err);
}

static int store_index(struct load_store *s, struct nectl_err *err)
{
	struct archive *a = load_tar_reader();
	struct archive_entry *e;
	int r, rc = 0;

	if (!a)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	if (archive_read_open_fd(a, s->fd, BLOB_BUF) != ARCHIVE_OK)
		rc =
		    nectl_err_set(err, NECTL_ERR_BUILD, "%s: %s", s->path, archive_error_string(a));
	while (rc == 0 && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		const char *name = archive_entry_pathname(e);

		if (!name)
			name = archive_entry_pathname_utf8(e);
		if (r < ARCHIVE_WARN)
			rc = nectl_err_set(err, NECTL_ERR_BUILD, "%s: %s", s->path,
					   archive_error_string(a));
		else if (name)
			rc = store_index_entry(s, a, e, name, err);
	}
	archive_read_free(a);
	if (rc == 0 && s->count)
		qsort(s->m, s->count, sizeof(*s->m), store_member_cmp);
	return rc;
}

int load_store_open(struct load_store *s, const char *path, const struct image_limits *lim,
		    struct nectl_err *err)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->path = path;
	s->lim = *lim;
	s->dirfd = s->fd = s->stash_fd = -1;
	if (stat(path, &st) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", path);
	if (S_ISDIR(st.st_mode)) {
		s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return s->dirfd < 0 ? nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", path) : 0;
	}
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s", path);
	if (store_index(s, err) < 0) {
		load_store_close(s);
		return -1;
	}
	return 0;
}

void load_store_close(struct load_store *s)
{
	for (size_t i = 0; i < s->count; i++) {
		free(s->m[i].name);
		free(s->m[i].link);
	}
	free(s->m);
	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->fd >= 0)
		close(s->fd);
	if (s->stash_fd >= 0)
		close(s->stash_fd);
	memset(s, 0, sizeof(*s));
	s->dirfd = s->fd = s->stash_fd = -1;
}

/* The last member of that name (archive order), by binary search. */
static struct load_member *store_lookup(struct load_store *s, const char *name)
{
	size_t lo = 0, hi = s->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(s->m[mid].name, name) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && strcmp(s->m[lo - 1].name, name) == 0 ? &s->m[lo - 1] : NULL;
}

/* Follows links between members (docker save links duplicate layers). */
static struct load_member *store_resolve(struct load_store *s, const char *name)
{
	char cur[LOAD_PATH_MAX + 1], next[2 * LOAD_PATH_MAX + 2];
	struct load_member *m;

	if (strlen(name) > LOAD_PATH_MAX || image_path_normalize(name, cur, false, NULL) < 0)
		return NULL;
	for (int hop = 0; hop <= BLOB_HOPS; hop++) {
		char *slash;

		m = store_lookup(s, cur);
		if (!m || !m->link)
			return m;
		slash = strrchr(cur, '/');
		if (m->hardlink || m->link[0] == '/' || !slash)
			snprintf(next, sizeof(next), "%s", m->link);
		else
			snprintf(next, sizeof(next), "%.*s/%s", (int)(slash - cur), cur, m->link);
		if (strlen(next) > LOAD_PATH_MAX ||
		    image_path_normalize(next, cur, false, NULL) < 0)
			return NULL;
	}
	return NULL;
}

bool load_store_has(struct load_store *s, const char *name)
{
	struct stat st;

	/* Present as anything: reading it says what is wrong (a symlink...). */
	if (s->dirfd >= 0)
		return fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	return store_resolve(s, name) != NULL;
}

/* Opens a layout's file (norm: normalized, relative) one component at a time
 * from the layout's descriptor, following no symlink on the way: index.json,
 * oci-layout, blobs/ and blobs/sha256/ are the layout's own or nothing. */
static int store_open_beneath(struct load_store *s, const char *norm, struct nectl_err *err)
{
	char part[LOAD_PATH_MAX + 1];
	const char *p = norm;
	int dir = s->dirfd, fd;

	for (;;) {
		size_t n = strcspn(p, "/");
		bool last = p[n] == '\0';

		memcpy(part, p, n);
		part[n] = '\0';
		fd = openat(dir, part,
			    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
				(last ? 0 : O_DIRECTORY));
		if (fd < 0) {
			int e = errno;
			struct stat st;
			bool link = fstatat(dir, part, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISLNK(st.st_mode);

			if (dir != s->dirfd)
				close(dir);
			if (link)
				return nectl_err_set(err, NECTL_ERR_BUILD,
						     "%s/%.*s: is a symlink, which an image layout "
						     "is not read through",
						     s->path, (int)(p - norm + n), norm);
			return nectl_err_sys(err, e == ENOENT ? NECTL_ERR_BUILD : NECTL_ERR_FILE, e,
					     "%s/%s", s->path, norm);
		}
		if (dir != s->dirfd)
			close(dir);
		if (last)
			return fd;
		dir = fd;
		p += n + 1;
	}
}

/* Opens the bytes of a member: fd (closed by the caller if *own), off, size. */
static int store_region(struct load_store *s, const char *name, int *fd, int *own, uint64_t *off,
			uint64_t *size, struct nectl_err *err)
{
	struct load_member *m;
	struct stat st;

	*own = 0;
	*off = 0;
	if (s->dirfd >= 0) {
		char norm[LOAD_PATH_MAX + 1];

		if (strlen(name) > LOAD_PATH_MAX ||
		    image_path_normalize(name, norm, false, err) < 0)
			return nectl_err_set(err, NECTL_ERR_BUILD, "%s: bad blob name `%.256s`",
					     s->path, name);
		*fd = store_open_beneath(s, norm, err);
		if (*fd < 0)
			return -1;
		*own = 1;
		if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(*fd);
			return nectl_err_set(err, NECTL_ERR_BUILD, "%s/%s: not a regular file",
					     s->path, norm);
		}
		*size = (uint64_t)st.st_size;
		return 0;
	}
	m = store_resolve(s, name);
	if (!m)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: `%.256s` not found in the archive",
				     s->path, name);
	*fd = m->stashed ? s->stash_fd : s->fd;
	*off = m->off;
	*size = m->size;
	return 0;
}

static int blob_check_size(struct load_blob *b, int64_t want, struct nectl_err *err)
{
	uint64_t size = b->end - b->pos;

	if (want >= 0 && size != (uint64_t)want)
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "%s: `%s` is %llu bytes, its descriptor says %lld", b->s->path,
				     b->name, (unsigned long long)size, (long long)want);
	return 0;
}

static struct load_blob *blob_new(struct load_store *s, const char *name, const char *digest,
				  int64_t want_size, struct nectl_err *err)
{
	struct load_blob *b = calloc(1, sizeof(*b));
	uint64_t off, size;

	if (!b || !(b->md = EVP_MD_CTX_new()) ||
	    EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
		load_blob_free(b);
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory"), NULL;
	}
	b->s = s;
	snprintf(b->name, sizeof(b->name), "%s", name);
	snprintf(b->digest, sizeof(b->digest), "%s", digest ? digest : "");
	if (store_region(s, name, &b->fd, &b->own_fd, &off, &size, err) < 0) {
		b->fd = -1;
		load_blob_free(b);
		return NULL;
	}
	b->pos = off;
	b->end = off + size;
	if (blob_check_size(b, want_size, err) < 0) {
		load_blob_free(b);
		return NULL;
	}
	return b;
}

/* Reads the next chunk into b->buf and hashes it: bytes, 0 at the end, or
 * -errno. */
static la_ssize_t blob_pull(struct load_blob *b)
{
	uint64_t left = b->end - b->pos;
	size_t want = left < BLOB_BUF ? (size_t)left : BLOB_BUF;
	int rc;

	if (want == 0)
		return 0;
	rc = store_pread_all(b->fd, b->buf, want, b->pos);
	if (rc < 0)
		return rc;
	EVP_DigestUpdate(b->md, b->buf, want);
	b->pos += want;
	return (la_ssize_t)want;
}

/* libarchive's read callback. There is deliberately no skip callback: every
 * byte libarchive consumes passes through the hash. */
static la_ssize_t blob_read_cb(struct archive *a, void *ctx, const void **buf)
{
	struct load_blob *b = ctx;
	la_ssize_t n = blob_pull(b);

	*buf = b->buf;
	if (n < 0) {
		archive_set_error(a, (int)-n, "%s: read failed", b->name);
		return -1;
	}
	return n;
}

int load_blob_verify(struct load_blob *b, struct nectl_err *err)
{
	uint8_t md[32];
	char hex[LOAD_DIGEST_LEN + 1] = "sha256:";
	la_ssize_t n;

	while ((n = blob_pull(b)) > 0)
		;
	if (n < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, (int)-n, "%s: %s", b->s->path, b->name);
	if (!b->digest[0])
		return 0;
	EVP_DigestFinal_ex(b->md, md, NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 7 + 2 * i, 3, "%02x", md[i]);
	if (strcmp(hex, b->digest) != 0)
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "%s: `%s` does not match its digest (expected %s, got %s)",
				     b->s->path, b->name, b->digest, hex);
	return 0;
}

void load_blob_free(struct load_blob *b)
{
	if (!b)
		return;
	if (b->a)
		archive_read_free(b->a);
	if (b->own_fd && b->fd >= 0)
		close(b->fd);
	EVP_MD_CTX_free(b->md);
	free(b);
}

int load_blob_open(struct load_store *s, const char *name, const char *digest, int64_t want_size,
		   struct load_blob **out, struct archive **a, struct nectl_err *err)
{
	struct load_blob *b = blob_new(s, name, digest, want_size, err);

	*out = NULL;
	if (!b)
		return -1;
	b->a = load_tar_reader();
	if (!b->a) {
		load_blob_free(b);
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	}
	if (archive_read_open(b->a, b, NULL, blob_read_cb, NULL) != ARCHIVE_OK) {
		/* Not even a compression header: the digest says more, if wrong. */
		nectl_err_set(err, NECTL_ERR_BUILD, "%s: %s: %s", s->path, name,
			      archive_error_string(b->a));
		load_blob_verify(b, err);
		load_blob_free(b);
		return -1;
	}
	*out = b;
	*a = b->a;
	return 0;
}

int load_store_read(struct load_store *s, const char *name, const char *digest, int64_t want_size,
		    size_t max, char **buf, size_t *len, struct nectl_err *err)
{
	struct load_blob *b = blob_new(s, name, digest, want_size, err);
	uint64_t size;
	int rc;

	*buf = NULL;
	if (!b)
		return -1;
	size = b->end - b->pos;
	if (size > max) {
		load_blob_free(b);
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: `%s` is larger than %zu bytes",
				     s->path, name, max);
	}
	*buf = malloc((size_t)size + 1);
	rc = *buf ? store_pread_all(b->fd, *buf, (size_t)size, b->pos) : -ENOMEM;
	if (rc < 0) {
		free(*buf);
		*buf = NULL;
		load_blob_free(b);
		return nectl_err_sys(err, NECTL_ERR_FILE, -rc, "%s: %s", s->path, name);
	}
	EVP_DigestUpdate(b->md, *buf, (size_t)size);
	b->pos = b->end;
	(*buf)[size] = '\0';
	*len = (size_t)size;
	rc = load_blob_verify(b, err);
	load_blob_free(b);
	if (rc < 0) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}
