/* "Symlinks are never followed" under a race: a local user who controls a
 * directory input swaps a file (or a directory above it) for a symlink, or a
 * hard link, to a secret between the scan and the read. The build must fail
 * naming the path, and the secret's bytes must never reach the ramdisk. An
 * OCI layout's index.json, oci-layout and blobs are never followed either. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "image/load.h"
#include "imgfix.h"

#define PUBLIC "public bytes" /* the same length as the secret */
#define SECRET "SECRET-BYTES"

static char tmpdir[] = "/tmp/nectl-test-race-XXXXXX";

#define tp(...) imgfix_path(tmpdir, __VA_ARGS__)

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	imgfix_write_file(tp("secret"), SECRET, strlen(SECRET));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return imgfix_rmtree(tmpdir);
}

static int emit_file(void *ctx, const void *buf, size_t len, struct nectl_err *err)
{
	(void)err;
	return fwrite(buf, 1, len, ctx) == len ? 0 : -1;
}

/* Writes the tree as cpio; returns image_cpio_write's result, the error, and
 * whether the secret is anywhere in what was written. */
static int write_ramdisk(struct image_tree *t, struct nectl_err *err, bool *leaked)
{
	struct image_cpio_opts opts = {.mtime_max = 0};
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);
	int rc;

	assert_non_null(fp);
	memset(err, 0, sizeof(*err));
	rc = image_cpio_write(t, &opts, emit_file, fp, err);
	fclose(fp);
	*leaked = memmem(out, len, SECRET, strlen(SECRET)) != NULL;
	free(out);
	return rc;
}

static struct image_tree *scan(const char *dir)
{
	struct image_tree *t;
	struct nectl_err err = {0};

	assert_int_equal(image_tree_new(&t, &err), 0);
	assert_int_equal(image_load_dir(t, dir, "rootfs", NULL, &err), 0);
	return t;
}

