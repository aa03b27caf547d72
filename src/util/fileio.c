/* Atomic output files (temporary file, fsync, rename), anonymous temporary
 * files, and capped whole-file reads. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"

int out_file_open(struct out_file *f, const char *path, struct nectl_err *err)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (asprintf(&f->tmp_path, "%s.tmp.XXXXXX", path) < 0) {
		f->tmp_path = NULL;
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: out of memory", path);
	}
	f->path = strdup(path);
	f->fd = f->path ? mkostemp(f->tmp_path, O_CLOEXEC) : -1;
	if (f->fd < 0) {
		int e = f->path ? errno : ENOMEM;

		free(f->tmp_path);
		free(f->path);
		memset(f, 0, sizeof(*f));
		f->fd = -1;
		return nectl_err_sys(err, NECTL_ERR_FILE, e, "%s: cannot create output file", path);
	}
	return 0;
}

int out_file_pwrite(struct out_file *f, const void *buf, size_t len, uint64_t off,
		    struct nectl_err *err)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: write failed",
					     f->path);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int out_file_write(struct out_file *f, const void *buf, size_t len, struct nectl_err *err)
{
	if (out_file_pwrite(f, buf, len, f->written, err) < 0)
		return -1;
	f->written += len;
	return 0;
}

int out_file_commit(struct out_file *f, struct nectl_err *err)
{
	mode_t mask = umask(0);

	umask(mask);
	if (fchmod(f->fd, 0666 & ~mask) < 0 || fsync(f->fd) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot finish output file",
				     f->path);
	if (close(f->fd) < 0) {
		f->fd = -1;
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot finish output file",
				     f->path);
	}
	f->fd = -1;
	if (rename(f->tmp_path, f->path) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot rename %s into place",
				     f->path, f->tmp_path);
	free(f->tmp_path);
	f->tmp_path = NULL;
	return 0;
}

void out_file_abort(struct out_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp_path)
		unlink(f->tmp_path);
	free(f->tmp_path);
	free(f->path);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

int file_read_all(const char *path, size_t max, char **out, size_t *len, enum nectl_kind code,
		  struct nectl_err *err)
{
	FILE *fp = fopen(path, "rbe");
	char *buf;
	size_t n;

	if (!fp)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", path);
	buf = malloc(max + 2);
	if (!buf) {
		fclose(fp);
		return nectl_err_set(err, code, "%s: out of memory", path);
	}
	n = fread(buf, 1, max + 1, fp);
	if (ferror(fp)) {
		fclose(fp);
		free(buf);
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: read failed", path);
	}
	fclose(fp);
	if (n > max) {
		free(buf);
		return nectl_err_set(err, code, "%s: larger than %zu bytes", path, max);
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int file_tmp_anon(struct nectl_err *err)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* Filesystems without O_TMPFILE: create, then unlink at once. */
	snprintf(path, sizeof(path), "%s/nectl-tmp-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno,
				     "%s: cannot create a temporary file", dir);
	unlink(path);
	return fd;
}
