/* Hostile inputs against the image loaders' budgets: a tiny sparse tar that
 * claims a terabyte, a stream of a million empty files, a compressed image
 * archive whose members would be stashed without end. Each load runs in a
 * child that may write at most 1 MiB of files, so a loader that tries to
 * write the bomb fails the test instead of filling the disk. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "imgfix.h"
#include "nectl/image.h"

#define CHILD_FSIZE (1u << 20) /* bytes a loading child may write */

static char tmpdir[] = "/tmp/nectl-test-limits-XXXXXX";

#define tp(...) imgfix_path(tmpdir, __VA_ARGS__)

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return imgfix_rmtree(tmpdir);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What a load in a child did. */
struct outcome {
	int rc, code;
	double secs;
	size_t count;	/* nodes in the tree afterwards */
	uint64_t spool; /* bytes the spool spans */
	char msg[NECTL_ERR_MSG_MAX];
};

enum loader { LOAD_TAR, LOAD_IMAGE };

static void child_load(enum loader how, const char *path, struct outcome *o)
{
	struct rlimit fsize = {CHILD_FSIZE, CHILD_FSIZE};
	struct nectl_err err = {0};
	struct image_config cfg = {0};
	struct image_tree *t;
	double start;

	/* A crash kills the child (cmocka's handlers would run the next tests
	 * in it); past 1 MiB a write fails with EFBIG instead of killing it. */
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	signal(SIGABRT, SIG_DFL);
	signal(SIGXFSZ, SIG_IGN);
	setrlimit(RLIMIT_FSIZE, &fsize);
	alarm(60);
	if (image_tree_new(&t, &err) < 0)
		_exit(101);
	start = now();
	if (how == LOAD_TAR)
		o->rc = image_load_tar(t, path, "rootfs", false, NULL, &err);
	else
		o->rc = image_load_image(t, path, "amd64", "rootfs", &cfg, NULL, &err);
	o->secs = now() - start;
	o->code = err.kind;
	o->count = image_tree_count(t);
	o->spool = image_tree_spool_size(t);
	memcpy(o->msg, err.msg, sizeof(o->msg));
	image_config_free(&cfg);
	image_tree_free(t);
}

static void load_in_child(enum loader how, const char *path, struct outcome *o)
{
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct outcome mine = {0};

		close(fds[0]);
		child_load(how, path, &mine);
		_exit(write(fds[1], &mine, sizeof(mine)) == (ssize_t)sizeof(mine) ? 0 : 102);
	}
	close(fds[1]);
	while (got < sizeof(*o)) {
		ssize_t n = read(fds[0], (char *)o + got, sizeof(*o) - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != sizeof(*o))
		fail_msg("the loading child died (status 0x%x)", status);
}

static void expect_refused(const struct outcome *o, const char *fragment, double max_secs)
{
	if (o->rc != -1 || o->code != NECTL_ERR_BUILD || !strstr(o->msg, fragment))
		fail_msg("load returned %d, error %d `%s`; wanted E48 with `%s`", o->rc, o->code,
			 o->msg, fragment);
	if (strchr(o->msg, '\n'))
		fail_msg("message is not one line: `%s`", o->msg);
	if (o->secs > max_secs)
		fail_msg("refused after %.3f s, wanted under %.1f s", o->secs, max_secs);
}

/* A 2.5 KiB GNU sparse tar whose one file claims 2^40 bytes. */
static void test_sparse_tar_claiming_a_terabyte_fails_fast(void **state)
{
	static const enum imgfix_comp comps[] = {IMGFIX_PLAIN, IMGFIX_GZIP};
	struct outcome o;
	struct stat st;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		imgfix_sparse_bomb(tp("bomb%zu.tar", i), 1ull << 40, comps[i]);
		assert_int_equal(stat(tp("bomb%zu.tar", i), &st), 0);
		assert_true(st.st_size < 4096);
		load_in_child(LOAD_TAR, tp("bomb%zu.tar", i), &o);
		expect_refused(&o,
			       "entry `bomb`: 1099511627776 bytes would take the image past "
			       "its limit of 4 GiB of file data",
			       1.0);
		assert_int_equal(o.spool, 0);
	}
}

