/* Module resolution over synthetic lib/modules trees (tiny ELF files with a
 * .modinfo section, plain and compressed), hostile module files, and, when
 * present, a real unpacked Debian cloud kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "util/le.h"

#include "nectl/image.h"

/* An unpacked Debian cloud kernel; NECTL_TEST_MODULES_DIR names another. */
#define REAL_KERNEL "/tmp/aptbp/x/lib/modules/6.12.95+deb12-cloud-amd64"

static char tmpdir[] = "/tmp/nectl-test-modules-XXXXXX";
static int case_no;

/* ---- building module files ---- */

struct ko {
	uint8_t *buf;
	size_t len;
};

/* Layout: ELF header, .shstrtab, .modinfo, pad to 8, then three section
 * headers (null, .shstrtab, .modinfo). section_name names the third one. */
#define SHSTRTAB "\0.shstrtab\0.modinfo\0.other\0"
#define SHSTRTAB_LEN (sizeof(SHSTRTAB) - 1)
#define NAME_SHSTRTAB 1
#define NAME_MODINFO 11
#define NAME_OTHER 20

static struct ko make_ko_named(const char *modinfo, size_t mi_len, uint32_t section_name)
{
	size_t mi_off = 64 + SHSTRTAB_LEN;
	size_t shoff = (mi_off + mi_len + 7) & ~(size_t)7;
	struct ko k = {.len = shoff + 3 * 64};
	uint8_t *sh;

	k.buf = calloc(1, k.len);
	assert_non_null(k.buf);
	memcpy(k.buf, "\177ELF\2\1\1", 7);
	le16_put(k.buf + 0x10, 1);	 /* ET_REL */
	le16_put(k.buf + 0x12, 62); /* EM_X86_64 */
	le32_put(k.buf + 0x14, 1);
	le64_put(k.buf + 0x28, shoff);
	le16_put(k.buf + 0x34, 64);
	le16_put(k.buf + 0x3a, 64);
	le16_put(k.buf + 0x3c, 3);
	le16_put(k.buf + 0x3e, 1);
	memcpy(k.buf + 64, SHSTRTAB, SHSTRTAB_LEN);
	memcpy(k.buf + mi_off, modinfo, mi_len);
	sh = k.buf + shoff + 64;
	le32_put(sh, NAME_SHSTRTAB);
	le32_put(sh + 4, 3); /* SHT_STRTAB */
	le64_put(sh + 0x18, 64);
	le64_put(sh + 0x20, SHSTRTAB_LEN);
	sh += 64;
	le32_put(sh, section_name);
	le32_put(sh + 4, 1); /* SHT_PROGBITS */
	le64_put(sh + 0x18, mi_off);
	le64_put(sh + 0x20, mi_len);
	return k;
}

/* A module's .modinfo as the kernel lays it out, with some other keys. */
static struct ko make_ko(const char *name, const char *depends)
{
	char mi[512];
	int n = snprintf(mi, sizeof(mi), "license=GPL%cdepends=%s%cintree=Y%cname=%s%c", 0,
			 depends, 0, 0, name, 0);

	return make_ko_named(mi, (size_t)n, NAME_MODINFO);
}

static char *path_in(const char *dir, const char *rel)
{
	static char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return path;
}

static void mkdirs(const char *path)
{
	char tmp[1024];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	mkdir(tmp, 0755);
}

static void write_bytes(const char *path, const void *buf, size_t len)
{
	char dir[1024];
	FILE *fp;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

enum filter { PLAIN, XZ, ZST, GZ };

/* Compressed with libarchive's raw writer, as kernel packages compress. */
static void write_compressed(const char *path, const void *buf, size_t len, enum filter f,
			     size_t repeat)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	char dir[1024];

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	if (f == XZ)
		assert_int_equal(archive_write_add_filter_xz(a), ARCHIVE_OK);
	else if (f == ZST)
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	else
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	archive_write_set_bytes_per_block(a, 0);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	archive_entry_set_pathname(e, "data");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)(len * repeat));
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	for (size_t i = 0; i < repeat; i++)
		assert_int_equal(archive_write_data(a, buf, len), (la_ssize_t)len);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(e);
}

