/* Kernel modules for the enclave's ramdisk: found by name under a
 * lib/modules/<version> tree, dependencies read from each module's own
 * .modinfo (not modules.dep, which a kernel package may not ship), in an
 * order where every module comes after what it depends on. Module files come
 * from whatever kernel package the user points at, so the ELF is parsed as
 * hostile input. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "nectl/image.h"
#include "util/fileio.h"

#define MODULES_NAME_MAX sizeof(((struct image_module *)0)->name)
#define MODULES_DATA_MAX ((size_t)64 << 20)
#define MODULES_BUILTIN_MAX ((size_t)4 << 20)
#define MODULES_DIR_DEPTH_MAX 32
#define MODULES_DEP_DEPTH_MAX 256

enum modules_state { MODULES_NEW, MODULES_VISITING, MODULES_DONE };

struct modules_file {
	char name[MODULES_NAME_MAX];
	char *path;
	enum modules_state state;
};

struct modules_ctx {
	const char *dir;
	struct nectl_err *err;
	struct modules_file *files;
	size_t nfiles, files_cap;
	char **builtin;
	size_t nbuiltin, builtin_cap;
	struct image_module *out;
	size_t nout, out_cap;
	const struct modules_file *stack[MODULES_DEP_DEPTH_MAX];
	size_t depth;
};

static const char *const modules_suffixes[] = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};

/* The kernel treats '-' and '_' in module names as the same character. Fails
 * on names that cannot be module names (empty, too long, odd characters). */
static int modules_canonical(const char *s, size_t len, char out[MODULES_NAME_MAX])
{
	if (len == 0 || len >= MODULES_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i] == '-' ? '_' : s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return -1;
		out[i] = c;
	}
	out[len] = '\0';
	return 0;
}

/* Length of name without a module suffix, or 0 when it has none. */
static size_t modules_stem_len(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < sizeof(modules_suffixes) / sizeof(modules_suffixes[0]); i++) {
		size_t sl = strlen(modules_suffixes[i]);

		if (len > sl && strcmp(name + len - sl, modules_suffixes[i]) == 0)
			return len - sl;
	}
	return 0;
}

/* ---- the index of module files ---- */

static int modules_add_file(struct modules_ctx *c, const char *name, size_t stem,
			    const char *path)
{
	struct modules_file *f;

	if (c->nfiles == c->files_cap) {
		size_t cap = c->files_cap ? 2 * c->files_cap : 256;
		struct modules_file *files = realloc(c->files, cap * sizeof(*files));

		if (!files)
			return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
		c->files = files;
		c->files_cap = cap;
	}
	f = &c->files[c->nfiles];
	memset(f, 0, sizeof(*f));
	/* A file whose name is no module name cannot be asked for: skip it. */
	if (modules_canonical(name, stem, f->name) < 0)
		return 0;
	f->path = strdup(path);
	if (!f->path)
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
	c->nfiles++;
	return 0;
}

static int modules_scan(struct modules_ctx *c, const char *dir, int depth);

static int modules_scan_entry(struct modules_ctx *c, const char *dir, const char *name,
			      int depth)
{
	struct stat st;
	char *path;
	int rc = 0;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
	if (lstat(path, &st) < 0)
		rc = nectl_err_sys(c->err, NECTL_ERR_FILE, errno, "%s: cannot stat", path);
	else if (S_ISDIR(st.st_mode))
		rc = modules_scan(c, path, depth + 1);
	else if (S_ISREG(st.st_mode) && modules_stem_len(name) > 0)
		rc = modules_add_file(c, name, modules_stem_len(name), path);
	free(path);
	return rc;
}

static int modules_scan(struct modules_ctx *c, const char *dir, int depth)
{
	struct dirent *d;
	DIR *dp;
	int rc = 0;

	if (depth > MODULES_DIR_DEPTH_MAX)
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "%s: directories nested too deeply",
				     dir);
	dp = opendir(dir);
	if (!dp) {
		/* No kernel/ at all: every module is built in or missing, and
		 * a missing one gets the clearer "not found" error. */
		if (errno == ENOENT && depth == 0)
			return 0;
		return nectl_err_sys(c->err, NECTL_ERR_FILE, errno, "%s: cannot open", dir);
	}
	while (rc == 0 && (errno = 0, d = readdir(dp))) {
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			rc = modules_scan_entry(c, dir, d->d_name, depth);
	}
	if (rc == 0 && errno != 0)
		rc = nectl_err_sys(c->err, NECTL_ERR_FILE, errno, "%s: cannot read", dir);
	closedir(dp);
	return rc;
}