/* A million empty files, streamed through a pipe by a child writer. */
static void test_tar_of_a_million_empty_files_stops_at_the_entry_limit(void **state)
{
	struct outcome o;
	char path[64];
	int fds[2], status;
	pid_t writer;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	writer = fork();
	assert_true(writer >= 0);
	if (writer == 0) {
		close(fds[0]);
		signal(SIGPIPE, SIG_IGN);
		imgfix_tar_headers(fds[1], 1000000);
		_exit(0);
	}
	close(fds[1]);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
	load_in_child(LOAD_TAR, path, &o);
	close(fds[0]);
	assert_int_equal(waitpid(writer, &status, 0), writer);
	/* About 0.6 s on an idle core; the bound leaves room for sanitizers. */
	expect_refused(&o, "entry `f0250000`: more than 250000 entries, the limit", 10.0);
	assert_true(o.count <= IMAGE_MAX_ENTRIES_DEFAULT + 64);
	print_message("refused after %.2f s with %zu nodes\n", o.secs, o.count);
}

/* A compressed image archive is stashed member by member: a sparse member
 * claiming 2^40 bytes must not be. */
static void test_compressed_image_archive_stash_stops_at_the_limit(void **state)
{
	struct outcome o;

	(void)state;
	imgfix_sparse_bomb(tp("bomb-image.tar.gz"), 1ull << 40, IMGFIX_GZIP);
	load_in_child(LOAD_IMAGE, tp("bomb-image.tar.gz"), &o);
	expect_refused(&o,
		       "member `bomb` (1099511627776 bytes) would take the copy of the "
		       "compressed archive past the limit of 4 GiB",
		       1.0);
}

static struct image_tree *tree_limited(uint64_t bytes, uint64_t entries)
{
	struct image_tree *t;
	struct nectl_err err = {0};

	assert_int_equal(image_tree_new(&t, &err), 0);
	image_tree_set_limits(t, &(struct image_limits){bytes, entries});
	return t;
}

static void expect_err(int rc, const struct nectl_err *err, const char *fragment)
{
	assert_int_equal(rc, -1);
	if (err->kind != NECTL_ERR_BUILD || !strstr(err->msg, fragment))
		fail_msg("got error %d `%s`, wanted E48 with `%s`", err->kind, err->msg, fragment);
}

/* The limits are options: an ordinary input meets them when they are low,
 * and fits again when they are raised. Directories count apparent sizes. */
static void test_limits_apply_to_every_loader(void **state)
{
	static const struct imgfix_entry three[] = {
	    {.type = IMGFIX_REG, .path = "a", .data = "0123456789"},
	    {.type = IMGFIX_REG, .path = "b", .data = "0123456789"},
	    {.type = IMGFIX_DIR, .path = "c"},
	};
	struct imgfix_layer layer = {three, 3, IMGFIX_GZIP};
	struct imgfix_image img = {.arch = "amd64", .layers = &layer, .nlayers = 1};
	struct nectl_err err = {0};
	struct image_config cfg;
	struct image_tree *t;
	int fd;

	(void)state;
	imgfix_tar_file(tp("three.tar"), three, 3, IMGFIX_PLAIN);
	t = tree_limited(19, 0);
	expect_err(image_load_tar(t, tp("three.tar"), "", false, NULL, &err), &err,
		   "entry `b`: 10 bytes would take the image past its limit of 19 bytes");
	image_tree_free(t);
	t = tree_limited(0, 2);
	expect_err(image_load_tar(t, tp("three.tar"), "", false, NULL, &err), &err,
		   "entry `c/`: more than 2 entries");
	image_tree_free(t);
	t = tree_limited(20, 3);
	assert_int_equal(image_load_tar(t, tp("three.tar"), "", false, NULL, &err), 0);
	image_tree_free(t);

	assert_int_equal(mkdir(tp("sparse-dir"), 0755), 0);
	fd = open(tp("sparse-dir/big"), O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1ll << 40), 0); /* 1 TiB, no block written */
	close(fd);
	t = tree_limited(0, 0);
	expect_err(
	    image_load_dir(t, tp("sparse-dir"), "", NULL, &err), &err,
	    "sparse-dir/big: 1099511627776 bytes would take the image past its limit of 4 GiB");
	image_tree_free(t);
	t = tree_limited(0, 1);
	assert_int_equal(mkdir(tp("two-dir"), 0755), 0);
	imgfix_write_file(tp("two-dir/a"), "x", 1);
	imgfix_write_file(tp("two-dir/b"), "x", 1);
	expect_err(image_load_dir(t, tp("two-dir"), "", NULL, &err), &err,
		   "two-dir/b: more than 1 entries");
	image_tree_free(t);

	imgfix_oci_layout(tp("layout3"), &img, 1, IMGFIX_INDEX_PLAIN);
	imgfix_tar_dir(tp("layout3"), tp("layout3.tar.gz"), IMGFIX_GZIP);
	t = tree_limited(0, 4);
	expect_err(image_load_image(t, tp("layout3.tar.gz"), "amd64", "", &cfg, NULL, &err), &err,
		   "more than 4 entries");
	image_tree_free(t);
	t = tree_limited(100, 0);
	expect_err(image_load_image(t, tp("layout3.tar.gz"), "amd64", "", &cfg, NULL, &err), &err,
		   "would take the copy of the compressed archive past the limit of 100 bytes");
	image_tree_free(t);
	t = tree_limited(0, 0);
	assert_int_equal(image_load_image(t, tp("layout3.tar.gz"), "amd64", "", &cfg, NULL, &err),
			 0);
	image_config_free(&cfg);
	image_tree_free(t);
}