static const char *const suffix[] = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};

/* Writes module `name` (file name as given, dashes allowed) under kernel/sub. */
static void add_module(const char *root, const char *sub, const char *file, const char *name,
		       const char *depends, enum filter f)
{
	struct ko k = make_ko(name, depends);
	char rel[512];

	snprintf(rel, sizeof(rel), "kernel/%s/%s%s", sub, file, suffix[f]);
	if (f == PLAIN)
		write_bytes(path_in(root, rel), k.buf, k.len);
	else
		write_compressed(path_in(root, rel), k.buf, k.len, f, 1);
	free(k.buf);
}

static void add_raw(const char *root, const char *rel, const void *buf, size_t len)
{
	write_bytes(path_in(root, rel), buf, len);
}

static char *new_root(void)
{
	static char root[600];

	snprintf(root, sizeof(root), "%s/case%d/lib/modules/6.0.0", tmpdir, ++case_no);
	mkdirs(root);
	return root;
}

static void write_builtin(const char *root, const char *text)
{
	write_bytes(path_in(root, "modules.builtin"), text, strlen(text));
}

/* ---- resolving ---- */

static size_t resolve_ok(const char *root, const char *const *wanted, size_t n,
			 struct image_module **mods)
{
	struct nectl_err err = {0};
	size_t count = 99;

	if (image_modules_resolve(root, wanted, n, mods, &count, &err) != 0)
		fail_msg("resolve failed: %s", err.msg);
	return count;
}

static void resolve_fail(const char *root, const char *const *wanted, size_t n,
			 enum nectl_kind code, const char *needle)
{
	struct image_module *mods = NULL;
	struct nectl_err err = {0};
	size_t count = 0;

	assert_int_equal(image_modules_resolve(root, wanted, n, &mods, &count, &err), -1);
	assert_int_equal(err.kind, code);
	if (!strstr(err.msg, needle))
		fail_msg("`%s` lacks `%s`", err.msg, needle);
}

static void assert_order(const struct image_module *mods, size_t count, const char *expected)
{
	char got[512] = "";

	for (size_t i = 0; i < count; i++) {
		if (i)
			strcat(got, " ");
		strcat(got, mods[i].name);
	}
	assert_string_equal(got, expected);
}

static void test_chain_and_formats(void **state)
{
	const char *root = new_root();
	const char *wanted[] = {"top"};
	struct image_module *mods;
	struct ko k = make_ko("mid_dash", "base,core");
	size_t n;

	add_module(root, "a", "top", "top", "mid-dash,base,core", XZ);
	add_module(root, "b/c", "mid-dash", "mid_dash", "base,core", GZ);
	add_module(root, "b", "base", "base", "", ZST);
	write_builtin(root, "kernel/x/core.ko\nkernel/y/other-thing.ko\n\n");
	n = resolve_ok(root, wanted, 1, &mods);
	assert_order(mods, n, "base mid_dash top");
	/* The data is the uncompressed module. */
	assert_int_equal(mods[1].len, k.len);
	assert_memory_equal(mods[1].data, k.buf, k.len);
	free(k.buf);
	image_modules_free(mods, n);
}

static void test_many_wanted(void **state)
{
	const char *root = new_root();
	const char *wanted[] = {"e", "a", "c-x", "a", "d", "builtin_one", "c_x"};
	struct image_module *mods;
	size_t n;

	add_module(root, "m", "a", "a", "b", PLAIN);
	add_module(root, "m", "b", "b", "", PLAIN);
	add_module(root, "m", "c_x", "c_x", "a,b", XZ);
	add_module(root, "m", "d", "d", "c-x,builtin-one,,", PLAIN);
	add_module(root, "m", "e", "e", "d", GZ);
	write_builtin(root, "kernel/z/builtin-one.ko\n");
	n = resolve_ok(root, wanted, 7, &mods);
	assert_order(mods, n, "b a c_x d e");
	image_modules_free(mods, n);
	/* Another order of the wanted names, another (still valid) order. */
	wanted[0] = "a";
	n = resolve_ok(root, wanted, 2, &mods);
	assert_order(mods, n, "b a");
	image_modules_free(mods, n);
}