static int modules_file_cmp(const void *a, const void *b)
{
	const struct modules_file *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	return r ? r : strcmp(x->path, y->path);
}

static int modules_name_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct modules_file *)elem)->name);
}

/* Directory order is arbitrary; a name that two files claim is an error
 * rather than a pick that could differ between hosts. *out is NULL when no
 * file has the name. */
static int modules_lookup(struct modules_ctx *c, const char *name, struct modules_file **out)
{
	struct modules_file *f =
		bsearch(name, c->files, c->nfiles, sizeof(*c->files), modules_name_cmp);

	*out = NULL;
	if (!f)
		return 0;
	while (f > c->files && strcmp(f[-1].name, name) == 0)
		f--;
	if (f + 1 < c->files + c->nfiles && strcmp(f[1].name, name) == 0)
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "module %s is ambiguous: %s and %s",
				     name, f[0].path, f[1].path);
	*out = f;
	return 0;
}

/* ---- modules.builtin ---- */

static int modules_add_builtin(struct modules_ctx *c, const char *line, size_t len)
{
	const char *base = line;
	char name[MODULES_NAME_MAX];

	for (size_t i = 0; i < len; i++)
		if (line[i] == '/')
			base = line + i + 1;
	len -= (size_t)(base - line);
	if (len <= 3 || memcmp(base + len - 3, ".ko", 3) != 0 ||
	    modules_canonical(base, len - 3, name) < 0)
		return 0; /* not a module line: nothing to skip for it */
	if (c->nbuiltin == c->builtin_cap) {
		size_t cap = c->builtin_cap ? 2 * c->builtin_cap : 256;
		char **b = realloc(c->builtin, cap * sizeof(*b));

		if (!b)
			return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
		c->builtin = b;
		c->builtin_cap = cap;
	}
	c->builtin[c->nbuiltin] = strdup(name);
	if (!c->builtin[c->nbuiltin])
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
	c->nbuiltin++;
	return 0;
}

static int modules_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int modules_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(char *const *)elem);
}

static int modules_read_builtin(struct modules_ctx *c)
{
	char *path, *text;
	struct stat st;
	size_t len;
	int rc = 0;

	if (asprintf(&path, "%s/modules.builtin", c->dir) < 0)
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
	/* A kernel without the file lists nothing as built in. */
	if (stat(path, &st) < 0 && errno == ENOENT) {
		free(path);
		return 0;
	}
	if (file_read_all(path, MODULES_BUILTIN_MAX, &text, &len, NECTL_ERR_BUILD, c->err) < 0) {
		free(path);
		return -1;
	}
	for (char *p = text, *end; rc == 0 && p < text + len; p = end + 1) {
		end = memchr(p, '\n', (size_t)(text + len - p));
		if (!end)
			end = text + len;
		rc = modules_add_builtin(c, p, (size_t)(end - p));
	}
	free(text);
	free(path);
	if (rc == 0)
		qsort(c->builtin, c->nbuiltin, sizeof(*c->builtin), modules_str_cmp);
	return rc;
}

static bool modules_is_builtin(const struct modules_ctx *c, const char *name)
{
	return c->nbuiltin &&
	       bsearch(name, c->builtin, c->nbuiltin, sizeof(*c->builtin), modules_key_cmp);
}

/* ---- reading a module file ---- */

