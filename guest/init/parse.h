/* The pure parts of nectl-init: everything it decides from bytes alone, with no
 * system calls, so that tests/unit/test_init.c can check it on the host. */
#ifndef NECTL_INIT_PARSE_H
#define NECTL_INIT_PARSE_H

#include <stddef.h>

/* Caps on /cmd and /env. A line is one argv or environment string, so it may not
 * exceed the kernel's MAX_ARG_STRLEN (131072 bytes including the NUL): a longer one
 * would only fail later in execve() with a vaguer E2BIG. */
#define CMDENV_MAX_FILE	   (1024 * 1024)
#define CMDENV_MAX_ENTRIES 4096
#define CMDENV_MAX_LINE	   (131072 - 1)

/* At most this many modules in /nectl/modules: far more than any enclave needs. */
#define MODULES_MAX 256

#define DEFAULT_PATH "/sbin:/usr/sbin:/bin:/usr/bin"

enum cmdenv_kind {
	CMDENV_CMD, /* argv: every line is kept, an empty line is an empty argument */
	CMDENV_ENV, /* environment: empty lines are skipped, others must be KEY=VALUE */
};

/* A NULL-terminated string vector whose strings point into a parsed buffer. */
struct strlist {
	char *v[CMDENV_MAX_ENTRIES + 1];
	size_t n;
};

/*
 * Splits buf[0..len) into lines in place: each '\n' (and a '\r' just before it)
 * becomes a NUL. buf must have room for len + 1 bytes, since a last line without
 * a trailing newline is terminated at buf[len]. Returns 0, or -1 with a message
 * ("line 3 contains a NUL byte") in err.
 */
int cmdenv_parse(char *buf, size_t len, enum cmdenv_kind kind, struct strlist *out, char *err,
		 size_t errlen);

/* The value of NAME in a KEY=VALUE list, or NULL if absent. */
const char *env_lookup(const struct strlist *env, const char *name);

/*
 * Keeps the names that are kernel modules ("*.ko", not hidden) and sorts them by
 * byte value, so "00-a.ko" < "01-b.ko" < "10-c.ko". Returns the new count; the
 * kept names are names[0..count).
 */
size_t modules_select(const char **names, size_t n);

/* "07-virtio_mmio.ko" -> "virtio_mmio", "nsm.ko" -> "nsm": the name to print. */
void module_display_name(const char *file, char *out, size_t outlen);

/*
 * Parses /proc/cgroups ("name hierarchy num_cgroups enabled" per line, '#'
 * header) in place and stores up to max names of enabled controllers that are
 * safe as one path component. Returns the number stored.
 */
size_t cgroups_enabled(char *buf, const char **names, size_t max);

/* "app exited with status 3" or "app killed by signal 9 (SIGKILL)" from a wait status. */
void describe_exit(int status, char *out, size_t outlen);

#endif
