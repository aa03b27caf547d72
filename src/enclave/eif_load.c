/* The launch step every mode shares: the EIF file streamed once into the
 * enclave's memory at the accelerator's image load offset, across the donated
 * regions in donation order, as nitro-cli and the NE driver's sample do. The
 * accelerator (the Nitro hypervisor, or accel/kvm) then finds it there; no
 * accelerator opens the file. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nectl/enclave.h"

static uint64_t eif_load_capacity(const struct mem_region *r, unsigned n)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < n; i++)
		total += r[i].size;
	return total;
}

/* Reads exactly len bytes at file offset `at` into dst. */
static int eif_load_read(int fd, const char *path, uint8_t *dst, uint64_t len, uint64_t at,
			 struct nectl_err *err)
{
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pread(fd, dst + done, len - done, (off_t)(at + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, n < 0 ? errno : EIO,
					     "%s: read failed", path);
		done += (uint64_t)n;
	}
	return 0;
}

int enclave_write_eif(const char *path, const struct mem_region *r, unsigned n, uint64_t offset,
		      uint64_t *len, struct nectl_err *err)
{
	uint64_t cap = eif_load_capacity(r, n), size, at = 0, skip = offset;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: not a regular file", path);
	}
	size = (uint64_t)st.st_size;
	/* Checked before a byte is written. */
	if (offset > cap || cap - offset < size) {
		close(fd);
		return nectl_err_set(err, NECTL_ERR_MEM_OVERFLOW,
				     "%s (%llu bytes) does not fit in %llu MiB of enclave memory "
				     "from its load offset (%llu MiB)",
				     path, (unsigned long long)size,
				     (unsigned long long)(cap >> 20),
				     (unsigned long long)(offset >> 20));
	}
	for (unsigned i = 0; i < n && at < size && rc == 0; i++) {
		uint64_t k;

		if (skip >= r[i].size) {
			skip -= r[i].size;
			continue;
		}
		k = r[i].size - skip < size - at ? r[i].size - skip : size - at;
		rc = eif_load_read(fd, path, r[i].addr + skip, k, at, err);
		at += k;
		skip = 0;
	}
	close(fd);
	if (rc == 0 && len)
		*len = size;
	return rc;
}
