/* Byte sources the EIF reader parses: a file, a buffer, or enclave memory
 * in regions (an EIF the launch wrote at the load offset, which may span
 * them). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nectl/eif.h"

static int source_file_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	int fd = *(int *)ctx;
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file shrank under us */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int eif_source_open_file(struct eif_source *src, const char *path, struct nectl_err *err)
{
	struct stat st;

	memset(src, 0, sizeof(*src));
	/* O_NONBLOCK: opening a FIFO must not hang before the type check. */
	src->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (src->fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", path);
	if (fstat(src->fd, &st) < 0) {
		int e = errno;

		close(src->fd);
		src->fd = -1;
		return nectl_err_sys(err, NECTL_ERR_FILE, e, "%s: cannot stat", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(src->fd);
		src->fd = -1;
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: not a regular file", path);
	}
	src->read_at = source_file_read;
	src->ctx = &src->fd;
	src->size = (uint64_t)st.st_size;
	src->name = path;
	return 0;
}

void eif_source_close(struct eif_source *src)
{
	if (src->read_at == source_file_read && src->fd >= 0)
		close(src->fd);
	src->fd = -1;
	src->read_at = NULL;
}

static int source_mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	const struct eif_source_mem *m = ctx;

	if (off > m->len || len > m->len - off)
		return -EIO;
	memcpy(buf, m->buf + off, len);
	return 0;
}

void eif_source_from_memory(struct eif_source *src, const void *buf, size_t len, const char *name)
{
	memset(src, 0, sizeof(*src));
	src->mem.buf = buf;
	src->mem.len = len;
	src->read_at = source_mem_read;
	src->ctx = &src->mem;
	src->size = len;
	src->name = name;
	src->fd = -1;
}

/* Reads [off, off + len) of the concatenation, region piece by piece. */
static int source_regions_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	const struct eif_source *src = ctx;
	const struct eif_source_regions *g = &src->regions;
	uint64_t at = g->offset + off, base = 0;
	uint8_t *p = buf;

	if (off > src->size || len > src->size - off)
		return -EIO;
	for (unsigned i = 0; i < g->n && len > 0; i++) {
		uint64_t size = g->r[i].size, n;

		if (at >= base + size) {
			base += size;
			continue;
		}
		n = base + size - at < len ? base + size - at : len;
		memcpy(p, g->r[i].addr + (at - base), (size_t)n);
		p += n;
		at += n;
		len -= (size_t)n;
		base += size;
	}
	return len ? -EIO : 0;
}

void eif_source_from_regions(struct eif_source *src, const struct mem_region *r, unsigned n,
			     uint64_t offset, const char *name)
{
	uint64_t total = 0;

	memset(src, 0, sizeof(*src));
	for (unsigned i = 0; i < n; i++)
		total = r[i].size > UINT64_MAX - total ? UINT64_MAX : total + r[i].size;
	src->regions = (struct eif_source_regions){r, n, offset};
	src->read_at = source_regions_read;
	src->ctx = src;
	src->size = offset < total ? total - offset : 0;
	src->name = name;
	src->fd = -1;
}
