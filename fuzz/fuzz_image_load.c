/* fuzz_image_load.c: the application loaders of build-enclave over hostile
 * input, with low limits (1 MiB of file data, 4096 entries). The first byte
 * picks the loader; the rest is
 *   0: a tar (plain or compressed) for image_load_tar, without whiteouts,
 *   1: the same with OCI whiteouts (a layer),
 *   2: an OCI archive or `docker save` archive for image_load_image,
 *   3: a tar unpacked (small, checked names) into a scratch directory, loaded
 *      as an OCI layout directory by image_load_image,
 *   4: the same directory loaded by image_load_dir.
 * Inputs 0-2 are read from a memfd, so nothing reaches the disk; the scratch
 * directory is emptied after every input and removed at exit. Besides crashes
 * and leaks, it traps on broken promises: a failure carries E48, E19 or E03
 * and a one-line message; a loaded tree writes a cpio archive of exactly the
 * size image_cpio_size announced. */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "nectl/image.h"

#define FUZZ_MAX_BYTES	 (1u << 20)
#define FUZZ_MAX_ENTRIES 4096
#define UNPACK_FILE_MAX	 (64u << 10) /* per file, when unpacking for modes 3 and 4 */
#define UNPACK_TOTAL_MAX (1u << 20)
#define UNPACK_ENTRIES	 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[] = "/tmp/nectl-fuzz-image-XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_DNR)
		chmod(path, 0700);
	return remove(path);
}

static void fuzz_dir_remove(void)
{
	nftw(fuzz_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* An empty scratch directory: made once, emptied after each input. */
static const char *fuzz_scratch(void)
{
	static char root[sizeof(fuzz_dir) + 8];

	if (!root[0]) {
		if (!mkdtemp(fuzz_dir))
			abort();
		atexit(fuzz_dir_remove);
		snprintf(root, sizeof(root), "%s/in", fuzz_dir);
	}
	if (mkdir(root, 0755) < 0)
		abort();
	return root;
}

static void fuzz_scratch_clear(const char *root)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Names the unpacker accepts: relative, [A-Za-z0-9._-] parts, no "..". */
static bool unpack_name_ok(const char *name)
{
	if (!*name || *name == '/' || strlen(name) > 200 || strstr(name, ".."))
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") ==
	       strlen(name);
}

static void unpack_parents(const char *root, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
}

static void unpack_file(struct archive *a, const char *path, size_t *total)
{
	char buf[4096];
	la_ssize_t n;
	size_t mine = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd < 0)
		return;
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0 && mine < UNPACK_FILE_MAX &&
	       *total < UNPACK_TOTAL_MAX) {
		if (write(fd, buf, (size_t)n) != n)
			break;
		mine += (size_t)n;
		*total += (size_t)n;
	}
	close(fd);
}

/* A small, careful tar extraction: files, directories and symlinks (kept as
 * they are, pointing anywhere: the loaders must not follow them). */
static void unpack(const uint8_t *data, size_t size, const char *root)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t total = 0;
	char path[512];

	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, data, size) != ARCHIVE_OK) {
		archive_read_free(a);
		return;
	}
	for (int i = 0; i < UNPACK_ENTRIES && archive_read_next_header(a, &e) == ARCHIVE_OK; i++) {
		const char *name = archive_entry_pathname(e);
		const char *target = archive_entry_symlink(e);

		if (!name || !unpack_name_ok(name))
			continue;
		unpack_parents(root, name);
		snprintf(path, sizeof(path), "%s/%s", root, name);
		if (archive_entry_filetype(e) == AE_IFDIR)
			mkdir(path, 0755);
		else if (archive_entry_filetype(e) == AE_IFLNK && target)
			(void)!symlink(target, path);
		else if (archive_entry_filetype(e) == AE_IFREG)
			unpack_file(a, path, &total);
	}
	archive_read_free(a);
}

static int sink(void *ctx, const void *buf, size_t len, struct nectl_err *err)
{
	(void)buf;
	(void)err;
	*(uint64_t *)ctx += len;
	return 0;
}

/* What a loaded tree promises: a cpio archive of the announced size. */
static void fuzz_check_tree(struct image_tree *t)
{
	struct image_cpio_opts opts = {.mtime_max = 0};
	struct nectl_err err = {0};
	uint64_t want = image_cpio_size(t), got = 0;

	if (image_cpio_write(t, &opts, sink, &got, &err) == 0 && got != want)
		abort();
}

static void fuzz_check_error(const struct nectl_err *err)
{
	if (err->kind != NECTL_ERR_BUILD && err->kind != NECTL_ERR_FILE &&
	    err->kind != NECTL_ERR_INVALID_ARG)
		abort();
	if (!err->msg[0] || strchr(err->msg, '\n'))
		abort();
}

static int fuzz_load(int mode, const char *path, struct image_tree *t, struct nectl_err *err)
{
	struct image_config cfg = {0};
	int rc;

	switch (mode) {
	case 0:
	case 1:
		return image_load_tar(t, path, "rootfs", mode == 1, NULL, err);
	case 4:
		return image_load_dir(t, path, "rootfs", NULL, err);
	default:
		rc = image_load_image(t, path, "amd64", "rootfs", &cfg, NULL, err);
		image_config_free(&cfg);
		return rc;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_limits lim = {FUZZ_MAX_BYTES, FUZZ_MAX_ENTRIES};
	struct nectl_err err = {0};
	struct image_tree *t;
	const char *root = NULL;
	char path[64];
	int mode, fd = -1;

	if (size < 1)
		return 0;
	mode = data[0] % 5;
	if (mode >= 3) {
		root = fuzz_scratch();
		unpack(data + 1, size - 1, root);
	} else {
		fd = memfd_create("fuzz-image", MFD_CLOEXEC);
		if (fd < 0 || write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (image_tree_new(&t, &err) < 0)
		abort();
	image_tree_set_limits(t, &lim);
	if (fuzz_load(mode, root ? root : path, t, &err) == 0)
		fuzz_check_tree(t);
	else
		fuzz_check_error(&err);
	image_tree_free(t);
	if (fd >= 0)
		close(fd);
	if (root)
		fuzz_scratch_clear(root);
	return 0;
}