/* A layer that puts something in each of thousands of lower directories and
 * then whites each out: every such whiteout removes what the lower layers had
 * there but keeps the layer's own file. Each must cost the directory it
 * touches, not the whole tree (re-sorted): 8000 lower files and 4000 pairs
 * took over 10 s, a few hundred thousand took hours, within the limits. */
static void test_layer_whiteouts_cost_their_directory_not_the_tree(void **state)
{
	enum { LOWER = 8000, PAIRS = 4000 };
	struct imgfix_entry *l1 = calloc(LOWER, sizeof(*l1)), *l2 = calloc(2 * PAIRS, sizeof(*l2));
	char(*names)[32] = calloc(LOWER + 2 * PAIRS, sizeof(*names));
	struct imgfix_layer layers[2] = {{l1, LOWER, IMGFIX_PLAIN}, {l2, 2 * PAIRS, IMGFIX_PLAIN}};
	struct imgfix_image img = {.arch = "amd64", .layers = layers, .nlayers = 2};
	struct nectl_err err = {0};
	struct image_config cfg;
	struct image_tree *t;
	double start;

	(void)state;
	assert_non_null(l1);
	assert_non_null(l2);
	assert_non_null(names);
	for (int i = 0; i < LOWER; i++) {
		snprintf(names[i], 32, "d%05d/f", i);
		l1[i] = (struct imgfix_entry){.type = IMGFIX_REG, .path = names[i], .data = "f"};
	}
	for (int i = 0; i < PAIRS; i++) {
		snprintf(names[LOWER + 2 * i], 32, "d%05d/new", i);
		snprintf(names[LOWER + 2 * i + 1], 32, "d%05d", i);
		l2[2 * i] = (struct imgfix_entry){
		    .type = IMGFIX_REG, .path = names[LOWER + 2 * i], .data = "n"};
		l2[2 * i + 1] = (struct imgfix_entry){.type = IMGFIX_WHITEOUT,
						      .path = names[LOWER + 2 * i + 1]};
	}
	imgfix_oci_layout(tp("whiteouts"), &img, 1, IMGFIX_INDEX_PLAIN);
	assert_int_equal(image_tree_new(&t, &err), 0);
	start = now();
	assert_int_equal(image_load_image(t, tp("whiteouts"), "amd64", "", &cfg, NULL, &err), 0);
	print_message("%d lower files, %d put-and-whiteout pairs: %.2f s\n", LOWER, PAIRS,
		      now() - start);
	if (now() - start > 2.0)
		fail_msg("took %.2f s", now() - start);
	assert_non_null(image_tree_get(t, "d00000/new"));
	assert_null(image_tree_get(t, "d00000/f"));
	assert_non_null(image_tree_get(t, "d03999/new"));
	assert_null(image_tree_get(t, "d03999/f"));
	assert_non_null(image_tree_get(t, "d04000/f"));
	assert_int_equal(image_tree_count(t), 2 * LOWER);
	image_config_free(&cfg);
	image_tree_free(t);
	free(l1);
	free(l2);
	free(names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sparse_tar_claiming_a_terabyte_fails_fast),
	    cmocka_unit_test(test_tar_of_a_million_empty_files_stops_at_the_entry_limit),
	    cmocka_unit_test(test_compressed_image_archive_stash_stops_at_the_limit),
	    cmocka_unit_test(test_limits_apply_to_every_loader),
	    cmocka_unit_test(test_layer_whiteouts_cost_their_directory_not_the_tree),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
