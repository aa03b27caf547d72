/* The newc writer: every header field read back both with libarchive and
 * with a small independent parser, sizes against image_cpio_size, byte
 * equality across insertion orders, and the failures it must report. */
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

#include "nectl/image.h"

#define MTIME_MAX 1700000000

static char tmpdir[] = "/tmp/nectl-test-cpio-XXXXXX";

struct sink {
	uint8_t *buf;
	size_t len, cap;
	size_t calls, max_call;
	size_t fail_after; /* emit fails once this many bytes went out (0: never) */
};

static int sink_emit(void *ctx, const void *buf, size_t len, struct nectl_err *err)
{
	struct sink *s = ctx;

	s->calls++;
	if (len > s->max_call)
		s->max_call = len;
	if (s->fail_after && s->len + len > s->fail_after)
		return nectl_err_set(err, NECTL_ERR_FILE, "sink full");
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

static char *tmp_path(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static void write_host_file(const char *name, const void *data, size_t len)
{
	FILE *fp = fopen(tmp_path(name), "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static struct image_tree *tree_new(void)
{
	struct image_tree *t;

	assert_int_equal(image_tree_new(&t, NULL), 0);
	return t;
}

static void put(struct image_tree *t, const struct image_node *n)
{
	struct nectl_err err = {0};

	assert_int_equal(image_tree_put(t, n, &err), 0);
}

static void put_dir(struct image_tree *t, const char *path, uint32_t mode, int64_t mtime)
{
	struct image_node n = {.path = (char *)path, .type = IMAGE_DIR, .mode = mode,
			       .mtime = mtime};

	put(t, &n);
}

static void put_mem(struct image_tree *t, const char *path, const char *data, uint32_t mode,
		    int64_t mtime)
{
	size_t len = strlen(data);
	struct image_node n = {.path = (char *)path, .type = IMAGE_REG, .mode = mode,
			       .mtime = mtime, .size = len,
			       .data = len ? IMAGE_DATA_MEM : IMAGE_DATA_NONE};

	if (len) {
		n.mem = malloc(len);
		memcpy(n.mem, data, len);
	}
	put(t, &n);
}

static void put_host(struct image_tree *t, const char *path, const char *host, uint64_t size,
		     uint32_t mode, int64_t mtime)
{
	struct image_node n = {.path = (char *)path, .type = IMAGE_REG, .mode = mode,
			       .mtime = mtime, .size = size, .data = IMAGE_DATA_FILE,
			       .data_path = tmp_path(host)};

	put(t, &n);
}

static void put_spool(struct image_tree *t, const char *path, const char *data, int64_t mtime)
{
	struct image_node n = {.path = (char *)path, .type = IMAGE_REG, .mode = 0644,
			       .mtime = mtime, .size = strlen(data), .data = IMAGE_DATA_SPOOL};

	assert_int_equal(image_tree_spool_write(t, data, strlen(data), &n.spool_off, NULL), 0);
	put(t, &n);
}

static void put_link(struct image_tree *t, enum image_type type, const char *path,
		     const char *target, int64_t mtime)
{
	struct image_node n = {.path = (char *)path, .type = type, .mode = 0777, .mtime = mtime,
			       .target = (char *)target};

	put(t, &n);
}

static void put_dev(struct image_tree *t, enum image_type type, const char *path, uint32_t major,
		    uint32_t minor)
{
	struct image_node n = {.path = (char *)path, .type = type, .mode = 0600, .mtime = 5,
			       .rdev_major = major, .rdev_minor = minor};

	put(t, &n);
}

/* Writes t, checks the length against image_cpio_size, returns the bytes. */
static struct sink write_tree(struct image_tree *t)
{
	struct image_cpio_opts opts = {.mtime_max = MTIME_MAX};
	struct nectl_err err = {0};
	struct sink s = {0};

	assert_int_equal(image_cpio_write(t, &opts, sink_emit, &s, &err), 0);
	assert_int_equal(s.len, image_cpio_size(t));
	assert_true(s.len % 4 == 0);
	return s;
}

/* ---- an independent newc parser ---- */

struct hdr {
	uint32_t ino, mode, uid, gid, nlink, mtime, size;
	uint32_t devmajor, devminor, rdevmajor, rdevminor, namesize, check;
	char name[5000];
	const uint8_t *data;
};

static uint32_t hex8(const uint8_t *p)
{
	char tmp[9];

	memcpy(tmp, p, 8);
	tmp[8] = '\0';
	for (int i = 0; i < 8; i++)
		assert_non_null(strchr("0123456789abcdef", tmp[i]));
	return (uint32_t)strtoul(tmp, NULL, 16);
}

static size_t parse_hdr(const struct sink *s, size_t off, struct hdr *h)
{
	const uint8_t *p = s->buf + off;
	uint32_t *fields[] = {&h->ino,	    &h->mode,	  &h->uid,	 &h->gid,
			      &h->nlink,    &h->mtime,	  &h->size,	 &h->devmajor,
			      &h->devminor, &h->rdevmajor, &h->rdevminor, &h->namesize,
			      &h->check};

	assert_true(off + 110 <= s->len);
	assert_memory_equal(p, "070701", 6);
	for (size_t i = 0; i < 13; i++)
		*fields[i] = hex8(p + 6 + 8 * i);
	assert_true(h->namesize > 0 && h->namesize < sizeof(h->name));
	assert_true(off + 110 + h->namesize <= s->len);
	memcpy(h->name, p + 110, h->namesize);
	assert_int_equal(h->name[h->namesize - 1], '\0');
	off = (off + 110 + h->namesize + 3) & ~(size_t)3;
	h->data = s->buf + off;
	off = (off + h->size + 3) & ~(size_t)3;
	assert_true(off <= s->len);
	return off;
}

/* All headers; the last is the trailer, which must end the archive exactly. */
static size_t parse_all(const struct sink *s, struct hdr **out)
{
	size_t off = 0, n = 0;
	struct hdr *h = NULL;

	for (;;) {
		h = realloc(h, (n + 1) * sizeof(*h));
		assert_non_null(h);
		off = parse_hdr(s, off, &h[n]);
		if (strcmp(h[n].name, "TRAILER!!!") == 0)
			break;
		n++;
	}
	assert_int_equal(off, s->len);
	assert_int_equal(h[n].size, 0);
	assert_int_equal(h[n].nlink, 1);
	*out = h;
	return n;
}

/* ---- the main tree ---- */

static const char big_pattern[] = "0123456789abcdefghijklmnopqrstuvwxyz";
#define BIG_LEN (3u * 1024 * 1024 + 17)

static void build_main(struct image_tree *t)
{
	put_dir(t, "bin", 0755, 100);
	put_mem(t, "bin/sh", "#!shell\n", 0755, 200);
	put_mem(t, "bin/su", "su", 04755, 300);
	put_mem(t, "empty", "", 0600, 10);
	put_host(t, "big", "big.bin", BIG_LEN, 0644, 2000000000); /* clamped */
	put_spool(t, "spooled", "from the spool", -5); /* clamped to 0 */
	put_link(t, IMAGE_SYMLINK, "lnk", "bin/sh", 400);
	put_mem(t, "m/target", "shared data", 0640, 500);
	put_link(t, IMAGE_HARDLINK, "a_link", "m/target", 600);  /* before the file */
	put_link(t, IMAGE_HARDLINK, "z_link", "m/target", 700);  /* last: carries data */
	put_dir(t, "dev", 0755, 50);
	put_dev(t, IMAGE_CHR, "dev/console", 5, 1);
	put_dev(t, IMAGE_BLK, "dev/sda", 8, 300);
	put_dev(t, IMAGE_FIFO, "dev/pipe", 0, 0);
	put_dir(t, "tmp", 01777, 60);
}

struct expect {
	const char *name;
	uint32_t mode, nlink, ino, mtime, size, rmaj, rmin;
	const char *data;
};

static const struct expect main_expect[] = {
	{"a_link", 0100640, 3, 1, 500, 0, 0, 0, ""},
	{"big", 0100644, 1, 2, MTIME_MAX, BIG_LEN, 0, 0, NULL},
	{"bin", 040755, 2, 3, 100, 0, 0, 0, ""},
	{"bin/sh", 0100755, 1, 4, 200, 8, 0, 0, "#!shell\n"},
	{"bin/su", 0104755, 1, 5, 300, 2, 0, 0, "su"},
	{"dev", 040755, 2, 6, 50, 0, 0, 0, ""},
	{"dev/console", 020600, 1, 7, 5, 0, 5, 1, ""},
	{"dev/pipe", 010600, 1, 8, 5, 0, 0, 0, ""},
	{"dev/sda", 060600, 1, 9, 5, 0, 8, 300, ""},
	{"empty", 0100600, 1, 10, 10, 0, 0, 0, ""},
	{"lnk", 0120777, 1, 11, 400, 6, 0, 0, "bin/sh"},
	{"m", 040755, 2, 12, 500, 0, 0, 0, ""},
	{"m/target", 0100640, 3, 1, 500, 0, 0, 0, ""},
	{"spooled", 0100644, 1, 13, 0, 14, 0, 0, "from the spool"},
	{"tmp", 041777, 2, 14, 60, 0, 0, 0, ""},
	{"z_link", 0100640, 3, 1, 500, 11, 0, 0, "shared data"},
};
#define MAIN_COUNT (sizeof(main_expect) / sizeof(main_expect[0]))

static void check_big(const uint8_t *data, size_t len)
{
	assert_int_equal(len, BIG_LEN);
	for (size_t i = 0; i < len; i++)
		if (data[i] != (uint8_t)big_pattern[i % (sizeof(big_pattern) - 1)])
			fail_msg("big differs at %zu", i);
}

static void make_big(void)
{
	uint8_t *big = malloc(BIG_LEN);

	for (size_t i = 0; i < BIG_LEN; i++)
		big[i] = (uint8_t)big_pattern[i % (sizeof(big_pattern) - 1)];
	write_host_file("big.bin", big, BIG_LEN);
	free(big);
}

static void test_raw_fields(void **state)
{
	struct image_tree *t = tree_new();
	struct sink s;
	struct hdr *h;
	size_t n;

	make_big();
	build_main(t);
	s = write_tree(t);
	assert_true(s.max_call <= (1u << 20) + 64 * 1024);
	n = parse_all(&s, &h);
	assert_int_equal(n, MAIN_COUNT);
	for (size_t i = 0; i < n; i++) {
		const struct expect *e = &main_expect[i];

		assert_string_equal(h[i].name, e->name);
		assert_int_equal(h[i].mode, e->mode);
		assert_int_equal(h[i].nlink, e->nlink);
		assert_int_equal(h[i].ino, e->ino);
		assert_int_equal(h[i].mtime, e->mtime);
		assert_int_equal(h[i].size, e->size);
		assert_int_equal(h[i].uid, 0);
		assert_int_equal(h[i].gid, 0);
		assert_int_equal(h[i].devmajor, 0);
		assert_int_equal(h[i].devminor, 0);
		assert_int_equal(h[i].rdevmajor, e->rmaj);
		assert_int_equal(h[i].rdevminor, e->rmin);
		assert_int_equal(h[i].check, 0);
		if (e->data)
			assert_memory_equal(h[i].data, e->data, e->size);
		else
			check_big(h[i].data, h[i].size);
	}
	/* The trailer: libarchive writes ino 0, mode 0, mtime 0, nlink 1. */
	assert_int_equal(h[n].ino, 0);
	assert_int_equal(h[n].mode, 0);
	assert_int_equal(h[n].mtime, 0);
	assert_int_equal(h[n].namesize, 11);
	assert_memory_equal(s.buf + s.len - 124 + 110, "TRAILER!!!\0\0\0\0", 14);
	free(h);
	free(s.buf);
	image_tree_free(t);
}

static la_int64_t read_all_data(struct archive *a, uint8_t **out)
{
	size_t len = 0, cap = 1024;
	uint8_t *buf = malloc(cap);
	la_ssize_t n;

	for (;;) {
		while (len + 65536 > cap)
			buf = realloc(buf, cap *= 2);
		n = archive_read_data(a, buf + len, 65536);
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	return (la_int64_t)len;
}

static void test_libarchive_readback(void **state)
{
	struct image_tree *t = tree_new();
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct sink s;
	size_t i = 0;

	make_big();
	build_main(t);
	s = write_tree(t);
	archive_read_support_format_cpio(a);
	assert_int_equal(archive_read_open_memory(a, s.buf, s.len), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const struct expect *x = &main_expect[i++];
		uint8_t *data;
		la_int64_t len;

		assert_true(i <= MAIN_COUNT);
		assert_int_equal(archive_format(a), ARCHIVE_FORMAT_CPIO_SVR4_NOCRC);
		assert_string_equal(archive_entry_pathname(e), x->name);
		assert_int_equal(archive_entry_mode(e), x->mode);
		assert_int_equal(archive_entry_nlink(e), x->nlink);
		assert_int_equal(archive_entry_ino64(e), x->ino);
		assert_int_equal(archive_entry_mtime(e), x->mtime);
		assert_int_equal(archive_entry_uid(e), 0);
		assert_int_equal(archive_entry_gid(e), 0);
		assert_null(archive_entry_uname(e));
		assert_null(archive_entry_gname(e));
		assert_int_equal(archive_entry_dev(e), 0);
		if (x->mode >> 12 == 02 || x->mode >> 12 == 06) {
			assert_int_equal(archive_entry_rdevmajor(e), x->rmaj);
			assert_int_equal(archive_entry_rdevminor(e), x->rmin);
		}
		if ((x->mode & 0170000) == 0120000) {
			assert_string_equal(archive_entry_symlink(e), x->data);
			continue;
		}
		len = read_all_data(a, &data);
		assert_int_equal(len, x->size);
		if (x->data)
			assert_memory_equal(data, x->data, x->size);
		else
			check_big(data, (size_t)len);
		free(data);
	}
	assert_int_equal(i, MAIN_COUNT);
	archive_read_free(a);
	free(s.buf);
	image_tree_free(t);
}

/* GNU cpio, when installed, must list the same names. */
static void test_cpio_tool_listing(void **state)
{
	struct image_tree *t = tree_new();
	char cmd[1024], line[256];
	struct sink s;
	size_t i = 0;
	FILE *fp;

	if (access("/usr/bin/cpio", X_OK) != 0)
		skip();
	make_big();
	build_main(t);
	s = write_tree(t);
	write_host_file("main.cpio", s.buf, s.len);
	snprintf(cmd, sizeof(cmd), "/usr/bin/cpio -it --quiet < %s 2>&1", tmp_path("main.cpio"));
	fp = popen(cmd, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		assert_true(i < MAIN_COUNT);
		assert_string_equal(line, main_expect[i++].name);
	}
	assert_int_equal(pclose(fp), 0);
	assert_int_equal(i, MAIN_COUNT);
	free(s.buf);
	image_tree_free(t);
}

static void assert_file_is(const char *path, const char *content, nlink_t nlink, ino_t *ino)
{
	char buf[64] = {0};
	struct stat st;
	FILE *fp = fopen(path, "rb");

	assert_non_null(fp);
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, fp), strlen(content));
	fclose(fp);
	assert_string_equal(buf, content);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_nlink, nlink);
	if (*ino)
		assert_int_equal(st.st_ino, *ino);
	*ino = st.st_ino;
}

/* GNU cpio links the members of a group and puts the data, found on the last
 * one, into the shared inode, as the kernel's unpacker does. */
static void test_cpio_tool_extract(void **state)
{
	struct image_tree *t = tree_new();
	char cmd[1200], out[600];
	ino_t ino = 0, other = 0;
	struct sink s;

	if (access("/usr/bin/cpio", X_OK) != 0)
		skip();
	put_mem(t, "m/target", "shared data", 0640, 500);
	put_link(t, IMAGE_HARDLINK, "a_link", "m/target", 600);
	put_link(t, IMAGE_HARDLINK, "z_link", "m/target", 700);
	put_mem(t, "single", "alone", 0600, 5);
	put_link(t, IMAGE_SYMLINK, "lnk", "m/target", 400);
	s = write_tree(t);
	write_host_file("links.cpio", s.buf, s.len);
	snprintf(out, sizeof(out), "%s", tmp_path("x"));
	assert_int_equal(mkdir(out, 0700), 0);
	snprintf(cmd, sizeof(cmd), "cd %s && /usr/bin/cpio -id --quiet < %s", out,
		 tmp_path("links.cpio"));
	assert_int_equal(system(cmd), 0);
	assert_file_is(tmp_path("x/a_link"), "shared data", 3, &ino);
	assert_file_is(tmp_path("x/m/target"), "shared data", 3, &ino);
	assert_file_is(tmp_path("x/z_link"), "shared data", 3, &ino);
	assert_file_is(tmp_path("x/single"), "alone", 1, &other);
	assert_true(other != ino);
	assert_file_is(tmp_path("x/lnk"), "shared data", 3, &ino);
	free(s.buf);
	image_tree_free(t);
}

/* ---- determinism ---- */

static void build_order(struct image_tree *t, bool reverse)
{
	static const char *const files[] = {"usr/bin/a", "usr/bin/b", "usr/lib/x.so", "etc/conf",
					    "a-b", "a.b", "a/b", "a0"};
	size_t n = sizeof(files) / sizeof(files[0]);

	/* Directories first, explicitly: implicit parents take the mtime of
	 * whichever child came first. */
	put_dir(t, "usr", 0755, 1);
	put_dir(t, "usr/bin", 0755, 1);
	put_dir(t, "usr/lib", 0755, 1);
	put_dir(t, "etc", 0755, 1);
	put_dir(t, "a", 0755, 1);
	for (size_t k = 0; k < n; k++) {
		const char *f = files[reverse ? n - 1 - k : k];

		put_mem(t, f, f, 0644, 1000);
	}
	if (reverse) {
		put_link(t, IMAGE_HARDLINK, "usr/bin/c", "usr/bin/a", 9);
		put_link(t, IMAGE_SYMLINK, "usr/bin/d", "a", 9);
	} else {
		put_link(t, IMAGE_SYMLINK, "usr/bin/d", "a", 9);
		put_link(t, IMAGE_HARDLINK, "usr/bin/c", "usr/bin/a", 9);
	}
}

static void test_deterministic(void **state)
{
	struct image_tree *t1 = tree_new(), *t2 = tree_new();
	struct sink s1, s2;
	struct hdr *h;
	size_t n;

	build_order(t1, false);
	build_order(t2, true);
	s1 = write_tree(t1);
	s2 = write_tree(t2);
	assert_int_equal(s1.len, s2.len);
	assert_memory_equal(s1.buf, s2.buf, s1.len);
	/* Bytewise order: "a" < "a-b" < "a.b" < "a/b" < "a0". */
	n = parse_all(&s1, &h);
	assert_string_equal(h[0].name, "a");
	assert_string_equal(h[1].name, "a-b");
	assert_string_equal(h[2].name, "a.b");
	assert_string_equal(h[3].name, "a/b");
	assert_string_equal(h[4].name, "a0");
	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i].name, "usr/bin/a") == 0)
			assert_int_equal(h[i].size, 0); /* usr/bin/c carries the data */
	free(h);
	free(s1.buf);
	free(s2.buf);
	image_tree_free(t1);
	image_tree_free(t2);
}

