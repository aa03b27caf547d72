/* Pure parsing for nectl-init; see parse.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "parse.h"

static int line_error(char *err, size_t errlen, size_t lineno, const char *what)
{
	snprintf(err, errlen, "line %zu %s", lineno, what);
	return -1;
}

/* Checks one line (already NUL-terminated, length len) and appends it to out. */
static int add_line(char *line, size_t len, size_t lineno, enum cmdenv_kind kind,
		    struct strlist *out, char *err, size_t errlen)
{
	char *eq;

	if (memchr(line, '\0', len))
		return line_error(err, errlen, lineno, "contains a NUL byte");
	if (len > CMDENV_MAX_LINE) {
		snprintf(err, errlen, "line %zu is longer than %d bytes", lineno, CMDENV_MAX_LINE);
		return -1;
	}
	if (kind == CMDENV_ENV) {
		if (len == 0)
			return 0;
		eq = strchr(line, '=');
		if (!eq || eq == line)
			return line_error(err, errlen, lineno, "is not KEY=VALUE");
	}
	if (out->n == CMDENV_MAX_ENTRIES) {
		snprintf(err, errlen, "more than %d entries", CMDENV_MAX_ENTRIES);
		return -1;
	}
	out->v[out->n++] = line;
	out->v[out->n] = NULL;
	return 0;
}

int cmdenv_parse(char *buf, size_t len, enum cmdenv_kind kind, struct strlist *out, char *err,
		 size_t errlen)
{
	size_t pos = 0, lineno = 0;

	out->n = 0;
	out->v[0] = NULL;
	if (len > CMDENV_MAX_FILE) {
		snprintf(err, errlen, "larger than %d bytes", CMDENV_MAX_FILE);
		return -1;
	}
	while (pos < len) {
		char *line = buf + pos;
		char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;

		pos += n + (nl != NULL);
		lineno++;
		line[n] = '\0';
		/* A CR before the newline is an editor's line ending, not part of the value:
		 * kept, it would turn "/bin/app" into a name no file has. */
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (add_line(line, n, lineno, kind, out, err, errlen) < 0)
			return -1;
	}
	return 0;
}

const char *env_lookup(const struct strlist *env, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->v[i], name, len) == 0 && env->v[i][len] == '=')
			return env->v[i] + len + 1;
	}
	return NULL;
}

static int is_module_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 3 && strcmp(name + len - 3, ".ko") == 0;
}

/* strcmp, not strcoll: the load order must not depend on a locale. */
static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t modules_select(const char **names, size_t n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		if (is_module_name(names[i]))
			names[kept++] = names[i];
	}
	qsort(names, kept, sizeof(*names), cmp_names);
	return kept;
}

void module_display_name(const char *file, char *out, size_t outlen)
{
	const char *p = file;
	size_t len;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p != file && *p == '-')
		file = p + 1;
	len = strlen(file);
	if (len > 3 && strcmp(file + len - 3, ".ko") == 0)
		len -= 3;
	snprintf(out, outlen, "%.*s", (int)len, file);
}

/* A controller name becomes /sys/fs/cgroup/<name>: it must be one path component. */
static int is_safe_component(const char *s)
{
	return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
	       strcmp(s, "..") != 0 && strlen(s) <= 64;
}

size_t cgroups_enabled(char *buf, const char **names, size_t max)
{
	size_t count = 0;
	char *save = NULL;

	for (char *line = strtok_r(buf, "\n", &save); line && count < max;
	     line = strtok_r(NULL, "\n", &save)) {
		char *fsave = NULL, *field[4];
		int nf = 0;

		if (line[0] == '#')
			continue;
		for (char *f = strtok_r(line, " \t", &fsave); f && nf < 4;
		     f = strtok_r(NULL, " \t", &fsave))
			field[nf++] = f;
		if (nf == 4 && strcmp(field[3], "1") == 0 && is_safe_component(field[0]))
			names[count++] = field[0];
	}
	return count;
}

void describe_exit(int status, char *out, size_t outlen)
{
	if (WIFEXITED(status)) {
		snprintf(out, outlen, "app exited with status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		const char *abbrev = sigabbrev_np(sig);

		snprintf(out, outlen, "app killed by signal %d%s%s%s%s", sig, abbrev ? " (SIG" : "",
			 abbrev ? abbrev : "", abbrev ? ")" : "",
			 WCOREDUMP(status) ? ", core dumped" : "");
	} else {
		snprintf(out, outlen, "app stopped with wait status 0x%x", (unsigned)status);
	}
}
