/* The kernel source `kernel build` compiles: Debian's linux-source package at
 * the pinned version, downloaded once with nectl's apt configuration (verified
 * by apt, nothing installed) and kept in the cache as the bare tarball, so that
 * later builds (the other architecture, a rebuild) download nothing. Each build
 * unpacks it afresh; the tarball is treated as hostile like any archive. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "image/kernel_apt.h"
#include "image/kernel_build.h"

#define KSRC_IN_DEB "usr/src/" NECTL_KSRC_PACKAGE ".tar.xz"
#define KSRC_TOP    NECTL_KSRC_PACKAGE "/"
/* Linux 6.12 unpacks to about 92,000 entries and 1.6 GB. */
#define KSRC_MAX_ENTRIES 400000
#define KSRC_MAX_BYTES	 (6ULL << 30)
#define KSRC_PATH_MAX	 1024

void kernel_source_path(const char *cache, char *out, size_t len)
{
	snprintf(out, len, "%s/%s_%s.tar.xz", cache, NECTL_KSRC_PACKAGE, NECTL_KSRC_VERSION);
}

/* dpkg-deb -x into a scratch directory, then only the tarball is renamed into
 * place: an interrupted fetch leaves no partial tarball under the final name. */
static int kernel_source_keep(const struct kernel_apt *a, const char *deb, const char *cache,
			      const char *tarball, struct nectl_err *err)
{
	char tmp[4200], inner[4400];
	char *argv[] = {"dpkg-deb", "-x", (char *)deb, tmp, NULL};
	int rc = 0;

	snprintf(tmp, sizeof(tmp), "%s/ksrc.unpack.XXXXXX", cache);
	if (!mkdtemp(tmp))
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot create", tmp);
	snprintf(inner, sizeof(inner), "%s/%s", tmp, KSRC_IN_DEB);
	if (kernel_run(argv, NULL, a->log) != 0)
		rc = nectl_err_set(err, NECTL_ERR_FILE, "dpkg-deb -x %s failed; see %s", deb,
				   a->log);
	else if (rename(inner, tarball) < 0)
		rc = nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot move %s into place",
				   tarball, inner);
	kernel_rmtree(tmp, NULL);
	return rc;
}

static int kernel_source_download(struct kernel_apt *a, const char *cache, const char *tarball,
				  struct nectl_err *err)
{
	char deb[4600];
	const char *pkg = NECTL_KSRC_PACKAGE "=" NECTL_KSRC_VERSION;

	if (kernel_apt_get(a, "update", NULL, err) < 0 ||
	    kernel_apt_get(a, "download", pkg, err) < 0 ||
	    kernel_apt_find_deb(a, NECTL_KSRC_PACKAGE, "all", deb, sizeof(deb), err) < 0)
		return -1;
	if (kernel_source_keep(a, deb, cache, tarball, err) < 0) {
		unlink(deb);
		return -1;
	}
	unlink(deb);
	return 0;
}

int kernel_source_fetch(const char *cache, const struct kernel_build_opts *o, struct nectl_err *err)
{
	char tarball[4200];
	struct kernel_apt a;
	int rc = 0;

	kernel_source_path(cache, tarball, sizeof(tarball));
	if (access(tarball, R_OK) == 0)
		return 0;
	kernel_build_report(o, "download", 0, 0);
	if (kernel_apt_open(&a, cache, err) < 0)
		return -1;
	/* Another build may have fetched it while we waited for the lock. */
	if (access(tarball, R_OK) < 0)
		rc = kernel_source_download(&a, cache, tarball, err);
	kernel_apt_close(&a);
	return rc;
}

bool kernel_source_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= KSRC_PATH_MAX)
		return false;
	if (strcmp(name, NECTL_KSRC_PACKAGE) == 0)
		return true;
	if (strncmp(name, KSRC_TOP, strlen(KSRC_TOP)) != 0)
		return false;
	for (const char *p = name; *p;) {
		size_t c = strcspn(p, "/");

		if (c == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += c;
		p += strspn(p, "/");
	}
	return true;
}