static int modules_read_raw(struct modules_ctx *c, struct archive *a, const char *path,
			    uint8_t **out, size_t *out_len)
{
	size_t len = 0, cap = 1 << 20;
	uint8_t *buf = malloc(cap);

	if (!buf)
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
	for (;;) {
		la_ssize_t n;

		if (len == cap) {
			uint8_t *bigger = cap < MODULES_DATA_MAX ? realloc(buf, cap * 2) : NULL;

			if (!bigger) {
				free(buf);
				if (cap < MODULES_DATA_MAX)
					return nectl_err_set(c->err, NECTL_ERR_BUILD,
							     "out of memory");
				return nectl_err_set(c->err, NECTL_ERR_BUILD,
						     "%s: larger than 64 MiB uncompressed", path);
			}
			buf = bigger;
			cap *= 2;
		}
		n = archive_read_data(a, buf + len, cap - len);
		if (n < 0) {
			nectl_err_set(c->err, NECTL_ERR_BUILD, "%s: cannot decompress: %s", path,
				      archive_error_string(a));
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	/* Kept until the image is written: give back the unused tail. */
	*out = realloc(buf, len ? len : 1);
	if (!*out)
		*out = buf;
	*out_len = len;
	return 0;
}

/* Plain, gzip, xz or zstd, told apart by content. Only those three filters:
 * "all" would include ones that run external programs on hostile input. */
static int modules_load(struct modules_ctx *c, const char *path, uint8_t **out, size_t *len)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int rc;

	if (!a)
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK)
		rc = nectl_err_set(c->err, NECTL_ERR_BUILD, "%s: cannot read: %s", path,
				   archive_error_string(a) ? archive_error_string(a) : "empty");
	else
		rc = modules_read_raw(c, a, path, out, len);
	archive_read_free(a);
	return rc;
}

/* ---- ELF ---- */

static uint16_t modules_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t modules_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t modules_le64(const uint8_t *p)
{
	return (uint64_t)modules_le32(p) | (uint64_t)modules_le32(p + 4) << 32;
}

#define ELF_EHDR_LEN 64
#define ELF_SHDR_LEN 64
#define ELF_SHT_NOBITS 8

struct modules_elf {
	const uint8_t *data;
	size_t len;
	uint64_t shoff;
	uint16_t shnum;
};

/* Section i's name offset, and its bytes, checked to lie inside the file.
 * Only the sections used are checked: a NOBITS section's offset means
 * nothing, and a module is not refused over a section nobody reads. */
static uint32_t modules_section_name(const struct modules_elf *elf, uint16_t i)
{
	return modules_le32(elf->data + elf->shoff + (uint64_t)i * ELF_SHDR_LEN);
}

static int modules_section(const struct modules_elf *elf, uint16_t i, const uint8_t **p,
			   uint64_t *size)
{
	const uint8_t *sh = elf->data + elf->shoff + (uint64_t)i * ELF_SHDR_LEN;
	uint64_t off = modules_le64(sh + 0x18);

	*p = elf->data;
	*size = 0;
	if (modules_le32(sh + 4) == ELF_SHT_NOBITS)
		return 0;
	*size = modules_le64(sh + 0x20);
	if (off > elf->len || *size > elf->len - off)
		return -1;
	*p = elf->data + off;
	return 0;
}

static int modules_elf_open(struct modules_elf *elf, const uint8_t *d, size_t len)
{
	elf->data = d;
	elf->len = len;
	if (len < ELF_EHDR_LEN || memcmp(d, "\177ELF", 4) != 0)
		return -1;
	if (d[4] != 2 || d[5] != 1) /* ELFCLASS64, ELFDATA2LSB */
		return -1;
	elf->shoff = modules_le64(d + 0x28);
	elf->shnum = modules_le16(d + 0x3c);
	if (modules_le16(d + 0x3a) != ELF_SHDR_LEN || elf->shnum == 0)
		return -1;
	if (elf->shoff > len || (uint64_t)elf->shnum * ELF_SHDR_LEN > len - elf->shoff)
		return -1;
	return 0;
}

