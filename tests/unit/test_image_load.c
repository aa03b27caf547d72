/* Image loaders: directories, tar layers with whiteouts and links, OCI
 * layouts and archives, `docker save` archives, and hostile inputs. The
 * fixtures (imgfix.c) are built in a private temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "imgfix.h"
#include "nectl/image.h"

static char tmpdir[] = "/tmp/nectl-test-image-XXXXXX";

/* A path in the test directory; a few stay valid at once. */
#define tp(...) imgfix_path(tmpdir, __VA_ARGS__)

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	/* Readable by the unprivileged child of test_dir_unreadable. */
	return chmod(tmpdir, 0755);
}

static int group_teardown(void **state)
{
	(void)state;
	return imgfix_rmtree(tmpdir);
}

static struct image_tree *tree_new(void)
{
	struct image_tree *t;
	struct nectl_err err = {0};

	assert_int_equal(image_tree_new(&t, &err), 0);
	return t;
}

static struct image_node *node(struct image_tree *t, const char *path, enum image_type type)
{
	struct image_node *n = image_tree_get(t, path);

	if (!n)
		fail_msg("no node `%s`", path);
	assert_int_equal(n->type, type);
	return n;
}

/* A node's bytes, wherever they are, NUL-terminated. */
static char *content(struct image_tree *t, const char *path)
{
	struct image_node *n = node(t, path, IMAGE_REG);
	struct nectl_err err = {0};
	char *buf = calloc(1, n->size + 1);
	FILE *fp;

	assert_non_null(buf);
	switch (n->data) {
	case IMAGE_DATA_NONE:
		assert_int_equal(n->size, 0);
		break;
	case IMAGE_DATA_SPOOL:
		assert_int_equal(image_tree_spool_read(t, n->spool_off, buf, n->size, &err), 0);
		break;
	case IMAGE_DATA_FILE:
		fp = fopen(n->data_path, "rb");
		assert_non_null(fp);
		assert_int_equal(fread(buf, 1, n->size, fp), n->size);
		fclose(fp);
		break;
	case IMAGE_DATA_MEM:
		memcpy(buf, n->mem, n->size);
		break;
	}
	return buf;
}

static void assert_content(struct image_tree *t, const char *path, const char *want)
{
	char *got = content(t, path);

	assert_string_equal(got, want);
	free(got);
}

/* Every node as "path type mode size target", sorted, plus file contents:
 * two loads of the same image must agree on all of it. */
static char *dump(struct image_tree *t)
{
	size_t count, len = 0;
	struct image_node *const *nodes = image_tree_sorted(t, &count);
	char *out = NULL;
	FILE *fp = open_memstream(&out, &len);

	assert_non_null(fp);
	for (size_t i = 0; i < count; i++) {
		const struct image_node *n = nodes[i];

		fprintf(fp, "%s %d %04o %llu %s", n->path, n->type, n->mode,
			(unsigned long long)n->size, n->target ? n->target : "-");
		if (n->type == IMAGE_REG) {
			char *c = content(t, n->path);

			fprintf(fp, " [%s]", c);
			free(c);
		}
		fputc('\n', fp);
	}
	fclose(fp);
	return out;
}

static void assert_err(int rc, const struct nectl_err *err, enum nectl_kind code,
		       const char *fragment)
{
	assert_int_equal(rc, -1);
	if (err->kind != code || !strstr(err->msg, fragment))
		fail_msg("got error %d `%s`, wanted %d with `%s`", err->kind, err->msg, code,
			 fragment);
	assert_null(strchr(err->msg, '\n'));
}

/* ---- directories ---- */

static void make_dir_fixture(const char *root)
{
	struct timespec times[2] = {{.tv_sec = 1600000000}, {.tv_sec = 1600000000}};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s;

	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(tp("dir/sub"), 0750), 0);
	imgfix_write_file(tp("dir/hello"), "hello", 5);
	imgfix_write_file(tp("dir/sub/suid"), "#!", 2);
	imgfix_write_file(tp("dir/empty"), "", 0);
	assert_int_equal(chmod(tp("dir/sub/suid"), 04755), 0);
	assert_int_equal(utimensat(AT_FDCWD, tp("dir/hello"), times, 0), 0);
	assert_int_equal(symlink("/usr/lib", tp("dir/lib")), 0);
	assert_int_equal(symlink("../hello", tp("dir/sub/rel")), 0);
	assert_int_equal(link(tp("dir/hello"), tp("dir/sub/hello2")), 0);
	assert_int_equal(mkfifo(tp("dir/fifo"), 0600), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", tp("dir/sock"));
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
}

static void test_dir_input(void **state)
{
	struct image_tree *t = tree_new();
	struct image_notes notes = {0};
	struct nectl_err err = {0};
	struct image_node *n;

	(void)state;
	make_dir_fixture(tp("dir"));
	assert_int_equal(image_load_dir(t, tp("dir"), "rootfs", &notes, &err), 0);
	n = node(t, "rootfs", IMAGE_DIR);
	assert_int_equal(n->mode, 0755);
	n = node(t, "rootfs/hello", IMAGE_REG);
	assert_int_equal(n->size, 5);
	assert_int_equal(n->mode, 0644);
	assert_int_equal(n->mtime, 1600000000);
	assert_int_equal(n->data, IMAGE_DATA_FILE);
	assert_string_equal(n->data_path, tp("dir/hello"));
	assert_content(t, "rootfs/hello", "hello");
	assert_int_equal(node(t, "rootfs/sub", IMAGE_DIR)->mode, 0750);
	assert_int_equal(node(t, "rootfs/sub/suid", IMAGE_REG)->mode, 04755);
	assert_int_equal(node(t, "rootfs/empty", IMAGE_REG)->data, IMAGE_DATA_NONE);
	assert_string_equal(node(t, "rootfs/lib", IMAGE_SYMLINK)->target, "/usr/lib");
	assert_string_equal(node(t, "rootfs/sub/rel", IMAGE_SYMLINK)->target, "../hello");
	/* Sorted walk: "hello" comes before "sub", so it carries the data. */
	assert_string_equal(node(t, "rootfs/sub/hello2", IMAGE_HARDLINK)->target, "rootfs/hello");
	assert_int_equal(node(t, "rootfs/fifo", IMAGE_FIFO)->mode, 0600);
	assert_null(image_tree_get(t, "rootfs/sock"));
	assert_int_equal(notes.count, 1);
	assert_non_null(strstr(notes.lines[0], tp("dir")));
	assert_non_null(strstr(notes.lines[0], "`sock` (a socket)"));
	assert_int_equal(image_tree_count(t), 9);
	image_notes_free(&notes);
	image_tree_free(t);
}