/* The same bytes from memory, a host file or the spool make the same archive. */
static void test_sources_equivalent(void **state)
{
	struct image_tree *t1 = tree_new(), *t2 = tree_new(), *t3 = tree_new();
	struct sink s1, s2, s3;

	write_host_file("same.txt", "same bytes", 10);
	put_mem(t1, "f", "same bytes", 0644, 7);
	put_host(t2, "f", "same.txt", 10, 0644, 7);
	put_spool(t3, "f", "same bytes", 7);
	s1 = write_tree(t1);
	s2 = write_tree(t2);
	s3 = write_tree(t3);
	assert_int_equal(s1.len, s2.len);
	assert_int_equal(s1.len, s3.len);
	assert_memory_equal(s1.buf, s2.buf, s1.len);
	assert_memory_equal(s1.buf, s3.buf, s1.len);
	free(s1.buf);
	free(s2.buf);
	free(s3.buf);
	image_tree_free(t1);
	image_tree_free(t2);
	image_tree_free(t3);
}

/* ---- sizes ---- */

static void test_empty_tree(void **state)
{
	struct image_tree *t = tree_new();
	struct sink s = write_tree(t);
	struct hdr *h;

	assert_int_equal(s.len, 124);
	assert_int_equal(parse_all(&s, &h), 0);
	free(h);
	free(s.buf);
	image_tree_free(t);
}

