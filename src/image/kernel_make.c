/* make in a kernel tree, reproducibly: a clean environment (PATH and nothing
 * else of ours: no MAKEFLAGS, CFLAGS, ARCH or KBUILD_* from the caller),
 * LC_ALL=C, and kbuild's build identity pinned (timestamp from the source
 * package, user, host, build number), so that the same source and toolchain
 * give the same image bytes anywhere. Also the check, before anything is
 * downloaded, that the tools such a build needs are there. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/kernel_build.h"
#include "image/kernel_kconfig.h"

/* What make prints is kept up to this size (a normal build logs ~150 KB). */
#define KMAKE_LOG_MAX  (64ULL << 20)
#define KMAKE_ENV_MAX  8
#define KMAKE_ARGV_MAX 8

struct kernel_tool {
	const char *what; /* a program looked up in PATH, or an absolute file path */
	const char *package;
};

static const struct kernel_tool kernel_tools[] = {
    {"make", "make"},	{"gcc", "gcc"},	    {"/usr/include/stdio.h", "libc6-dev"},
    {"flex", "flex"},	{"bison", "bison"}, {"bc", "bc"},
    {"perl", "perl"},	{"xz", "xz-utils"}, {"dpkg-deb", "dpkg"},
    {"apt-get", "apt"},
};

/* objtool, which x86_64's ORC unwinder and mitigations need, reads ELF. */
static const struct kernel_tool kernel_tools_x86_64[] = {
    {"/usr/include/libelf.h", "libelf-dev"},
};

static const struct kernel_tool kernel_tools_aarch64[] = {
    {"aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"},
    {"aarch64-linux-gnu-ld", "binutils-aarch64-linux-gnu"},
};

void kernel_build_report(const struct kernel_build_opts *o, const char *phase, uint64_t done,
			 uint64_t total)
{
	if (o->progress)
		o->progress(o->ctx, phase, done, total);
}

static bool kernel_tool_present(const char *what)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (what[0] == '/')
		return access(what, R_OK) == 0;
	for (const char *p = path ? path : ""; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, n ? p : ".", what);
		if (access(buf, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

static void kernel_tools_scan(const struct kernel_tool *t, size_t n, char *tools, char *pkgs,
			      size_t cap)
{
	for (size_t i = 0; i < n; i++) {
		if (kernel_tool_present(t[i].what))
			continue;
		snprintf(tools + strlen(tools), cap - strlen(tools), "%s%s", tools[0] ? ", " : "",
			 t[i].what);
		if (!strstr(pkgs, t[i].package))
			snprintf(pkgs + strlen(pkgs), cap - strlen(pkgs), " %s", t[i].package);
	}
}

int kernel_build_check_tools(enum eif_arch arch, struct nectl_err *err)
{
	char tools[512] = "", pkgs[512] = "";

	kernel_tools_scan(kernel_tools, sizeof(kernel_tools) / sizeof(kernel_tools[0]), tools, pkgs,
			  sizeof(tools));
	if (arch == EIF_ARCH_AARCH64)
		kernel_tools_scan(kernel_tools_aarch64,
				  sizeof(kernel_tools_aarch64) / sizeof(kernel_tools_aarch64[0]),
				  tools, pkgs, sizeof(tools));
	else
		kernel_tools_scan(kernel_tools_x86_64,
				  sizeof(kernel_tools_x86_64) / sizeof(kernel_tools_x86_64[0]),
				  tools, pkgs, sizeof(tools));
	if (!tools[0])
		return 0;
	return nectl_err_set(err, NECTL_ERR_BUILD,
			     "building the %s kernel needs %s, which are missing (Debian "
			     "packages:%s; install them with apt-get, or `make deps` in nectl's "
			     "source tree)",
			     eif_arch_name(arch), tools, pkgs);
}

/* The whole environment make gets; strings live in store. */
static void kernel_make_env(char **env, char store[KMAKE_ENV_MAX][4200])
{
	const char *path = getenv("PATH");
	const char *fixed[] = {
	    "LC_ALL=C",
	    "TZ=UTC",
	    ("KBUILD_BUILD_TIMESTAMP=" NECTL_KSRC_DATE), /* () : one entry, for clang */
	    "KBUILD_BUILD_USER=nectl",
	    "KBUILD_BUILD_HOST=nectl",
	    /* Otherwise the "#N" in the version string counts rebuilds of a tree. */
	    "KBUILD_BUILD_VERSION=1",
	};
	size_t n = 0;

	snprintf(store[n], sizeof(store[n]), "PATH=%s", path && *path ? path : "/usr/bin:/bin");
	env[n] = store[n];
	n++;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++, n++) {
		snprintf(store[n], sizeof(store[n]), "%s", fixed[i]);
		env[n] = store[n];
	}
	env[n] = NULL;
}

static void kernel_make_argv(const struct kernel_make *m, const char *extra, const char *target,
			     unsigned jobs, char **argv, char store[KMAKE_ARGV_MAX][4200])
{
	size_t n = 0;

	snprintf(store[n++], sizeof(store[0]), "make");
	if (jobs)
		snprintf(store[n++], sizeof(store[0]), "-j%u", jobs);
	if (m->o->arch == EIF_ARCH_AARCH64) {
		snprintf(store[n++], sizeof(store[0]), "ARCH=arm64");
		snprintf(store[n++], sizeof(store[0]), "CROSS_COMPILE=aarch64-linux-gnu-");
	} else {
		snprintf(store[n++], sizeof(store[0]), "ARCH=x86");
	}
	if (extra)
		snprintf(store[n++], sizeof(store[0]), "%s", extra);
	snprintf(store[n++], sizeof(store[0]), "%s", target);
	for (size_t i = 0; i < n; i++)
		argv[i] = store[i];
	argv[n] = NULL;
}

static pid_t kernel_make_spawn(const struct kernel_make *m, char **argv, char **env, int out)
{
	pid_t pid = fork();

	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
		    chdir(m->src) < 0)
			_exit(126);
		execvpe(argv[0], argv, env);
		_exit(127);
	}
	return pid;
}