static void test_dir_errors(void **state)
{
	struct image_tree *t = tree_new();
	struct nectl_err err = {0};

	(void)state;
	assert_err(image_load_dir(t, tp("no-such-dir"), "", NULL, &err), &err, NECTL_ERR_FILE,
		   "no-such-dir");
	imgfix_write_file(tp("plainfile"), "x", 1);
	assert_err(image_load_dir(t, tp("plainfile"), "", NULL, &err), &err, NECTL_ERR_FILE,
		   "not a directory");
	image_tree_free(t);
}

/* Loads dir as an unprivileged user (root reads anything) in a child; returns
 * the error code and copies the message. */
static int load_dir_as_nobody(const char *dir, char *msg, size_t max)
{
	struct nectl_err err = {0};
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct image_tree *t;
		int rc;

		close(pipefd[0]);
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(100);
		if (image_tree_new(&t, &err) < 0)
			_exit(101);
		rc = image_load_dir(t, dir, "", NULL, &err);
		if (write(pipefd[1], err.msg, strlen(err.msg)) < 0)
			_exit(102);
		_exit(rc == 0 ? 0 : err.kind);
	}
	close(pipefd[1]);
	n = read(pipefd[0], msg, max - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_dir_unreadable(void **state)
{
	char msg[NECTL_ERR_MSG_MAX];

	(void)state;
	assert_int_equal(mkdir(tp("locked"), 0755), 0);
	imgfix_write_file(tp("locked/secret"), "x", 1);
	assert_int_equal(chmod(tp("locked/secret"), 0), 0);
	assert_int_equal(load_dir_as_nobody(tp("locked"), msg, sizeof(msg)), NECTL_ERR_FILE);
	assert_non_null(strstr(msg, "locked/secret"));
	assert_non_null(strstr(msg, "Permission denied"));

	assert_int_equal(mkdir(tp("locked2"), 0755), 0);
	assert_int_equal(mkdir(tp("locked2/private"), 0700), 0);
	imgfix_write_file(tp("locked2/private/x"), "x", 1);
	assert_int_equal(load_dir_as_nobody(tp("locked2"), msg, sizeof(msg)), NECTL_ERR_FILE);
	assert_non_null(strstr(msg, "locked2/private"));
}

/* ---- tar archives ---- */

static const struct imgfix_entry basic_entries[] = {
    {.type = IMGFIX_DIR, .path = "etc", .mode = 0755},
    {.type = IMGFIX_REG, .path = "etc/hostname", .data = "enclave\n", .mtime = 1650000000},
    {.type = IMGFIX_REG, .path = "usr/bin/tool", .data = "#!/bin/sh\n", .mode = 04711},
    {.type = IMGFIX_DIR, .path = "tmp", .mode = 01777},
    {.type = IMGFIX_SYMLINK, .path = "bin", .data = "usr/bin"},
    {.type = IMGFIX_CHR, .path = "dev/null", .mode = 0666, .major = 1, .minor = 3},
    {.type = IMGFIX_FIFO, .path = "run/pipe", .mode = 0600},
    {.type = IMGFIX_REG, .path = "empty", .data = "", .mode = 0600},
};

static void check_basic(struct image_tree *t, const char *prefix)
{
	char p[256];
	struct image_node *n;

	snprintf(p, sizeof(p), "%s%setc/hostname", prefix, *prefix ? "/" : "");
	n = node(t, p, IMAGE_REG);
	assert_int_equal(n->mtime, 1650000000);
	assert_int_equal(n->data, IMAGE_DATA_SPOOL);
	assert_content(t, p, "enclave\n");
	snprintf(p, sizeof(p), "%s%susr/bin/tool", prefix, *prefix ? "/" : "");
	assert_int_equal(node(t, p, IMAGE_REG)->mode, 04711);
	snprintf(p, sizeof(p), "%s%stmp", prefix, *prefix ? "/" : "");
	assert_int_equal(node(t, p, IMAGE_DIR)->mode, 01777);
	snprintf(p, sizeof(p), "%s%sbin", prefix, *prefix ? "/" : "");
	assert_string_equal(node(t, p, IMAGE_SYMLINK)->target, "usr/bin");
	snprintf(p, sizeof(p), "%s%sdev/null", prefix, *prefix ? "/" : "");
	n = node(t, p, IMAGE_CHR);
	assert_int_equal(n->rdev_major, 1);
	assert_int_equal(n->rdev_minor, 3);
	snprintf(p, sizeof(p), "%s%srun/pipe", prefix, *prefix ? "/" : "");
	node(t, p, IMAGE_FIFO);
	snprintf(p, sizeof(p), "%s%sempty", prefix, *prefix ? "/" : "");
	assert_int_equal(node(t, p, IMAGE_REG)->data, IMAGE_DATA_NONE);
	/* implicit parents */
	snprintf(p, sizeof(p), "%s%susr", prefix, *prefix ? "/" : "");
	assert_int_equal(node(t, p, IMAGE_DIR)->mode, 0755);
}

static void test_tar_compressions(void **state)
{
	static const enum imgfix_comp comps[] = {IMGFIX_PLAIN, IMGFIX_GZIP, IMGFIX_ZSTD, IMGFIX_XZ,
						 IMGFIX_BZIP2};

	(void)state;
	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		struct image_tree *t = tree_new();
		struct nectl_err err = {0};

		imgfix_tar_file(tp("basic%zu.tar", i), basic_entries,
				sizeof(basic_entries) / sizeof(basic_entries[0]), comps[i]);
		if (image_load_tar(t, tp("basic%zu.tar", i), i % 2 ? "rootfs" : "", false, NULL,
				   &err) != 0)
			fail_msg("%s", err.msg);
		check_basic(t, i % 2 ? "rootfs" : "");
		assert_int_equal(image_tree_count(t), 12 + (i % 2));
		image_tree_free(t);
	}
}

static void load_layer(struct image_tree *t, const char *name, const struct imgfix_entry *e,
		       size_t n)
{
	struct nectl_err err = {0};

	imgfix_tar_file(tp("%s", name), e, n, IMGFIX_GZIP);
	if (image_load_tar(t, tp("%s", name), "", true, NULL, &err) != 0)
		fail_msg("%s", err.msg);
}