/* Finds .modinfo: *mi stays NULL when the module has none. */
static int modules_find_modinfo(const uint8_t *d, size_t len, const uint8_t **mi, size_t *mi_len)
{
	static const char want[] = ".modinfo";
	struct modules_elf elf;
	const uint8_t *strtab;
	uint64_t strtab_len, size;
	uint16_t shstrndx;

	*mi = NULL;
	if (modules_elf_open(&elf, d, len) < 0)
		return -1;
	shstrndx = modules_le16(d + 0x3e);
	if (shstrndx >= elf.shnum || modules_section(&elf, shstrndx, &strtab, &strtab_len) < 0)
		return -1;
	for (uint16_t i = 0; i < elf.shnum; i++) {
		uint32_t name = modules_section_name(&elf, i);

		if (name >= strtab_len || strtab_len - name < sizeof(want) ||
		    memcmp(strtab + name, want, sizeof(want)) != 0)
			continue;
		if (modules_section(&elf, i, mi, &size) < 0)
			return -1;
		*mi_len = (size_t)size;
		return 0;
	}
	return 0;
}

/* The value of key ("depends=") in .modinfo's NUL-separated strings; the last
 * string need not be terminated. */
static bool modules_modinfo_get(const uint8_t *mi, size_t len, const char *key,
				const char **val, size_t *val_len)
{
	size_t klen = strlen(key);

	for (const uint8_t *p = mi, *end = mi + len, *nul; p < end; p = nul + 1) {
		nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul)
			nul = end;
		if ((size_t)(nul - p) >= klen && memcmp(p, key, klen) == 0) {
			*val = (const char *)p + klen;
			*val_len = (size_t)(nul - p) - klen;
			return true;
		}
	}
	return false;
}

/* ---- resolution ---- */

static int modules_resolve(struct modules_ctx *c, const char *name, const char *needed_by);

static int modules_cycle(struct modules_ctx *c, const struct modules_file *f)
{
	char chain[512] = "";
	size_t i = 0, used = 0;

	while (i < c->depth && c->stack[i] != f)
		i++;
	for (; i < c->depth && used < sizeof(chain); i++)
		used += (size_t)snprintf(chain + used, sizeof(chain) - used, "%s -> ",
					 c->stack[i]->name);
	return nectl_err_set(c->err, NECTL_ERR_BUILD, "module dependency cycle: %s%s", chain,
			     f->name);
}

static int modules_check_name(struct modules_ctx *c, const struct modules_file *f,
			      const uint8_t *mi, size_t mi_len)
{
	char canon[MODULES_NAME_MAX];
	const char *val;
	size_t len;

	if (!modules_modinfo_get(mi, mi_len, "name=", &val, &len))
		return 0;
	if (modules_canonical(val, len, canon) < 0 || strcmp(canon, f->name) != 0)
		return nectl_err_set(c->err, NECTL_ERR_BUILD,
				     "%s: the module calls itself `%.*s`, not %s", f->path,
				     (int)(len < 64 ? len : 64), val, f->name);
	return 0;
}

static int modules_resolve_deps(struct modules_ctx *c, const struct modules_file *f,
				const uint8_t *mi, size_t mi_len)
{
	char dep[MODULES_NAME_MAX];
	const char *val, *end;
	size_t len;

	if (!modules_modinfo_get(mi, mi_len, "depends=", &val, &len))
		return 0;
	for (end = val + len; val < end;) {
		const char *comma = memchr(val, ',', (size_t)(end - val));
		size_t n = (size_t)((comma ? comma : end) - val);

		if (n > 0) {
			if (modules_canonical(val, n, dep) < 0)
				return nectl_err_set(c->err, NECTL_ERR_BUILD,
						     "%s: invalid dependency name `%.*s`", f->path,
						     (int)(n < 64 ? n : 64), val);
			if (modules_resolve(c, dep, f->name) < 0)
				return -1;
		}
		val += n + (comma ? 1 : 0);
	}
	return 0;
}

static int modules_append(struct modules_ctx *c, const struct modules_file *f, uint8_t *data,
			  size_t len)
{
	struct image_module *m;

	if (c->nout == c->out_cap) {
		size_t cap = c->out_cap ? 2 * c->out_cap : 8;
		struct image_module *out = realloc(c->out, cap * sizeof(*out));

		if (!out)
			return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
		c->out = out;
		c->out_cap = cap;
	}
	m = &c->out[c->nout++];
	memcpy(m->name, f->name, sizeof(m->name));
	m->data = data;
	m->len = len;
	return 0;
}