static void test_builtin_only(void **state)
{
	const char *root = new_root();
	const char *wanted[] = {"virtio", "virtio-ring"};
	struct image_module *mods = (void *)1;
	size_t n;

	write_builtin(root, "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko");
	/* No kernel/ directory at all. */
	n = resolve_ok(root, wanted, 2, &mods);
	assert_int_equal(n, 0);
	image_modules_free(mods, n);
	n = resolve_ok(root, wanted, 0, &mods);
	assert_int_equal(n, 0);
	image_modules_free(mods, n);
}

static void test_missing(void **state)
{
	const char *root = new_root();
	const char *wanted[] = {"needs_ghost"};
	const char *absent[] = {"nothing"};
	char msg[1024];

	add_module(root, "m", "needs_ghost", "needs_ghost", "ghost", PLAIN);
	snprintf(msg, sizeof(msg), "module nothing not found in %s (neither a .ko file nor built in)",
		 root);
	resolve_fail(root, absent, 1, NECTL_ERR_BUILD, msg);
	resolve_fail(root, wanted, 1, NECTL_ERR_BUILD,
		     "module ghost, needed by needs_ghost, not found");
}

static void test_cycle(void **state)
{
	const char *root = new_root();
	const char *wanted[] = {"start"};
	const char *self[] = {"self"};

	add_module(root, "m", "start", "start", "x", PLAIN);
	add_module(root, "m", "x", "x", "y", PLAIN);
	add_module(root, "m", "y", "y", "z", XZ);
	add_module(root, "m", "z", "z", "x", PLAIN);
	add_module(root, "m", "self", "self", "self", PLAIN);
	resolve_fail(root, wanted, 1, NECTL_ERR_BUILD, "module dependency cycle: x -> y -> z -> x");
	resolve_fail(root, self, 1, NECTL_ERR_BUILD, "module dependency cycle: self -> self");
}

static void test_bad_names(void **state)
{
	const char *root = new_root();
	const char *bad_wanted[] = {"../etc/passwd"};
	const char *empty[] = {""};
	const char *long_name[] = {"a_very_long_module_name_that_goes_past_the_sixty_three_char_limit"};
	const char *w1[] = {"liar"};
	const char *w2[] = {"baddep"};
	const char *w3[] = {"dup"};

	resolve_fail(root, bad_wanted, 1, NECTL_ERR_INVALID_ARG, "not a kernel module name");
	resolve_fail(root, empty, 1, NECTL_ERR_INVALID_ARG, "not a kernel module name");
	resolve_fail(root, long_name, 1, NECTL_ERR_INVALID_ARG, "not a kernel module name");
	add_module(root, "m", "liar", "someone_else", "", PLAIN);
	resolve_fail(root, w1, 1, NECTL_ERR_BUILD, "calls itself `someone_else`, not liar");
	add_module(root, "m", "baddep", "baddep", "../../x", PLAIN);
	resolve_fail(root, w2, 1, NECTL_ERR_BUILD, "invalid dependency name `../../x`");
	add_module(root, "m", "dup", "dup", "", PLAIN);
	add_module(root, "n", "dup", "dup", "", XZ);
	resolve_fail(root, w3, 1, NECTL_ERR_BUILD, "module dup is ambiguous");
}

/* ---- hostile files ---- */

static void expect_bad_module(const void *buf, size_t len, const char *needle)
{
	const char *root = new_root();
	const char *wanted[] = {"evil"};

	add_raw(root, "kernel/evil.ko", buf, len);
	resolve_fail(root, wanted, 1, NECTL_ERR_BUILD, needle);
}