static void test_whiteouts(void **state)
{
	static const struct imgfix_entry lower[] = {
	    {.type = IMGFIX_REG, .path = "etc/passwd", .data = "root"},
	    {.type = IMGFIX_REG, .path = "etc/shadow", .data = "x"},
	    {.type = IMGFIX_REG, .path = "etc/new", .data = "lower"},
	    {.type = IMGFIX_REG, .path = "var/cache/a/1", .data = "1"},
	    {.type = IMGFIX_REG, .path = "var/cache/b", .data = "2"},
	    {.type = IMGFIX_REG, .path = "opq1/old", .data = "old"},
	    {.type = IMGFIX_REG, .path = "opq1/sub/old", .data = "old"},
	    {.type = IMGFIX_REG, .path = "opq2/old", .data = "old"},
	    {.type = IMGFIX_REG, .path = "opq2/keep/old", .data = "old"},
	};
	static const struct imgfix_entry upper[] = {
	    /* the usual order: markers first */
	    {.type = IMGFIX_WHITEOUT, .path = "etc/shadow"},
	    {.type = IMGFIX_WHITEOUT, .path = "var/cache"},
	    {.type = IMGFIX_WHITEOUT, .path = "nothing/here"},
	    {.type = IMGFIX_OPAQUE, .path = "opq1"},
	    {.type = IMGFIX_REG, .path = "opq1/new", .data = "new"},
	    /* entries first, then the markers: they still only hide
	     * lower layers */
	    {.type = IMGFIX_REG, .path = "opq2/new", .data = "new"},
	    {.type = IMGFIX_REG, .path = "opq2/keep/new", .data = "new"},
	    {.type = IMGFIX_OPAQUE, .path = "opq2"},
	    {.type = IMGFIX_REG, .path = "etc/new", .data = "upper"},
	    {.type = IMGFIX_WHITEOUT, .path = "etc/new"},
	};
	struct image_tree *t = tree_new();
	struct nectl_err err = {0};

	(void)state;
	load_layer(t, "lower.tar", lower, sizeof(lower) / sizeof(lower[0]));
	load_layer(t, "upper.tar", upper, sizeof(upper) / sizeof(upper[0]));
	assert_content(t, "etc/passwd", "root");
	assert_null(image_tree_get(t, "etc/shadow"));
	assert_null(image_tree_get(t, "var/cache"));
	assert_null(image_tree_get(t, "var/cache/a/1"));
	node(t, "var", IMAGE_DIR);
	assert_null(image_tree_get(t, "nothing"));
	assert_null(image_tree_get(t, "opq1/old"));
	assert_null(image_tree_get(t, "opq1/sub"));
	assert_content(t, "opq1/new", "new");
	assert_null(image_tree_get(t, "opq2/old"));
	assert_null(image_tree_get(t, "opq2/keep/old"));
	assert_content(t, "opq2/new", "new");
	assert_content(t, "opq2/keep/new", "new");
	assert_content(t, "etc/new", "upper");
	assert_null(image_tree_get(t, "etc/.wh.shadow"));
	assert_null(image_tree_get(t, "opq1/.wh..wh..opq"));
	image_tree_free(t);

	/* Without whiteout processing the markers are ordinary files. */
	t = tree_new();
	assert_int_equal(image_load_tar(t, tp("upper.tar"), "", false, NULL, &err), 0);
	node(t, "etc/.wh.shadow", IMAGE_REG);
	node(t, "opq1/.wh..wh..opq", IMAGE_REG);
	image_tree_free(t);
}

static void test_opaque_root_and_sparse(void **state)
{
	static const struct imgfix_entry lower[] = {
	    {.type = IMGFIX_REG, .path = "a", .data = "a"},
	    {.type = IMGFIX_REG, .path = "d/b", .data = "b"},
	};
	static const struct imgfix_entry upper[] = {
	    {.type = IMGFIX_REG, .path = "c", .data = "c"},
	    {.type = IMGFIX_OPAQUE, .path = ""},
	    {.type = IMGFIX_REG, .path = "sparse", .data = "END", .hole = 200000},
	};
	struct image_tree *t;
	struct nectl_err err = {0};
	struct image_node *n;
	char *got;

	(void)state;
	for (int prefixed = 0; prefixed < 2; prefixed++) {
		const char *pre = prefixed ? "rootfs" : "";

		t = tree_new();
		imgfix_tar_file(tp("oroot1.tar"), lower, 2, IMGFIX_PLAIN);
		imgfix_tar_file(tp("oroot2.tar"), upper, 3, IMGFIX_XZ);
		assert_int_equal(image_load_tar(t, tp("oroot1.tar"), pre, true, NULL, &err), 0);
		assert_int_equal(image_load_tar(t, tp("oroot2.tar"), pre, true, NULL, &err), 0);
		assert_int_equal(image_tree_count(t), 2 + prefixed);
		n = node(t, prefixed ? "rootfs/sparse" : "sparse", IMAGE_REG);
		assert_int_equal(n->size, 200003);
		got = content(t, n->path);
		for (size_t i = 0; i < 200000; i++)
			if (got[i])
				fail_msg("byte %zu of the hole is %d", i, got[i]);
		assert_string_equal(got + 200000, "END");
		free(got);
		assert_content(t, prefixed ? "rootfs/c" : "c", "c");
		image_tree_free(t);
	}
}