/* Replaces path by a symlink to target, atomically (rename over it). */
static void swap_for_symlink(const char *path, const char *target)
{
	char tmp[4300];

	snprintf(tmp, sizeof(tmp), "%s.swap", path);
	assert_int_equal(symlink(target, tmp), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void expect_refused(struct image_tree *t, const char *fragment)
{
	struct nectl_err err;
	bool leaked;
	int rc = write_ramdisk(t, &err, &leaked);

	if (leaked)
		fail_msg("the secret's bytes are in the ramdisk (rc %d)", rc);
	if (rc != -1 || !strstr(err.msg, fragment) || strchr(err.msg, '\n'))
		fail_msg("rc %d, error %d `%s`: wanted a failure naming `%s`", rc, err.kind,
			 err.msg, fragment);
}

static void test_file_swapped_for_a_symlink_after_the_scan_is_not_read(void **state)
{
	struct image_tree *t;

	(void)state;
	assert_int_equal(mkdir(tp("r1"), 0755), 0);
	imgfix_write_file(tp("r1/f"), PUBLIC, strlen(PUBLIC));
	t = scan(tp("r1"));
	swap_for_symlink(tp("r1/f"), tp("secret"));
	expect_refused(t, "r1/f");
	image_tree_free(t);
}

static void test_directory_swapped_for_a_symlink_after_the_scan_is_not_read(void **state)
{
	struct image_tree *t;

	(void)state;
	assert_int_equal(mkdir(tp("r2"), 0755), 0);
	assert_int_equal(mkdir(tp("r2/sub"), 0755), 0);
	imgfix_write_file(tp("r2/sub/f"), PUBLIC, strlen(PUBLIC));
	assert_int_equal(mkdir(tp("elsewhere"), 0755), 0);
	assert_int_equal(link(tp("secret"), tp("elsewhere/f")), 0);
	t = scan(tp("r2"));
	assert_int_equal(rename(tp("r2/sub"), tp("r2/sub.old")), 0);
	assert_int_equal(symlink(tp("elsewhere"), tp("r2/sub")), 0);
	expect_refused(t, "r2/sub/f");
	image_tree_free(t);
}

/* Not a symlink at all: another file of the same size, the secret's inode. */
static void test_file_swapped_for_a_hard_link_after_the_scan_is_not_read(void **state)
{
	struct image_tree *t;

	(void)state;
	assert_int_equal(mkdir(tp("r3"), 0755), 0);
	imgfix_write_file(tp("r3/f"), PUBLIC, strlen(PUBLIC));
	t = scan(tp("r3"));
	assert_int_equal(unlink(tp("r3/f")), 0);
	assert_int_equal(link(tp("secret"), tp("r3/f")), 0);
	expect_refused(t, "r3/f");
	image_tree_free(t);
}

static void expect_open_refused(int dirfd, const char *name, const struct stat *seen,
				const char *now)
{
	struct nectl_err err = {0};
	int fd = load_file_open(dirfd, name, name, seen->st_dev, seen->st_ino, &err);

	if (fd >= 0)
		fail_msg("%s opened after it was swapped", name);
	if (err.kind != NECTL_ERR_FILE || !strstr(err.msg, name) || !strstr(err.msg, now))
		fail_msg("error %d `%s`: wanted `%s` and `%s`", err.kind, err.msg, name, now);
}

/* The loader's own open, between its scan (lstat) and the read: what it
 * opens must be what the scan saw. */
static void test_loader_open_checks_what_the_scan_saw(void **state)
{
	struct nectl_err err = {0};
	struct stat seen;
	int dirfd, fd;

	(void)state;
	assert_int_equal(mkdir(tp("r4"), 0755), 0);
	dirfd = open(tp("r4"), O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	imgfix_write_file(tp("r4/f"), PUBLIC, strlen(PUBLIC));
	assert_int_equal(fstatat(dirfd, "f", &seen, AT_SYMLINK_NOFOLLOW), 0);
	fd = load_file_open(dirfd, "f", "f", seen.st_dev, seen.st_ino, &err);
	assert_true(fd >= 0);
	close(fd);
	swap_for_symlink(tp("r4/f"), tp("secret"));
	expect_open_refused(dirfd, "f", &seen, "it is now a symlink");
	assert_int_equal(unlink(tp("r4/f")), 0);
	assert_int_equal(link(tp("secret"), tp("r4/f")), 0);
	expect_open_refused(dirfd, "f", &seen, "it is now another file");
	assert_int_equal(unlink(tp("r4/f")), 0);
	assert_int_equal(mkfifo(tp("r4/f"), 0600), 0); /* must not hang */
	expect_open_refused(dirfd, "f", &seen, "it is now not a regular file");
	close(dirfd);
}

/* An OCI layout whose index.json, oci-layout or blobs directory is a
 * symlink: not followed, and said so. */
static void test_oci_layout_symlinks_are_not_followed(void **state)
{
	static const struct imgfix_entry files[] = {{.type = IMGFIX_REG, .path = "a", .data = "a"}};
	struct imgfix_layer layer = {files, 1, IMGFIX_PLAIN};
	struct imgfix_image img = {.arch = "amd64", .layers = &layer, .nlayers = 1};
	static const char *const links[] = {"index.json", "oci-layout", "blobs"};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		char *dir = tp("oci%zu", i), *real = tp("real%zu", i);
		struct nectl_err err = {0};
		struct image_config cfg;
		struct image_tree *t;

		imgfix_oci_layout(dir, &img, 1, IMGFIX_INDEX_PLAIN);
		assert_int_equal(rename(tp("oci%zu/%s", i, links[i]), real), 0);
		assert_int_equal(symlink(real, tp("oci%zu/%s", i, links[i])), 0);
		assert_int_equal(image_tree_new(&t, &err), 0);
		assert_int_equal(image_load_image(t, dir, "amd64", "rootfs", &cfg, NULL, &err), -1);
		if (err.kind != NECTL_ERR_BUILD || !strstr(err.msg, links[i]) ||
		    !strstr(err.msg, "symlink"))
			fail_msg("%s: error %d `%s`", links[i], err.kind, err.msg);
		image_tree_free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file_swapped_for_a_symlink_after_the_scan_is_not_read),
	    cmocka_unit_test(test_directory_swapped_for_a_symlink_after_the_scan_is_not_read),
	    cmocka_unit_test(test_file_swapped_for_a_hard_link_after_the_scan_is_not_read),
	    cmocka_unit_test(test_loader_open_checks_what_the_scan_saw),
	    cmocka_unit_test(test_oci_layout_symlinks_are_not_followed),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