static void test_truncated(void **state)
{
	struct ko k = make_ko("evil", "");
	const char *root = new_root();
	const char *wanted[] = {"evil"};

	/* Every prefix: the section headers sit at the end, so all must fail. */
	for (size_t len = 0; len < k.len; len++) {
		struct image_module *mods = NULL;
		struct nectl_err err = {0};
		size_t count = 0;

		add_raw(root, "kernel/evil.ko", k.buf, len);
		assert_int_equal(image_modules_resolve(root, wanted, 1, &mods, &count, &err), -1);
		assert_int_equal(err.kind, NECTL_ERR_BUILD);
	}
	free(k.buf);
}

static void test_hostile_headers(void **state)
{
	struct ko k;

	expect_bad_module("", 0, "cannot read");
	expect_bad_module("not an elf file at all, just some text that is long enough to pass", 66,
			  "not a well-formed");
#define MUTATE(stmt, needle)                             \
	do {                                             \
		k = make_ko("evil", "");                 \
		stmt;                                    \
		expect_bad_module(k.buf, k.len, needle); \
		free(k.buf);                             \
	} while (0)
	MUTATE(k.buf[4] = 1, "not a well-formed");			   /* ELFCLASS32 */
	MUTATE(k.buf[5] = 2, "not a well-formed");			   /* big-endian */
	MUTATE(le64_put(k.buf + 0x28, k.len), "not a well-formed");	   /* shoff at EOF */
	MUTATE(le64_put(k.buf + 0x28, UINT64_MAX - 10), "not a well-formed"); /* shoff wraps */
	MUTATE(le16_put(k.buf + 0x3c, 0xffff), "not a well-formed");	   /* shnum past EOF */
	MUTATE(le16_put(k.buf + 0x3c, 0), "not a well-formed");		   /* no sections */
	MUTATE(le16_put(k.buf + 0x3a, 40), "not a well-formed");		   /* shentsize */
	MUTATE(le16_put(k.buf + 0x3e, 3), "not a well-formed");		   /* shstrndx */
	/* .modinfo's offset or size past EOF, or wrapping around. */
	MUTATE(le64_put(k.buf + k.len - 64 + 0x18, k.len + 1), "not a well-formed");
	MUTATE(le64_put(k.buf + k.len - 64 + 0x20, k.len), "not a well-formed");
	MUTATE(le64_put(k.buf + k.len - 64 + 0x18, UINT64_MAX), "not a well-formed");
	MUTATE(le64_put(k.buf + k.len - 64 + 0x20, UINT64_MAX), "not a well-formed");
	/* .shstrtab past EOF. */
	MUTATE(le64_put(k.buf + k.len - 128 + 0x20, 1u << 30), "not a well-formed");
	/* Section names out of the string table: no .modinfo to be found. */
	MUTATE(le32_put(k.buf + k.len - 64, 0x7fffffff), "no .modinfo section");
	MUTATE(le32_put(k.buf + k.len - 64, (uint32_t)SHSTRTAB_LEN), "no .modinfo section");
	/* ".modinfo" cut by the end of the string table. */
	MUTATE(le64_put(k.buf + k.len - 128 + 0x20, NAME_MODINFO + 5), "no .modinfo section");
#undef MUTATE
	k = make_ko_named("depends=\0name=evil", 18, NAME_OTHER);
	expect_bad_module(k.buf, k.len, "no .modinfo section");
	free(k.buf);
}

/* NOBITS .modinfo, an unterminated last string, padding NULs, and nonsense in
 * sections nobody reads are all accepted. */