static void test_links(void **state)
{
	static const struct imgfix_entry layer1[] = {
	    {.type = IMGFIX_REG, .path = "./usr/bin/perl5", .data = "PERL", .mode = 0755},
	    {.type = IMGFIX_HARDLINK, .path = "usr/bin/perl", .data = "./usr/bin/perl5"},
	    {.type = IMGFIX_HARDLINK, .path = "/usr/bin/perl-again", .data = "/usr/bin/perl"},
	    {.type = IMGFIX_SYMLINK, .path = "usr/lib64", .data = "lib"},
	    {.type = IMGFIX_SYMLINK, .path = "lib", .data = "/usr/lib"},
	};
	static const struct imgfix_entry layer2[] = {
	    {.type = IMGFIX_WHITEOUT, .path = "usr/bin/perl5"},
	};
	static const struct imgfix_entry layer3[] = {
	    {.type = IMGFIX_REG, .path = "usr/bin/perl", .data = "NEW"},
	};
	struct image_tree *t = tree_new();
	struct image_node *n;

	(void)state;
	load_layer(t, "links1.tar", layer1, sizeof(layer1) / sizeof(layer1[0]));
	n = node(t, "usr/bin/perl", IMAGE_HARDLINK);
	assert_string_equal(n->target, "usr/bin/perl5");
	assert_int_equal(n->mode, 0755);
	/* a link to a link names the file itself */
	assert_string_equal(node(t, "usr/bin/perl-again", IMAGE_HARDLINK)->target, "usr/bin/perl5");
	assert_string_equal(node(t, "usr/lib64", IMAGE_SYMLINK)->target, "lib");
	assert_string_equal(node(t, "lib", IMAGE_SYMLINK)->target, "/usr/lib");

	/* The file goes; its links keep the data, as on a file system. */
	load_layer(t, "links2.tar", layer2, 1);
	assert_null(image_tree_get(t, "usr/bin/perl5"));
	assert_content(t, "usr/bin/perl", "PERL");
	assert_int_equal(node(t, "usr/bin/perl", IMAGE_REG)->mode, 0755);
	assert_string_equal(node(t, "usr/bin/perl-again", IMAGE_HARDLINK)->target, "usr/bin/perl");

	/* Replaced by a new file: the remaining link keeps the old data. */
	load_layer(t, "links3.tar", layer3, 1);
	assert_content(t, "usr/bin/perl", "NEW");
	assert_content(t, "usr/bin/perl-again", "PERL");
	image_tree_free(t);
}

static void expect_tar_error(const struct imgfix_entry *e, size_t n, const char *name,
			     const char *fragment)
{
	struct image_tree *t = tree_new();
	struct nectl_err err = {0};

	imgfix_tar_file(tp("%s", name), e, n, IMGFIX_PLAIN);
	assert_err(image_load_tar(t, tp("%s", name), "", true, NULL, &err), &err, NECTL_ERR_BUILD,
		   fragment);
	assert_non_null(strstr(err.msg, tp("%s", name)));
	image_tree_free(t);
}

static void test_hostile_entries(void **state)
{
	static const struct imgfix_entry climb[] = {
	    {.type = IMGFIX_REG, .path = "ok", .data = "1"},
	    {.type = IMGFIX_REG, .path = "../etc/passwd", .data = "x"},
	};
	static const struct imgfix_entry climb2[] = {
	    {.type = IMGFIX_REG, .path = "a/../../etc/passwd", .data = "x"},
	};
	static const struct imgfix_entry under_symlink[] = {
	    {.type = IMGFIX_SYMLINK, .path = "lib", .data = "/usr/lib"},
	    {.type = IMGFIX_REG, .path = "lib/x", .data = "x"},
	};
	static const struct imgfix_entry link_missing[] = {
	    {.type = IMGFIX_HARDLINK, .path = "a", .data = "missing"},
	};
	static const struct imgfix_entry link_dir[] = {
	    {.type = IMGFIX_DIR, .path = "d"},
	    {.type = IMGFIX_HARDLINK, .path = "a", .data = "d"},
	};
	static const struct imgfix_entry link_self[] = {
	    {.type = IMGFIX_DIR, .path = "d"},
	    {.type = IMGFIX_REG, .path = "d/f", .data = "f"},
	    {.type = IMGFIX_HARDLINK, .path = "d", .data = "d/f"},
	};
	static const struct imgfix_entry newline[] = {
	    {.type = IMGFIX_REG, .path = "../evil\nname", .data = "x"},
	};
	static const struct imgfix_entry link_climb[] = {
	    {.type = IMGFIX_HARDLINK, .path = "a", .data = "../../etc/shadow"},
	};
	static char longname[5000];
	struct imgfix_entry toolong[] = {{.type = IMGFIX_REG, .path = longname, .data = "x"}};

	(void)state;
	expect_tar_error(climb, 2, "climb.tar",
			 "entry `../etc/passwd`: path `../etc/passwd` "
			 "climbs out of the root");
	expect_tar_error(climb2, 1, "climb2.tar", "climbs out of the root");
	expect_tar_error(
	    under_symlink, 2, "undersym.tar",
	    "entry `lib/x`: `lib/x` would be created inside `lib`, which is a symlink");
	expect_tar_error(link_missing, 1, "linkmiss.tar",
			 "entry `a`: hard link to `missing`, which is not in the image");
	expect_tar_error(link_dir, 2, "linkdir.tar", "not a regular file");
	expect_tar_error(link_climb, 1, "linkclimb.tar", "climbs out of the root");
	expect_tar_error(link_self, 3, "linkself.tar", "would replace its own target");
	expect_tar_error(newline, 1, "newline.tar", "entry `../evil?name`");
	memset(longname, 'a', sizeof(longname) - 1);
	for (size_t i = 100; i < sizeof(longname) - 1; i += 100)
		longname[i] = '/';
	expect_tar_error(toolong, 1, "long.tar", "longer than 4096");
}

static void test_absolute_paths(void **state)
{
	static const struct imgfix_entry abs[] = {
	    {.type = IMGFIX_REG, .path = "/etc/motd", .data = "hi"},
	    {.type = IMGFIX_REG, .path = "./usr//share/../lib/x", .data = "x"},
	    {.type = IMGFIX_DIR, .path = "./"},
	    {.type = IMGFIX_DIR, .path = "/"},
	};
	struct image_tree *t = tree_new();
	struct nectl_err err = {0};

	(void)state;
	imgfix_tar_file(tp("abs.tar"), abs, 4, IMGFIX_PLAIN);
	assert_int_equal(image_load_tar(t, tp("abs.tar"), "/rootfs/", true, NULL, &err), 0);
	assert_content(t, "rootfs/etc/motd", "hi");
	assert_content(t, "rootfs/usr/lib/x", "x");
	assert_int_equal(node(t, "rootfs", IMAGE_DIR)->mode, 0755);
	assert_int_equal(image_tree_count(t), 6);
	image_tree_free(t);
}

