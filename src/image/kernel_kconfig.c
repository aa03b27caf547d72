/* The configuration fragments nectl ships (src/image/kconfig/, embedded in the
 * binary so that an installed nectl can build its kernel), and the check that
 * each of their options took its value: kconfig drops an option whose
 * dependencies are unmet without a word, and a Nitro kernel missing one of
 * them (say VIRTIO_MMIO_CMDLINE_DEVICES) boots and then finds no devices. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "image/kernel_kconfig.h"
#include "nectl/kernel.h"

/* From kconfig_*.S (scripts/embed.sh), each followed by a NUL. */
extern const char nectl_kconfig_x86_64_start[];
extern const char nectl_kconfig_aarch64_start[];

#define KCONFIG_NAME_MAX  128
#define KCONFIG_VALUE_MAX 256
#define KCONFIG_OPTS_MAX  1024
/* How many further wrong options an error names after the first. */
#define KCONFIG_MORE_NAMED 4

const char *kernel_config_fragment(enum eif_arch arch)
{
	return arch == EIF_ARCH_AARCH64 ? nectl_kconfig_aarch64_start : nectl_kconfig_x86_64_start;
}

void kernel_config_hash(enum eif_arch arch, char out[65])
{
	const char *text = kernel_config_fragment(arch);
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", i < n ? md[i] : 0);
}

void kernel_entry_name(enum eif_arch arch, const char *hash_hex, char *out, size_t len)
{
	snprintf(out, len, "nectl-%s-%s-%.12s", NECTL_KSRC_VERSION, eif_arch_name(arch), hash_hex);
}

/* One option of a fragment; unset for `is not set` and `=n`. */
struct kconfig_opt {
	char name[KCONFIG_NAME_MAX];
	char value[KCONFIG_VALUE_MAX];
	bool unset;
};

/* A line of at most KCONFIG_LINE_MAX bytes from text at *pos; false at the end. */
static bool kconfig_next_line(const char *text, size_t len, size_t *pos, char *line,
			      bool *long_line)
{
	size_t start = *pos, end;
	const char *nl;

	if (start >= len)
		return false;
	nl = memchr(text + start, '\n', len - start);
	end = nl ? (size_t)(nl - text) : len;
	*pos = nl ? end + 1 : len;
	*long_line = end - start >= KCONFIG_LINE_MAX;
	if (*long_line)
		end = start + KCONFIG_LINE_MAX - 1;
	memcpy(line, text + start, end - start);
	line[end - start] = '\0';
	for (size_t n = strlen(line); n > 0 && isspace((unsigned char)line[n - 1]);)
		line[--n] = '\0';
	return true;
}

static size_t kconfig_name_len(const char *s)
{
	size_t n = 0;

	if (strncmp(s, "CONFIG_", 7) != 0)
		return 0;
	while (isalnum((unsigned char)s[7 + n]) || s[7 + n] == '_')
		n++;
	return n ? 7 + n : 0;
}

/* A value kconfig would write: y/m/n, a number, or a double-quoted string. */
static bool kconfig_value_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= KCONFIG_VALUE_MAX)
		return false;
	if (v[0] == '"')
		return n >= 2 && v[n - 1] == '"' && v[n - 2] != '\\';
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '-')
			return false;
	return true;
}

/* 1 with *o filled for an option line, 0 for a blank or comment line, -1 when
 * the line is neither. */
static int kconfig_parse_line(const char *line, struct kconfig_opt *o)
{
	size_t n;

	memset(o, 0, sizeof(*o));
	if (strncmp(line, "# CONFIG_", 9) == 0) {
		n = kconfig_name_len(line + 2);
		if (n == 0 || n >= KCONFIG_NAME_MAX || strcmp(line + 2 + n, " is not set") != 0)
			return 0; /* a comment that merely starts like one */
		memcpy(o->name, line + 2, n);
		o->unset = true;
		return 1;
	}
	if (line[0] == '\0' || line[0] == '#')
		return 0;
	n = kconfig_name_len(line);
	if (n == 0 || n >= KCONFIG_NAME_MAX || line[n] != '=' || !kconfig_value_ok(line + n + 1))
		return -1;
	memcpy(o->name, line, n);
	snprintf(o->value, sizeof(o->value), "%s", line + n + 1);
	o->unset = strcmp(o->value, "n") == 0;
	return 1;
}