static void test_long_names(void **state)
{
	static const size_t lens[] = {255, 256, 257, 258, 1000, 1001, 4093, 4094, 4095};
	char name[4200];

	/* Every residue of name length mod 4, and the kernel's PATH_MAX edge. */
	for (size_t i = 0; i < 40 + sizeof(lens) / sizeof(lens[0]); i++) {
		struct image_tree *t = tree_new();
		size_t l = i < 40 ? i + 1 : lens[i - 40];
		struct sink s;
		struct hdr *h;

		memset(name, 'n', l);
		name[l] = '\0';
		for (size_t k = 200; k < l; k += 200)
			name[k] = '/';
		if (name[l - 1] == '/')
			name[l - 1] = 'e';
		put_mem(t, name, "xyz", 0644, 1);
		s = write_tree(t);
		parse_all(&s, &h);
		free(h);
		free(s.buf);
		image_tree_free(t);
	}
}

static void test_sizes_many(void **state)
{
	uint32_t seed = 12345;

	for (int round = 0; round < 60; round++) {
		struct image_tree *t = tree_new();
		char path[64], content[64];
		struct sink s;
		struct hdr *h;
		size_t n;

		for (int k = 0; k < round; k++) {
			seed = seed * 1103515245 + 12345;
			snprintf(path, sizeof(path), "d%u/f%u%.*s", seed % 3, k, (int)(seed >> 28),
				 "abcdefghijklmnop");
			snprintf(content, sizeof(content), "%.*s", (int)((seed >> 8) % 13),
				 "0123456789abcdef");
			switch ((seed >> 16) % 6) {
			case 0:
				put_mem(t, path, content, 0644, k);
				break;
			case 1:
				put_link(t, IMAGE_SYMLINK, path, content, k);
				break;
			case 2:
				put_dev(t, (seed & 1) ? IMAGE_CHR : IMAGE_BLK, path, k, seed % 256);
				break;
			case 3:
				put_dir(t, path, 0700, k);
				break;
			default:
				put_mem(t, "d9/base", "hard", 0644, 0);
				put_link(t, IMAGE_HARDLINK, path, "d9/base", k);
				break;
			}
		}
		s = write_tree(t);
		n = parse_all(&s, &h);
		assert_int_equal(n, image_tree_count(t));
		for (size_t i = 1; i < n; i++)
			assert_true(strcmp(h[i - 1].name, h[i].name) < 0);
		free(h);
		free(s.buf);
		image_tree_free(t);
	}
}