static void test_corrupt_tar(void **state)
{
	struct image_tree *t = tree_new();
	struct nectl_err err = {0};
	struct imgfix_buf b;

	(void)state;
	imgfix_write_file(tp("garbage.tar"), "this is not a tar archive at all", 32);
	assert_err(image_load_tar(t, tp("garbage.tar"), "", false, NULL, &err), &err,
		   NECTL_ERR_BUILD, tp("garbage.tar"));
	imgfix_tar(basic_entries, sizeof(basic_entries) / sizeof(basic_entries[0]), IMGFIX_GZIP,
		   &b);
	imgfix_write_file(tp("cut.tar.gz"), b.data, b.len / 2);
	imgfix_buf_free(&b);
	assert_err(image_load_tar(t, tp("cut.tar.gz"), "", false, NULL, &err), &err,
		   NECTL_ERR_BUILD, tp("cut.tar.gz"));
	imgfix_tar(basic_entries, sizeof(basic_entries) / sizeof(basic_entries[0]), IMGFIX_PLAIN,
		   &b);
	imgfix_write_file(tp("cut.tar"), b.data, 512 * 3 + 100);
	imgfix_buf_free(&b);
	assert_err(image_load_tar(t, tp("cut.tar"), "", false, NULL, &err), &err, NECTL_ERR_BUILD,
		   "cut.tar: ");
	assert_err(image_load_tar(t, tp("missing.tar"), "", false, NULL, &err), &err,
		   NECTL_ERR_FILE, "missing.tar");
	/* an empty file is an empty archive */
	imgfix_write_file(tp("empty.tar"), "", 0);
	assert_int_equal(image_load_tar(t, tp("empty.tar"), "rootfs", false, NULL, &err), 0);
	node(t, "rootfs", IMAGE_DIR);
	image_tree_free(t);
}

/* ---- container images ---- */

static const char *const app_entrypoint[] = {"/usr/bin/app", NULL};
static const char *const app_cmd[] = {"--serve", "--port=8000", NULL};
static const char *const app_env[] = {"PATH=/usr/bin:/bin", "GREETING=hello world", NULL};

static const struct imgfix_entry img_l0[] = {
    {.type = IMGFIX_REG, .path = "marker", .data = "m"},
};
static const struct imgfix_entry img_l1[] = {
    {.type = IMGFIX_DIR, .path = "etc"},
    {.type = IMGFIX_REG, .path = "etc/os-release", .data = "ID=test\n"},
    {.type = IMGFIX_REG, .path = "usr/bin/app", .data = "APP1", .mode = 0755},
    {.type = IMGFIX_HARDLINK, .path = "usr/bin/app-link", .data = "usr/bin/app"},
    {.type = IMGFIX_SYMLINK, .path = "bin", .data = "usr/bin"},
    {.type = IMGFIX_REG, .path = "var/cache/x", .data = "cache"},
    {.type = IMGFIX_REG, .path = "opt/old", .data = "old"},
    {.type = IMGFIX_REG, .path = "sbin/su", .data = "SU", .mode = 04755},
};
static const struct imgfix_entry img_l2[] = {
    {.type = IMGFIX_WHITEOUT, .path = "var/cache"},
    {.type = IMGFIX_REG, .path = "opt/new", .data = "new"},
    {.type = IMGFIX_OPAQUE, .path = "opt"},
    {.type = IMGFIX_REG, .path = "usr/bin/app", .data = "APP2", .mode = 0755},
};

static const struct imgfix_layer app_layers[] = {
    {img_l0, 1, IMGFIX_PLAIN},
    {img_l1, sizeof(img_l1) / sizeof(img_l1[0]), IMGFIX_GZIP},
    {img_l2, sizeof(img_l2) / sizeof(img_l2[0]), IMGFIX_ZSTD},
    {img_l0, 1, IMGFIX_PLAIN}, /* repeated: docker save links the copy */
};

static const struct imgfix_image app_image = {
    .arch = "amd64",
    .os = "linux",
    .cmd = app_cmd,
    .entrypoint = app_entrypoint,
    .env = app_env,
    .working_dir = "/srv",
    .layers = app_layers,
    .nlayers = 4,
};

static struct image_tree *load_image_ok(const char *path, const char *arch, const char *prefix,
					struct image_config *cfg)
{
	struct image_tree *t = tree_new();
	struct nectl_err err = {0};

	if (image_load_image(t, path, arch, prefix, cfg, NULL, &err) != 0)
		fail_msg("%s", err.msg);
	return t;
}

static void expect_image_error(const char *path, const char *arch, enum nectl_kind code,
			       const char *fragment)
{
	struct image_tree *t = tree_new();
	struct image_config cfg;
	struct nectl_err err = {0};

	assert_err(image_load_image(t, path, arch, "", &cfg, NULL, &err), &err, code, fragment);
	assert_null(cfg.config_json);
	image_tree_free(t);
}

static void check_app_tree(struct image_tree *t)
{
	assert_content(t, "rootfs/marker", "m");
	assert_content(t, "rootfs/usr/bin/app", "APP2");
	/* the link kept the first layer's file */
	assert_content(t, "rootfs/usr/bin/app-link", "APP1");
	assert_int_equal(node(t, "rootfs/sbin/su", IMAGE_REG)->mode, 04755);
	assert_string_equal(node(t, "rootfs/bin", IMAGE_SYMLINK)->target, "usr/bin");
	assert_null(image_tree_get(t, "rootfs/var/cache"));
	assert_null(image_tree_get(t, "rootfs/opt/old"));
	assert_content(t, "rootfs/opt/new", "new");
}

static void check_app_config(const struct image_config *cfg)
{
	assert_string_equal(cfg->entrypoint[0], "/usr/bin/app");
	assert_null(cfg->entrypoint[1]);
	assert_string_equal(cfg->cmd[0], "--serve");
	assert_string_equal(cfg->cmd[1], "--port=8000");
	assert_null(cfg->cmd[2]);
	assert_string_equal(cfg->env[1], "GREETING=hello world");
	assert_string_equal(cfg->working_dir, "/srv");
	assert_string_equal(cfg->architecture, "amd64");
	assert_string_equal(cfg->os, "linux");
	assert_non_null(strstr(cfg->config_json, "\"WorkingDir\":\"/srv\""));
}