/* Visits each option of the fragment in order; stops at the first error. */
static int kconfig_each(const char *fragment, const char *label,
			int (*fn)(const struct kconfig_opt *o, size_t lineno, void *ctx), void *ctx,
			struct nectl_err *err)
{
	size_t len = strnlen(fragment, KCONFIG_FRAGMENT_MAX + 1), pos = 0, lineno = 0;
	char line[KCONFIG_LINE_MAX];
	struct kconfig_opt o;
	bool long_line;

	if (len > KCONFIG_FRAGMENT_MAX)
		return nectl_err_set(err, NECTL_ERR_SERDE, "%s: larger than %d bytes", label,
				     KCONFIG_FRAGMENT_MAX);
	while (kconfig_next_line(fragment, len, &pos, line, &long_line)) {
		int r = kconfig_parse_line(line, &o);

		lineno++;
		if (long_line || r < 0)
			return nectl_err_set(err, NECTL_ERR_SERDE,
					     "%s line %zu: not `CONFIG_NAME=value` or `# "
					     "CONFIG_NAME is not set`: %.80s",
					     label, lineno, line);
		if (r > 0 && fn(&o, lineno, ctx) < 0)
			return -1;
	}
	return 0;
}

struct kconfig_names {
	char (*names)[KCONFIG_NAME_MAX];
	size_t n;
	const char *label;
	struct nectl_err *err;
};

static int kconfig_note_name(const struct kconfig_opt *o, size_t lineno, void *ctx)
{
	struct kconfig_names *s = ctx;

	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], o->name) == 0)
			return nectl_err_set(s->err, NECTL_ERR_SERDE, "%s line %zu: %s given twice",
					     s->label, lineno, o->name);
	if (s->n == KCONFIG_OPTS_MAX)
		return nectl_err_set(s->err, NECTL_ERR_SERDE, "%s: more than %d options", s->label,
				     KCONFIG_OPTS_MAX);
	memcpy(s->names[s->n++], o->name, KCONFIG_NAME_MAX);
	return 0;
}

int kconfig_check_fragment(const char *fragment, const char *label, struct nectl_err *err)
{
	struct kconfig_names s = {calloc(KCONFIG_OPTS_MAX, KCONFIG_NAME_MAX), 0, label, err};
	int rc;

	if (!s.names)
		return nectl_err_set(err, NECTL_ERR_SERDE, "%s: out of memory", label);
	rc = kconfig_each(fragment, label, kconfig_note_name, &s, err);
	free(s.names);
	return rc;
}

enum kconfig_state { KCONFIG_ABSENT, KCONFIG_UNSET, KCONFIG_SET };

/* What config says of name; the value (without the newline) in value. */
static enum kconfig_state kconfig_lookup(const char *config, size_t len, const char *name,
					 char *value, size_t cap)
{
	size_t pos = 0, n = strlen(name);
	char line[KCONFIG_LINE_MAX];
	bool long_line;

	while (kconfig_next_line(config, len, &pos, line, &long_line)) {
		if (strncmp(line, name, n) == 0 && line[n] == '=') {
			snprintf(value, cap, "%s", line + n + 1);
			return strcmp(value, "n") == 0 ? KCONFIG_UNSET : KCONFIG_SET;
		}
		if (strncmp(line, "# ", 2) == 0 && strncmp(line + 2, name, n) == 0 &&
		    strcmp(line + 2 + n, " is not set") == 0)
			return KCONFIG_UNSET;
	}
	return KCONFIG_ABSENT;
}