/* One complete line of make's output: progress, and the last error seen. */
static void kernel_make_line(struct kernel_make *m, const char *line)
{
	enum kbuild_line kind = kbuild_classify(line);

	if (kind == KBUILD_LINK)
		m->phase = "link";
	if (kind == KBUILD_OBJECT) {
		m->objects++;
		if (m->objects >= m->objects_est)
			m->objects_est = m->objects + 1;
	}
	if (kind == KBUILD_OTHER &&
	    (strstr(line, "error:") || strstr(line, "Error ") || strstr(line, "***")))
		snprintf(m->last_error, sizeof(m->last_error), "%s", line);
	kernel_build_report(m->o, m->phase, m->objects, m->objects_est);
}

static void kernel_make_log(struct kernel_make *m, const char *buf, size_t n)
{
	if (m->log_bytes + n > KMAKE_LOG_MAX)
		n = m->log_bytes < KMAKE_LOG_MAX ? (size_t)(KMAKE_LOG_MAX - m->log_bytes) : 0;
	if (n && write(m->log_fd, buf, n) > 0)
		m->log_bytes += n;
}

/* Reads make's output until it closes the pipe: into the log, line by line
 * into progress (lines longer than the buffer are cut). */
static void kernel_make_drain(struct kernel_make *m, int fd)
{
	char buf[65536], line[KCONFIG_LINE_MAX];
	size_t used = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		kernel_make_log(m, buf, (size_t)n);
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (used < sizeof(line) - 1)
					line[used++] = buf[i];
				continue;
			}
			line[used] = '\0';
			kernel_make_line(m, line);
			used = 0;
		}
	}
}

int kernel_make_run(struct kernel_make *m, const char *extra, const char *target, unsigned jobs,
		    struct nectl_err *err)
{
	char argv_store[KMAKE_ARGV_MAX][4200], env_store[KMAKE_ENV_MAX][4200];
	char *argv[KMAKE_ARGV_MAX + 1], *env[KMAKE_ENV_MAX + 1];
	int pipefd[2], status;
	pid_t pid;

	kernel_make_argv(m, extra, target, jobs, argv, argv_store);
	kernel_make_env(env, env_store);
	dprintf(m->log_fd, "\n$ (cd %s && make%s%s %s)\n", m->src, extra ? " " : "",
		extra ? extra : "", target);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return nectl_err_sys(err, NECTL_ERR_BUILD, errno, "make %s: cannot create a pipe",
				     target);
	pid = kernel_make_spawn(m, argv, env, pipefd[1]);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return nectl_err_sys(err, NECTL_ERR_BUILD, errno, "make %s: cannot fork", target);
	}
	kernel_build_report(m->o, m->phase, m->objects, m->objects_est);
	kernel_make_drain(m, pipefd[0]);
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return nectl_err_sys(err, NECTL_ERR_BUILD, errno, "make %s: cannot wait",
					     target);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return nectl_err_set(err, NECTL_ERR_BUILD, "make %s: cannot run make", target);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