static void test_image_formats_agree(void **state)
{
	static const char *const sources[] = {"app.oci.tar", "app.oci.tar.gz", "app.docker.tar",
					      "app.docker-new.tar", "app.docker.tar.gz"};
	struct image_config cfg, other;
	struct image_tree *t;
	char *want;

	(void)state;
	imgfix_oci_layout(tp("app-layout"), &app_image, 1, IMGFIX_INDEX_PLAIN);
	imgfix_tar_dir(tp("app-layout"), tp("app.oci.tar"), IMGFIX_PLAIN);
	imgfix_tar_dir(tp("app-layout"), tp("app.oci.tar.gz"), IMGFIX_GZIP);
	imgfix_docker_save(tp("app.docker.tar"), &app_image, 1, true, IMGFIX_PLAIN);
	imgfix_docker_save(tp("app.docker-new.tar"), &app_image, 1, false, IMGFIX_PLAIN);
	imgfix_docker_save(tp("app.docker.tar.gz"), &app_image, 1, true, IMGFIX_GZIP);

	t = load_image_ok(tp("app-layout"), "amd64", "rootfs", &cfg);
	check_app_tree(t);
	check_app_config(&cfg);
	want = dump(t);
	image_tree_free(t);
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		char *got;

		t = load_image_ok(tp("%s", sources[i]), "amd64", "rootfs", &other);
		got = dump(t);
		assert_string_equal(got, want);
		assert_string_equal(other.image_id, cfg.image_id);
		assert_string_equal(other.config_json, cfg.config_json);
		check_app_config(&other);
		free(got);
		image_config_free(&other);
		image_tree_free(t);
	}
	free(want);
	image_config_free(&cfg);
}

static void test_image_config_fields(void **state)
{
	static const struct imgfix_entry files[] = {{.type = IMGFIX_REG, .path = "f", .data = "f"}};
	static const struct imgfix_layer layer = {files, 1, IMGFIX_GZIP};
	static const char *const ep[] = {"/bin/server", "-v", NULL};
	static const char *const cmd[] = {"/bin/sh", "-c", "echo hi", NULL};
	struct imgfix_image img = {.arch = "arm64", .os = "linux", .layers = &layer, .nlayers = 1};
	struct imgfix_desc manifest, config;
	struct image_config cfg;
	struct image_tree *t;
	char expect_id[80];

	(void)state;
	/* Entrypoint only */
	img.entrypoint = ep;
	imgfix_oci_layout(tp("ep-only"), &img, 1, IMGFIX_INDEX_PLATFORMS);
	t = load_image_ok(tp("ep-only"), "arm64", "", &cfg);
	assert_null(cfg.cmd);
	assert_string_equal(cfg.entrypoint[0], "/bin/server");
	assert_string_equal(cfg.entrypoint[1], "-v");
	assert_null(cfg.entrypoint[2]);
	assert_null(cfg.env);
	assert_null(cfg.working_dir);
	assert_content(t, "f", "f");
	image_config_free(&cfg);
	image_tree_free(t);

	/* Cmd and Entrypoint, Env and WorkingDir; the image id is the config
	 * blob's digest and config_json its text. */
	img.cmd = cmd;
	img.env = app_env;
	img.working_dir = "/work dir";
	assert_int_equal(mkdir(tp("both"), 0755), 0);
	imgfix_oci_image(tp("both"), &img, &manifest, &config);
	imgfix_oci_layout(tp("both"), &img, 1, IMGFIX_INDEX_PLAIN);
	t = load_image_ok(tp("both"), "aarch64", "", &cfg);
	assert_string_equal(cfg.cmd[2], "echo hi");
	assert_null(cfg.cmd[3]);
	assert_string_equal(cfg.entrypoint[0], "/bin/server");
	assert_string_equal(cfg.env[0], "PATH=/usr/bin:/bin");
	assert_null(cfg.env[2]);
	assert_string_equal(cfg.working_dir, "/work dir");
	assert_string_equal(cfg.architecture, "arm64");
	assert_string_equal(cfg.image_id, config.digest);
	snprintf(expect_id, sizeof(expect_id), "%s", config.digest);
	assert_int_equal(strlen(cfg.config_json), config.size);
	image_config_free(&cfg);
	image_tree_free(t);
}

static const struct imgfix_entry arch_amd64[] = {
    {.type = IMGFIX_REG, .path = "arch", .data = "amd64"}};
static const struct imgfix_entry arch_arm64[] = {
    {.type = IMGFIX_REG, .path = "arch", .data = "arm64"}};
static const struct imgfix_entry arch_s390x[] = {
    {.type = IMGFIX_REG, .path = "arch", .data = "s390x"}};
static const struct imgfix_layer arch_layers[] = {
    {arch_amd64, 1, IMGFIX_GZIP}, {arch_arm64, 1, IMGFIX_ZSTD}, {arch_s390x, 1, IMGFIX_PLAIN}};
static const struct imgfix_image arch_images[] = {
    {.arch = "amd64",
     .os = "linux",
     .entrypoint = app_entrypoint,
     .layers = &arch_layers[0],
     .nlayers = 1},
    {.arch = "arm64",
     .os = "linux",
     .variant = "v8",
     .entrypoint = app_entrypoint,
     .layers = &arch_layers[1],
     .nlayers = 1},
    {.arch = "s390x",
     .os = "linux",
     .entrypoint = app_entrypoint,
     .layers = &arch_layers[2],
     .nlayers = 1},
};

static void expect_arch(const char *path, const char *arch, const char *want)
{
	struct image_config cfg;
	struct image_tree *t = load_image_ok(path, arch, "", &cfg);

	assert_content(t, "arch", want);
	assert_string_equal(cfg.architecture, want);
	image_config_free(&cfg);
	image_tree_free(t);
}

static void test_image_multiarch(void **state)
{
	(void)state;
	imgfix_oci_layout(tp("multi"), arch_images, 3, IMGFIX_INDEX_PLATFORMS);
	expect_arch(tp("multi"), "arm64", "arm64");
	expect_arch(tp("multi"), "amd64", "amd64");
	expect_arch(tp("multi"), "x86_64", "amd64");
	expect_image_error(
	    tp("multi"), "riscv64", NECTL_ERR_BUILD,
	    "multi: no manifest for arch riscv64 (available: amd64, arm64/v8, s390x)");

	imgfix_oci_layout(tp("nested"), arch_images, 3, IMGFIX_INDEX_NESTED);
	imgfix_tar_dir(tp("nested"), tp("nested.tar"), IMGFIX_PLAIN);
	expect_arch(tp("nested.tar"), "s390x", "s390x");
	expect_arch(tp("nested.tar"), "arm64", "arm64");

	/* No platforms in the index: the configs say which is which. */
	imgfix_oci_layout(tp("plain-multi"), arch_images, 3, IMGFIX_INDEX_PLAIN);
	expect_arch(tp("plain-multi"), "s390x", "s390x");
	expect_image_error(tp("plain-multi"), "ppc64le", NECTL_ERR_BUILD,
			   "(available: amd64, arm64, s390x)");

	/* The example of the documentation. */
	{
		const struct imgfix_image two[] = {arch_images[0], arch_images[2]};

		imgfix_oci_layout(tp("two"), two, 2, IMGFIX_INDEX_PLATFORMS);
		imgfix_tar_dir(tp("two"), tp("image.tar"), IMGFIX_PLAIN);
		expect_image_error(
		    tp("image.tar"), "arm64", NECTL_ERR_BUILD,
		    "image.tar: no manifest for arch arm64 (available: amd64, s390x)");
	}

	/* docker save: several images are told apart by their configs; a
	 * single one for another architecture is refused by name. */
	imgfix_docker_save(tp("multi.docker.tar"), arch_images, 3, true, IMGFIX_PLAIN);
	expect_arch(tp("multi.docker.tar"), "arm64", "arm64");
	imgfix_docker_save(tp("one.docker.tar"), arch_images, 1, true, IMGFIX_PLAIN);
	expect_image_error(tp("one.docker.tar"), "arm64", NECTL_ERR_BUILD,
			   "one.docker.tar: the image is for arch amd64, not arm64");
}