/* A symlink with an empty target and an empty file still need a size field. */
static void test_empty_bodies(void **state)
{
	struct image_tree *t = tree_new();
	struct sink s;
	struct hdr *h;

	put_link(t, IMAGE_SYMLINK, "dangling", "", 1);
	put_mem(t, "zero", "", 0644, 1);
	s = write_tree(t);
	assert_int_equal(parse_all(&s, &h), 2);
	assert_int_equal(h[0].size, 0);
	assert_int_equal(h[0].mode, 0120777);
	free(h);
	free(s.buf);
	image_tree_free(t);
}

/* ---- failures ---- */

static void expect_fail(struct image_tree *t, enum nectl_kind code, const char *needle)
{
	struct image_cpio_opts opts = {.mtime_max = MTIME_MAX};
	struct nectl_err err = {0};
	struct sink s = {0};

	assert_int_equal(image_cpio_write(t, &opts, sink_emit, &s, &err), -1);
	assert_int_equal(err.kind, code);
	if (!strstr(err.msg, needle))
		fail_msg("`%s` lacks `%s`", err.msg, needle);
	free(s.buf);
}

static void test_hardlink_errors(void **state)
{
	struct image_tree *t = tree_new();

	put_link(t, IMAGE_HARDLINK, "x/link", "x/missing", 1);
	expect_fail(t, NECTL_ERR_BUILD, "`x/link` points to `x/missing`");
	assert_int_equal(image_cpio_size(t), 0);
	image_tree_free(t);

	t = tree_new();
	put_dir(t, "d", 0755, 1);
	put_link(t, IMAGE_HARDLINK, "link", "d", 1);
	expect_fail(t, NECTL_ERR_BUILD, "`link` points to `d`, which is not a regular file");
	image_tree_free(t);

	t = tree_new();
	put_mem(t, "f", "x", 0644, 1);
	put_link(t, IMAGE_HARDLINK, "l1", "f", 1);
	put_link(t, IMAGE_HARDLINK, "l2", "l1", 1);
	expect_fail(t, NECTL_ERR_BUILD, "`l2` points to `l1`");
	image_tree_free(t);
}