/* Loads f and what it depends on, then appends f: a depth-first post-order. */
static int modules_visit(struct modules_ctx *c, struct modules_file *f)
{
	const uint8_t *mi;
	size_t len = 0, mi_len = 0;
	uint8_t *data = NULL;
	int rc;

	if (c->depth == MODULES_DEP_DEPTH_MAX)
		return nectl_err_set(c->err, NECTL_ERR_BUILD,
				     "module %s: dependency chain deeper than %d", f->name,
				     MODULES_DEP_DEPTH_MAX);
	if (modules_load(c, f->path, &data, &len) < 0)
		return -1;
	rc = modules_find_modinfo(data, len, &mi, &mi_len);
	if (rc < 0 || !mi) {
		free(data);
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "%s: not a kernel module (%s)",
				     f->path,
				     rc < 0 ? "not a well-formed 64-bit little-endian ELF file"
					    : "no .modinfo section");
	}
	f->state = MODULES_VISITING;
	c->stack[c->depth++] = f;
	if (modules_check_name(c, f, mi, mi_len) < 0 ||
	    modules_resolve_deps(c, f, mi, mi_len) < 0 || modules_append(c, f, data, len) < 0) {
		free(data);
		return -1;
	}
	c->depth--;
	f->state = MODULES_DONE;
	return 0;
}

static int modules_resolve(struct modules_ctx *c, const char *name, const char *needed_by)
{
	struct modules_file *f;

	if (modules_is_builtin(c, name))
		return 0;
	if (modules_lookup(c, name, &f) < 0)
		return -1;
	if (!f) {
		if (needed_by)
			return nectl_err_set(c->err, NECTL_ERR_BUILD,
					     "module %s, needed by %s, not found in %s (neither a "
					     ".ko file nor built in)",
					     name, needed_by, c->dir);
		return nectl_err_set(c->err, NECTL_ERR_BUILD,
				     "module %s not found in %s (neither a .ko file nor built in)",
				     name, c->dir);
	}
	if (f->state == MODULES_DONE)
		return 0;
	if (f->state == MODULES_VISITING)
		return modules_cycle(c, f);
	return modules_visit(c, f);
}

static void modules_ctx_free(struct modules_ctx *c)
{
	for (size_t i = 0; i < c->nfiles; i++)
		free(c->files[i].path);
	free(c->files);
	for (size_t i = 0; i < c->nbuiltin; i++)
		free(c->builtin[i]);
	free(c->builtin);
}

static int modules_resolve_all(struct modules_ctx *c, const char *const *wanted, size_t nwanted)
{
	char *kernel;
	int rc;

	if (asprintf(&kernel, "%s/kernel", c->dir) < 0)
		return nectl_err_set(c->err, NECTL_ERR_BUILD, "out of memory");
	rc = modules_scan(c, kernel, 0);
	free(kernel);
	if (rc < 0 || modules_read_builtin(c) < 0)
		return -1;
	if (c->nfiles)
		qsort(c->files, c->nfiles, sizeof(*c->files), modules_file_cmp);
	for (size_t i = 0; i < nwanted; i++) {
		char name[MODULES_NAME_MAX];

		if (modules_canonical(wanted[i], strlen(wanted[i]), name) < 0)
			return nectl_err_set(c->err, NECTL_ERR_INVALID_ARG,
					     "`%s` is not a kernel module name", wanted[i]);
		if (modules_resolve(c, name, NULL) < 0)
			return -1;
	}
	return 0;
}

int image_modules_resolve(const char *modules_dir, const char *const *wanted, size_t nwanted,
			  struct image_module **out, size_t *count, struct nectl_err *err)
{
	struct modules_ctx c = {.dir = modules_dir, .err = err};
	int rc = modules_resolve_all(&c, wanted, nwanted);

	modules_ctx_free(&c);
	if (rc < 0) {
		image_modules_free(c.out, c.nout);
		return -1;
	}
	*out = c.out;
	*count = c.nout;
	return 0;
}

void image_modules_free(struct image_module *mods, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(mods[i].data);
	free(mods);
}