/* Flips the first byte of `needle` in a file. */
static void corrupt_file(const char *path, const char *needle, char to)
{
	FILE *fp = fopen(path, "r+b");
	char buf[65536];
	size_t len;
	char *at;

	assert_non_null(fp);
	len = fread(buf, 1, sizeof(buf), fp);
	at = memmem(buf, len, needle, strlen(needle));
	assert_non_null(at);
	fseek(fp, at - buf, SEEK_SET);
	fputc(to, fp);
	fclose(fp);
}

static void blob_path(const char *layout, const void *data, size_t len, char *out, size_t max)
{
	char hex[65];

	imgfix_sha256(data, len, hex);
	snprintf(out, max, "%s/blobs/sha256/%s", layout, hex);
}

static void test_image_digests(void **state)
{
	static const struct imgfix_entry files[] = {
	    {.type = IMGFIX_REG, .path = "data", .data = "CORRUPTME"}};
	static const struct imgfix_layer layer = {files, 1, IMGFIX_PLAIN};
	static const struct imgfix_image img = {.arch = "amd64",
						.os = "linux",
						.working_dir = "/CORRUPTDIR",
						.layers = &layer,
						.nlayers = 1};
	struct imgfix_desc manifest, config;
	struct imgfix_buf tar;
	char path[4400], hex[65];

	(void)state;
	/* a layer blob changed after the manifest was written */
	imgfix_oci_layout(tp("dig1"), &img, 1, IMGFIX_INDEX_PLAIN);
	imgfix_tar(files, 1, IMGFIX_PLAIN, &tar);
	blob_path(tp("dig1"), tar.data, tar.len, path, sizeof(path));
	imgfix_sha256(tar.data, tar.len, hex);
	imgfix_buf_free(&tar);
	corrupt_file(path, "CORRUPTME", 'X');
	expect_image_error(tp("dig1"), "amd64", NECTL_ERR_BUILD, "does not match its digest");
	expect_image_error(tp("dig1"), "amd64", NECTL_ERR_BUILD, hex);
	imgfix_tar_dir(tp("dig1"), tp("dig1.tar"), IMGFIX_PLAIN);
	expect_image_error(tp("dig1.tar"), "amd64", NECTL_ERR_BUILD, "does not match its digest");

	/* a config blob changed */
	assert_int_equal(mkdir(tp("dig2"), 0755), 0);
	imgfix_oci_image(tp("dig2"), &img, &manifest, &config);
	imgfix_oci_layout(tp("dig2"), &img, 1, IMGFIX_INDEX_PLAIN);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", tp("dig2"), config.digest + 7);
	corrupt_file(path, "CORRUPTDIR", 'X');
	expect_image_error(tp("dig2"), "amd64", NECTL_ERR_BUILD, config.digest + 7);

	/* a layer blob missing altogether */
	imgfix_oci_layout(tp("dig3"), &img, 1, IMGFIX_INDEX_PLAIN);
	imgfix_tar(files, 1, IMGFIX_PLAIN, &tar);
	blob_path(tp("dig3"), tar.data, tar.len, path, sizeof(path));
	imgfix_buf_free(&tar);
	assert_int_equal(unlink(path), 0);
	expect_image_error(tp("dig3"), "amd64", NECTL_ERR_BUILD, "No such file");

	/* classic docker save: layers are checked against the diff_ids */
	imgfix_docker_save(tp("dig4.tar"), &img, 1, true, IMGFIX_PLAIN);
	corrupt_file(tp("dig4.tar"), "CORRUPTME", 'X');
	expect_image_error(tp("dig4.tar"), "amd64", NECTL_ERR_BUILD, "does not match its digest");
}

static void write_index(const char *dir, const char *manifest_digest, long long size,
			const char *media_type)
{
	char text[512], path[4400];

	assert_int_equal(mkdir(dir, 0755) == 0 || errno == EEXIST, 1);
	snprintf(text, sizeof(text),
		 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
		 "\"size\":%lld}]}",
		 media_type, manifest_digest, size);
	snprintf(path, sizeof(path), "%s/index.json", dir);
	imgfix_write_file(path, text, strlen(text));
}

#define MT_TAR "application/vnd.oci.image.layer.v1.tar"

/* A layout whose manifest lists one real layer with a size off by delta
 * and the given media type. */
static void bad_manifest(const char *dir, int delta, const char *media_type)
{
	static const struct imgfix_entry files[] = {{.type = IMGFIX_REG, .path = "f", .data = "f"}};
	const char *config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
	struct imgfix_desc layer, conf, manifest;
	struct imgfix_buf tar;
	char text[1024];

	assert_int_equal(mkdir(dir, 0755), 0);
	imgfix_tar(files, 1, IMGFIX_PLAIN, &tar);
	imgfix_blob(dir, tar.data, tar.len, &layer);
	imgfix_buf_free(&tar);
	imgfix_blob(dir, config, strlen(config), &conf);
	snprintf(text, sizeof(text),
		 "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":%zu},\"layers\":"
		 "[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
		 conf.digest, conf.size, media_type, layer.digest, layer.size + (size_t)delta);
	imgfix_blob(dir, text, strlen(text), &manifest);
	write_index(dir, manifest.digest, (long long)manifest.size,
		    "application/vnd.oci.image.manifest.v1+json");
}