static void test_modinfo_edges(void **state)
{
	const char *root = new_root();
	const char *wanted[] = {"edge", "nobits"};
	struct image_module *mods;
	struct ko k;
	size_t n;

	k = make_ko_named("\0\0\0name=edge\0\0depends=leaf", 26, NAME_MODINFO);
	le64_put(k.buf + k.len - 192 + 0x18, UINT64_MAX); /* the null section */
	le64_put(k.buf + k.len - 192 + 0x20, UINT64_MAX);
	add_raw(root, "kernel/edge.ko", k.buf, k.len);
	free(k.buf);
	add_module(root, "m", "leaf", "leaf", "", PLAIN);
	k = make_ko_named("depends=leaf", 12, NAME_MODINFO);
	le32_put(k.buf + k.len - 64 + 4, 8); /* SHT_NOBITS: no bytes, so no depends */
	le64_put(k.buf + k.len - 64 + 0x18, UINT64_MAX);
	add_raw(root, "kernel/nobits.ko", k.buf, k.len);
	free(k.buf);
	n = resolve_ok(root, wanted, 2, &mods);
	assert_order(mods, n, "leaf edge nobits");
	image_modules_free(mods, n);
}

/* Random corruption must never crash or read out of bounds (ASan). */
static void test_fuzz(void **state)
{
	const char *root = new_root();
	const char *wanted[] = {"fuzz"};
	uint32_t seed = 7;

	for (int round = 0; round < 400; round++) {
		struct ko k = make_ko("fuzz", "");
		struct image_module *mods = NULL;
		struct nectl_err err = {0};
		size_t count = 0;

		for (int flips = 0; flips < 1 + round % 8; flips++) {
			seed = seed * 1103515245 + 12345;
			k.buf[(seed >> 8) % k.len] = (uint8_t)(seed >> 24);
		}
		add_raw(root, "kernel/fuzz.ko", k.buf, k.len);
		if (image_modules_resolve(root, wanted, 1, &mods, &count, &err) == 0)
			image_modules_free(mods, count);
		free(k.buf);
	}
}

static void test_decompression_cap(void **state)
{
	const char *root = new_root();
	const char *wanted[] = {"bomb"};
	uint8_t *zeros = calloc(1, 1 << 20);

	write_compressed(path_in(root, "kernel/bomb.ko.gz"), zeros, 1 << 20, GZ, 65);
	resolve_fail(root, wanted, 1, NECTL_ERR_BUILD, "larger than 64 MiB uncompressed");
	free(zeros);
}

/* ---- the real kernel ---- */

static size_t index_of(const struct image_module *mods, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(mods[i].name, name) == 0)
			return i;
	fail_msg("%s not resolved", name);
	return 0;
}

static void test_real_kernel(void **state)
{
	const char *wanted[] = {"virtio_mmio", "vsock", "vmw_vsock_virtio_transport_common",
				"vmw_vsock_virtio_transport", "nsm"};
	const char *dir = getenv("NECTL_TEST_MODULES_DIR");
	struct image_module *mods;
	struct stat st;
	size_t n;

	if (!dir || !*dir)
		dir = REAL_KERNEL;
	if (stat(path_in(dir, "kernel"), &st) != 0)
		skip();
	n = resolve_ok(dir, wanted, 5, &mods);
	printf("resolved:");
	for (size_t i = 0; i < n; i++)
		printf(" %s(%zu)", mods[i].name, mods[i].len);
	printf("\n");
	for (size_t i = 0; i < 5; i++)
		index_of(mods, n, wanted[i]);
	assert_true(index_of(mods, n, "vsock") <
		    index_of(mods, n, "vmw_vsock_virtio_transport_common"));
	assert_true(index_of(mods, n, "vmw_vsock_virtio_transport_common") <
		    index_of(mods, n, "vmw_vsock_virtio_transport"));
	assert_true(index_of(mods, n, "vsock") < index_of(mods, n, "vmw_vsock_virtio_transport"));
	for (size_t i = 0; i < n; i++) {
		assert_memory_equal(mods[i].data, "\177ELF", 4);
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(mods[i].name, mods[j].name);
	}
	image_modules_free(mods, n);
}

static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_and_formats),
		cmocka_unit_test(test_many_wanted),
		cmocka_unit_test(test_builtin_only),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_modinfo_edges),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_decompression_cap),
		cmocka_unit_test(test_real_kernel),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