struct kconfig_verdict {
	const char *config;
	size_t len;
	size_t wrong;
	char first[KCONFIG_VALUE_MAX * 3];
	char more[KCONFIG_MORE_NAMED * KCONFIG_NAME_MAX];
};

/* How o came out in the .config, in words; empty when it took its value. */
static void kconfig_describe(const struct kconfig_opt *o, enum kconfig_state st, const char *got,
			     char *out, size_t cap)
{
	out[0] = '\0';
	if (o->unset && st == KCONFIG_SET)
		snprintf(out, cap, "# %s is not set came out as %s=%.100s", o->name, o->name, got);
	else if (!o->unset && st == KCONFIG_SET && strcmp(got, o->value) != 0)
		snprintf(out, cap, "%s=%s came out as %s=%.100s", o->name, o->value, o->name, got);
	else if (!o->unset && st == KCONFIG_UNSET)
		snprintf(out, cap, "%s=%s came out not set (a dependency is not met)", o->name,
			 o->value);
	else if (!o->unset && st == KCONFIG_ABSENT)
		snprintf(out, cap,
			 "%s=%s is missing from the .config (a dependency is not met, or this "
			 "kernel has no such option)",
			 o->name, o->value);
}

static int kconfig_judge(const struct kconfig_opt *o, size_t lineno, void *ctx)
{
	struct kconfig_verdict *v = ctx;
	char got[KCONFIG_VALUE_MAX], what[sizeof(v->first)];
	enum kconfig_state st = kconfig_lookup(v->config, v->len, o->name, got, sizeof(got));

	(void)lineno;
	kconfig_describe(o, st, got, what, sizeof(what));
	if (!what[0])
		return 0;
	if (v->wrong == 0)
		memcpy(v->first, what, sizeof(what));
	else if (v->wrong <= KCONFIG_MORE_NAMED)
		snprintf(v->more + strlen(v->more), sizeof(v->more) - strlen(v->more), "%s%s",
			 v->wrong > 1 ? ", " : "", o->name);
	v->wrong++;
	return 0;
}

int kconfig_verify(const char *fragment, const char *label, const char *config, size_t len,
		   struct nectl_err *err)
{
	struct kconfig_verdict v;

	if (kconfig_check_fragment(fragment, label, err) < 0)
		return -1;
	if (len > KCONFIG_CONFIG_MAX || memchr(config, '\0', len))
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "the .config is larger than %d bytes or holds a NUL byte",
				     KCONFIG_CONFIG_MAX);
	memset(&v, 0, sizeof(v));
	v.config = config;
	v.len = len;
	if (kconfig_each(fragment, label, kconfig_judge, &v, err) < 0)
		return -1;
	if (v.wrong == 0)
		return 0;
	if (v.wrong == 1)
		return nectl_err_set(err, NECTL_ERR_BUILD, "kernel configuration (%s): %s", label,
				     v.first);
	return nectl_err_set(err, NECTL_ERR_BUILD, "kernel configuration (%s): %s; %zu more: %s%s",
			     label, v.first, v.wrong - 1, v.more,
			     v.wrong - 1 > KCONFIG_MORE_NAMED ? ", ..." : "");
}

enum kbuild_line kbuild_classify(const char *line)
{
	static const char *const objects[] = {"CC", "AS", "HOSTCC"};
	char tag[16], target[256];

	/* kbuild's quiet lines: two spaces, a tag in capitals, spaces, a target. */
	if (strncmp(line, "  ", 2) != 0 || !isupper((unsigned char)line[2]) ||
	    sscanf(line + 2, "%15[A-Z0-9_] %255s", tag, target) != 2)
		return KBUILD_OTHER;
	if (strcmp(tag, "LD") == 0 && strcmp(target, "vmlinux.o") == 0)
		return KBUILD_LINK;
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		if (strcmp(tag, objects[i]) == 0)
			return KBUILD_OBJECT;
	return KBUILD_OTHER;
}
