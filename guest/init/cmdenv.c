/* /cmd and /env from the customer ramdisk: the app's argv and environment. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

#include "init.h"

/* Reads at most CMDENV_MAX_FILE bytes (one more to detect a larger file) into
 * buf, which has room for the NUL cmdenv_parse() may add. Returns false if absent. */
static bool read_file(const char *path, char *buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	*len = 0;
	if (fd < 0) {
		if (errno == ENOENT)
			return false;
		die(errno, "%s: cannot open", path);
	}
	while (*len <= CMDENV_MAX_FILE &&
	       (n = read(fd, buf + *len, CMDENV_MAX_FILE + 1 - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(errno, "%s: cannot read", path);
		*len += (size_t)n;
	}
	close(fd);
	return true;
}

/* An absent or empty file leaves the list empty, as with AWS's init. */
static void load(const char *path, char *buf, enum cmdenv_kind kind, struct strlist *list)
{
	char err[128];
	size_t len;

	list->n = 0;
	list->v[0] = NULL;
	if (!read_file(path, buf, &len))
		return;
	if (cmdenv_parse(buf, len, kind, list, err, sizeof(err)) < 0)
		die(0, "%s: %s", path, err);
	/* The app need not see how it was started; AWS's init removes them too. */
	unlink(path);
}

void read_cmd_env(struct strlist *argv, struct strlist *env)
{
	static char cmd_buf[CMDENV_MAX_FILE + 2], env_buf[CMDENV_MAX_FILE + 2];
	static char *default_argv[] = {"sh", NULL};
	static char *default_env[] = {"PATH=" DEFAULT_PATH, NULL};

	load("/env", env_buf, CMDENV_ENV, env);
	load("/cmd", cmd_buf, CMDENV_CMD, argv);
	if (env->n == 0) {
		say("/env is missing or empty: the app gets PATH=%s", DEFAULT_PATH);
		env->v[0] = default_env[0];
		env->v[1] = NULL;
		env->n = 1;
	}
	if (argv->n == 0) {
		say("/cmd is missing or empty: running sh");
		argv->v[0] = default_argv[0];
		argv->v[1] = NULL;
		argv->n = 1;
	}
}