static void test_image_hostile(void **state)
{
	const char *mt = "application/vnd.oci.image.manifest.v1+json";
	struct imgfix_desc d;
	char path[4400], *text, *p;
	size_t cap = 4200 * 200;

	(void)state;
	/* more layers than anyone builds */
	text = malloc(cap);
	assert_non_null(text);
	p = text + sprintf(text,
			   "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:%064d\","
			   "\"size\":2},\"layers\":[",
			   0);
	for (int i = 0; i < 4097; i++)
		p += sprintf(p, "%s{\"digest\":\"sha256:%064d\",\"size\":1}", i ? "," : "", 1);
	strcpy(p, "]}");
	assert_int_equal(mkdir(tp("many"), 0755), 0);
	imgfix_blob(tp("many"), text, strlen(text), &d);
	write_index(tp("many"), d.digest, (long long)d.size, mt);
	expect_image_error(tp("many"), "amd64", NECTL_ERR_BUILD, "more than 4096 layers");
	free(text);

	/* JSON documents over 16 MiB, real or claimed */
	text = malloc((17u << 20) + 3);
	assert_non_null(text);
	memset(text, ' ', 17u << 20);
	strcpy(text + (17u << 20), "{}");
	assert_int_equal(mkdir(tp("huge"), 0755), 0);
	snprintf(path, sizeof(path), "%s/index.json", tp("huge"));
	imgfix_write_file(path, text, strlen(text));
	free(text);
	expect_image_error(tp("huge"), "amd64", NECTL_ERR_BUILD, "larger than");
	write_index(tp("claims"),
		    "sha256:"
		    "0000000000000000000000000000000000000000000000000000000000000000",
		    1LL << 40, mt);
	expect_image_error(tp("claims"), "amd64", NECTL_ERR_BUILD, "larger than");

	/* digests nectl cannot check, or that name no blob */
	write_index(tp("sha512"), "sha512:00", 2, mt);
	expect_image_error(tp("sha512"), "amd64", NECTL_ERR_BUILD, "only sha256");
	write_index(tp("dotdot"), "sha256:../../../../etc/passwd", 2, mt);
	expect_image_error(tp("dotdot"), "amd64", NECTL_ERR_BUILD, "only sha256");
	write_index(tp("absent"),
		    "sha256:"
		    "1111111111111111111111111111111111111111111111111111111111111111",
		    2, mt);
	expect_image_error(tp("absent"), "amd64", NECTL_ERR_BUILD, "absent/blobs/sha256/1111");

	/* a layer whose size or media type is not what the manifest says */
	bad_manifest(tp("badsize"), 1, MT_TAR);
	expect_image_error(tp("badsize"), "amd64", NECTL_ERR_BUILD, "its descriptor says");
	bad_manifest(tp("badtype"), 0, "application/vnd.in-toto+json");
	expect_image_error(tp("badtype"), "amd64", NECTL_ERR_BUILD,
			   "has media type application/vnd.in-toto+json");

	/* not JSON, not an image */
	assert_int_equal(mkdir(tp("badjson"), 0755), 0);
	snprintf(path, sizeof(path), "%s/index.json", tp("badjson"));
	imgfix_write_file(path, "{\"manifests\": [", 15);
	expect_image_error(tp("badjson"), "amd64", NECTL_ERR_BUILD, "index.json: invalid JSON");
	assert_int_equal(mkdir(tp("nothing"), 0755), 0);
	expect_image_error(tp("nothing"), "amd64", NECTL_ERR_BUILD,
			   "no index.json or manifest.json");
	expect_image_error(tp("no-such-image"), "amd64", NECTL_ERR_FILE, "no-such-image");
	imgfix_write_file(tp("junk.tar"), "junk junk junk", 14);
	expect_image_error(tp("junk.tar"), "amd64", NECTL_ERR_BUILD, "junk.tar");
}

static void test_image_layer_paths(void **state)
{
	static const struct imgfix_entry evil[] = {
	    {.type = IMGFIX_SYMLINK, .path = "lib", .data = "/usr/lib"},
	    {.type = IMGFIX_REG, .path = "lib/x", .data = "x"},
	};
	static const struct imgfix_entry climb[] = {
	    {.type = IMGFIX_REG, .path = "../etc/passwd", .data = "x"},
	};
	static const struct imgfix_layer ok = {img_l0, 1, IMGFIX_GZIP};
	struct imgfix_layer layers[2] = {ok, {evil, 2, IMGFIX_GZIP}};
	struct imgfix_image img = {.arch = "amd64", .layers = layers, .nlayers = 2};

	(void)state;
	imgfix_oci_layout(tp("evil"), &img, 1, IMGFIX_INDEX_PLAIN);
	expect_image_error(tp("evil"), "amd64", NECTL_ERR_BUILD, "evil: layer 2/2 (sha256:");
	expect_image_error(
	    tp("evil"), "amd64", NECTL_ERR_BUILD,
	    "entry `lib/x`: `lib/x` would be created inside `lib`, which is a symlink");
	layers[1] = (struct imgfix_layer){climb, 1, IMGFIX_ZSTD};
	imgfix_docker_save(tp("climb.docker.tar"), &img, 1, false, IMGFIX_PLAIN);
	expect_image_error(tp("climb.docker.tar"), "amd64", NECTL_ERR_BUILD,
			   "climb.docker.tar: layer 2/2 (sha256:");
	expect_image_error(tp("climb.docker.tar"), "amd64", NECTL_ERR_BUILD,
			   "entry `../etc/passwd`");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dir_input),
	    cmocka_unit_test(test_dir_errors),
	    cmocka_unit_test(test_dir_unreadable),
	    cmocka_unit_test(test_tar_compressions),
	    cmocka_unit_test(test_whiteouts),
	    cmocka_unit_test(test_opaque_root_and_sparse),
	    cmocka_unit_test(test_links),
	    cmocka_unit_test(test_hostile_entries),
	    cmocka_unit_test(test_absolute_paths),
	    cmocka_unit_test(test_corrupt_tar),
	    cmocka_unit_test(test_image_formats_agree),
	    cmocka_unit_test(test_image_config_fields),
	    cmocka_unit_test(test_image_multiarch),
	    cmocka_unit_test(test_image_digests),
	    cmocka_unit_test(test_image_hostile),
	    cmocka_unit_test(test_image_layer_paths),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