static void test_file_changed(void **state)
{
	struct image_tree *t = tree_new();

	write_host_file("shrunk", "abc", 3);
	put_host(t, "f", "shrunk", 4, 0644, 1);
	expect_fail(t, NECTL_ERR_FILE, "file changed while being archived");
	image_tree_free(t);

	t = tree_new();
	write_host_file("grown", "abcde", 5);
	put_host(t, "f", "grown", 4, 0644, 1);
	expect_fail(t, NECTL_ERR_FILE, "file changed while being archived");
	image_tree_free(t);

	t = tree_new();
	put_host(t, "f", "absent", 4, 0644, 1);
	expect_fail(t, NECTL_ERR_FILE, "absent: cannot open");
	image_tree_free(t);
}

static void test_limits(void **state)
{
	struct image_tree *t = tree_new();
	struct image_node n = {.path = "huge", .type = IMAGE_REG, .mode = 0644,
			       .size = 5ull << 30, .data = IMAGE_DATA_FILE, .data_path = "/dev/zero"};
	char name[4200];

	put(t, &n);
	expect_fail(t, NECTL_ERR_BUILD, "larger than 4 GiB");
	image_tree_free(t);

	t = tree_new();
	memset(name, 'a', 4096);
	name[4096] = '\0';
	for (size_t k = 100; k < 4096; k += 100)
		name[k] = '/';
	put_mem(t, name, "x", 0644, 1);
	expect_fail(t, NECTL_ERR_BUILD, "longer than the 4095 bytes");
	image_tree_free(t);
}

