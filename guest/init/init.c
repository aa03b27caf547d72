/*
 * nectl-init: the enclave's PID 1. It does what AWS's enclave init does (mounts,
 * NSM driver, heartbeat to the parent, /cmd and /env, switch into /rootfs, run
 * the app, reboot when it exits) and also reports the app's end to the parent
 * over vsock (report.c), loads nectl's module directory, brings
 * up lo, and says on the console what it did and, on failure, which step failed
 * and why, before an orderly shutdown instead of a kernel panic.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

#ifndef NECTL_VERSION
#define NECTL_VERSION "unknown"
#endif

/* One write per message, so that lines from init and the app do not interleave. */
__attribute__((format(printf, 3, 0))) static void vsay(const char *prefix, int err,
							const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), PREFIX "%s", prefix);

	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	if (err)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(err));
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report to. */
	}
}

void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("", 0, fmt, ap);
	va_end(ap);
}

void warn_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("warning: ", err, fmt, ap);
	va_end(ap);
}

noreturn void die(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("", err, fmt, ap);
	va_end(ap);
	shutdown_enclave();
}

noreturn void shutdown_enclave(void)
{
	sync();
	reboot(RB_AUTOBOOT);
	/* Only reached without CAP_SYS_BOOT; exiting PID 1 lets the kernel panic, and
	 * panic=30 on the cmdline turns that into a reboot too. */
	say("shutdown: reboot: %s", strerror(errno));
	_exit(1);
}

/*
 * stdin, stdout and stderr on /dev/console, for init and (inherited) the app.
 * Without a console, messages go to the kernel log, which the console shows.
 * No O_CLOEXEC: the kernel may have started us with 0-2 closed, so the open can
 * return one of them, and dup2() onto itself would leave the flag set.
 */
static void open_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	int err = errno;

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	} else {
		fd = open("/dev/kmsg", O_WRONLY);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, STDIN_FILENO);
		warn_err(err, "console: cannot open /dev/console, writing to the kernel log");
	}
	if (fd > STDERR_FILENO)
		close(fd);
}

static void block_signals(void)
{
	sigset_t all;

	/* PID 1 gets no default actions, and SIGCHLD need not be caught for waitpid(). */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
}

/* In the child: never returns; a failed exec exits 127 like a shell would. */
static noreturn void exec_app(char **argv, char **envp, const char *path)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	/* A new session also makes the app its process group's leader. */
	setsid();
	/* execvpe() searches the PATH of the caller's environment, not of envp. */
	setenv("PATH", path, 1);
	execvpe(argv[0], argv, envp);
	say("cannot run %s: %s", argv[0], strerror(errno));
	_exit(127);
}

/* Reaps every orphan that the kernel hands to PID 1 until the app itself exits. */
static int run_app(char **argv, char **envp, const char *path)
{
	pid_t app, pid;
	int status;

	say("running %s", argv[0]);
	app = fork();
	if (app < 0)
		die(errno, "launch: fork");
	if (app == 0)
		exec_app(argv, envp, path);
	do {
		pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno != EINTR)
			die(errno, "launch: waiting for the app");
	} while (pid != app);
	return status;
}

int main(void)
{
	static struct strlist argv, env;
	const char *path;
	char msg[128];
	int err, status;

	/* Running this on a host by mistake would mount, load modules and reboot it. */
	if (getpid() != 1) {
		fprintf(stderr, PREFIX "not PID 1; this is the enclave's init, not a command\n");
		return 2;
	}
	block_signals();
	err = mount_early_dev();
	open_console();
	say("starting (nectl %s)", NECTL_VERSION);
	if (err)
		die(err, "mount: cannot mount devtmpfs on /dev");
	load_modules();
	loopback_up();
	heartbeat();
	report_open();
	read_cmd_env(&argv, &env);
	switch_root("/rootfs");
	mount_rootfs_filesystems();
	path = env_lookup(&env, "PATH");
	status = run_app(argv.v, env.v, path ? path : DEFAULT_PATH);
	/* The console line is for people; the parent's record comes from the
	 * report (console text could come from any process). */
	describe_exit(status, msg, sizeof(msg));
	say("%s", msg);
	report_app_end(status);
	shutdown_enclave();
}