/* Points the entry (and its hard link target) below dir. */
static int kernel_source_place(struct archive_entry *e, const char *dir, struct nectl_err *err)
{
	const char *name = archive_entry_pathname(e), *link = archive_entry_hardlink(e);
	char path[4096 + KSRC_PATH_MAX];
	mode_t type = archive_entry_filetype(e);

	if (!name || !kernel_source_name_ok(name) || (link && !kernel_source_name_ok(link)))
		return nectl_err_set(err, NECTL_ERR_FILE,
				     "kernel source: entry `%.200s` is outside %s",
				     name ? name : "(unnamed)", KSRC_TOP);
	if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
		return nectl_err_set(
		    err, NECTL_ERR_FILE,
		    "kernel source: entry `%.200s` is not a file, directory or symlink", name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	archive_entry_copy_pathname(e, path);
	if (link) {
		snprintf(path, sizeof(path), "%s/%s", dir, link);
		archive_entry_copy_hardlink(e, path);
	}
	return 0;
}

struct kernel_unpack {
	struct archive *in, *out;
	uint64_t entries, bytes, total;
};

static int kernel_source_entry(struct kernel_unpack *u, struct archive_entry *e, const char *dir,
			       struct nectl_err *err)
{
	int64_t size = archive_entry_size(e);

	u->bytes += size > 0 ? (uint64_t)size : 0;
	if (++u->entries > KSRC_MAX_ENTRIES || u->bytes > KSRC_MAX_BYTES)
		return nectl_err_set(err, NECTL_ERR_FILE,
				     "kernel source: more than %d entries or %llu bytes",
				     KSRC_MAX_ENTRIES, (unsigned long long)KSRC_MAX_BYTES);
	if (kernel_source_place(e, dir, err) < 0)
		return -1;
	if (archive_read_extract2(u->in, e, u->out) != ARCHIVE_OK)
		return nectl_err_set(err, NECTL_ERR_FILE, "kernel source: cannot unpack %.200s: %s",
				     archive_entry_pathname(e),
				     archive_error_string(u->out) ? archive_error_string(u->out)
								  : archive_error_string(u->in));
	return 0;
}

static int kernel_source_walk(struct kernel_unpack *u, const char *tarball, const char *dir,
			      const struct kernel_build_opts *o, struct nectl_err *err)
{
	struct archive_entry *e;
	int r;

	if (archive_read_open_filename(u->in, tarball, 1 << 16) != ARCHIVE_OK)
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: %s", tarball,
				     archive_error_string(u->in));
	while ((r = archive_read_next_header(u->in, &e)) == ARCHIVE_OK) {
		if (kernel_source_entry(u, e, dir, err) < 0)
			return -1;
		if (u->entries % 512 == 0)
			kernel_build_report(o, "unpack", (uint64_t)archive_filter_bytes(u->in, -1),
					    u->total);
	}
	if (r != ARCHIVE_EOF)
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: %s", tarball,
				     archive_error_string(u->in));
	kernel_build_report(o, "unpack", u->total, u->total);
	return 0;
}

int kernel_source_unpack(const char *tarball, const char *dir, const struct kernel_build_opts *o,
			 char *src, size_t len, struct nectl_err *err)
{
	struct kernel_unpack u = {archive_read_new(), archive_write_disk_new(), 0, 0, 0};
	struct stat st;
	int rc = -1;

	if (stat(tarball, &st) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot stat", tarball);
	u.total = (uint64_t)st.st_size;
	if (!u.in || !u.out) {
		nectl_err_set(err, NECTL_ERR_FILE, "kernel source: out of memory");
	} else {
		archive_read_support_filter_xz(u.in);
		archive_read_support_format_tar(u.in);
		/* Permissions as a plain tar would give them (umask applied, no
		 * set-id bits), mtimes kept for make. */
		archive_write_disk_set_options(u.out, ARCHIVE_EXTRACT_TIME |
							  ARCHIVE_EXTRACT_SECURE_NODOTDOT |
							  ARCHIVE_EXTRACT_SECURE_SYMLINKS);
		rc = kernel_source_walk(&u, tarball, dir, o, err);
	}
	if (u.out && archive_write_close(u.out) != ARCHIVE_OK && rc == 0)
		rc = nectl_err_set(err, NECTL_ERR_FILE, "kernel source: %s",
				   archive_error_string(u.out));
	archive_read_free(u.in);
	archive_write_free(u.out);
	snprintf(src, len, "%s/%s", dir, NECTL_KSRC_PACKAGE);
	return rc;
}