/* A failing emit is reported as is and nothing is emitted after it. */
static void test_emit_failure(void **state)
{
	struct image_cpio_opts opts = {.mtime_max = MTIME_MAX};
	struct image_tree *t = tree_new();
	struct nectl_err err = {0};

	make_big();
	build_main(t);
	for (size_t limit = 1; limit < 4u << 20; limit = limit * 3 + 1) {
		struct sink s = {.fail_after = limit};

		memset(&err, 0, sizeof(err));
		assert_int_equal(image_cpio_write(t, &opts, sink_emit, &s, &err), -1);
		assert_int_equal(err.kind, NECTL_ERR_FILE);
		assert_string_equal(err.msg, "sink full");
		assert_true(s.len < limit);
		free(s.buf);
	}
	image_tree_free(t);
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
		cmocka_unit_test(test_raw_fields),
		cmocka_unit_test(test_libarchive_readback),
		cmocka_unit_test(test_cpio_tool_listing),
		cmocka_unit_test(test_cpio_tool_extract),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_sources_equivalent),
		cmocka_unit_test(test_empty_tree),
		cmocka_unit_test(test_long_names),
		cmocka_unit_test(test_sizes_many),
		cmocka_unit_test(test_empty_bodies),
		cmocka_unit_test(test_hardlink_errors),
		cmocka_unit_test(test_file_changed),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_emit_failure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
