/* The client side of the run directory: describe, find, terminate and the
 * console, for any user of the library (the CLI is one). A terminate never
 * says an enclave is gone while its supervisor runs. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "enclave/enclave_int.h"

static int control_records(char *dir, size_t len, json_t **recs, struct nectl_err *err)
{
	if (enclave_run_dir(dir, len, err) < 0)
		return -1;
	return rundir_records(dir, recs, err);
}

static int control_by_cid(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "EnclaveCID"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "EnclaveCID"));

	return (x > y) - (x < y);
}

int enclave_describe_all(bool metadata, json_t **array, struct nectl_err *err)
{
	char dir[PATH_MAX];
	json_t *recs, *out;
	json_t *v[1024];
	size_t i, n = 0;

	if (control_records(dir, sizeof(dir), &recs, err) < 0)
		return -1;
	json_array_foreach(recs, i, out)
	{
		if (n == sizeof(v) / sizeof(v[0]))
			break;
		v[n++] = out;
	}
	qsort(v, n, sizeof(v[0]), control_by_cid);
	out = json_array();
	for (i = 0; i < n; i++) {
		json_t *r = json_deep_copy(v[i]);

		/* Only with --metadata, as nitro-cli. */
		if (!metadata) {
			json_object_del(r, "ImageName");
			json_object_del(r, "ImageVersion");
			json_object_del(r, "Metadata");
		}
		json_array_append_new(out, r);
	}
	json_decref(recs);
	*array = out;
	return 0;
}

int enclave_find(const char *id, const char *name, json_t **record, struct nectl_err *err)
{
	char dir[PATH_MAX];
	json_t *recs, *r, *hit = NULL;
	size_t i, hits = 0;

	if (control_records(dir, sizeof(dir), &recs, err) < 0)
		return -1;
	json_array_foreach(recs, i, r)
	{
		const char *key =
		    json_string_value(json_object_get(r, id ? "EnclaveID" : "EnclaveName"));

		if (key && strcmp(key, id ? id : name) == 0) {
			hit = r;
			hits++;
		}
	}
	if (hits == 1)
		*record = json_incref(hit);
	json_decref(recs);
	if (hits == 1)
		return 0;
	if (id)
		return nectl_err_set(err, NECTL_ERR_SOCKET,
				     "No enclave with ID '%s' is running here", id);
	return nectl_err_set(err, NECTL_ERR_NAMING,
			     hits ? "Conflicting enclave names have been found."
				  : "No enclave matched the given name.");
}

/* The supervisor answers at once, whatever it is doing; a terminate then
 * takes until its process ends (the VM's memory freed), then the signals. */
#define CONTROL_REPLY_MS 5000
#define CONTROL_STOP_MS	 30000
#define CONTROL_TERM_MS	 5000
#define CONTROL_KILL_MS	 5000

static int64_t control_ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(deadline->tv_sec - now.tv_sec) * 1000 +
	       (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* One reply line within the deadline, read a byte at a time so that a
 * console stream after it stays in the socket. */
static json_t *control_read_reply(int fd)
{
	char line[CONTROL_LINE_MAX];
	struct timespec deadline;
	size_t n = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += CONTROL_REPLY_MS / 1000;
	while (n < sizeof(line) - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = control_ms_left(&deadline);

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0 || read(fd, line + n, 1) != 1)
			return NULL;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	return json_loads(line, 0, NULL);
}

/* One request line, one reply line. On failure *why is the errno of what
 * failed: EACCES when the socket is not ours, ETIMEDOUT for silence. */
static int control_ask(const char *dir, const char *sid, const char *op, int *fd_out,
		       json_t **reply, int *why, struct nectl_err *err)
{
	char req[64];
	int fd = rundir_connect(dir, sid, CONTROL_REPLY_MS);
	size_t len;

	if (fd < 0) {
		*why = errno;
		return nectl_err_sys(err, NECTL_ERR_SOCKET, errno,
				     "cannot connect to the enclave process");
	}
	len = (size_t)snprintf(req, sizeof(req), "{\"op\": \"%s\"}\n", op);
	/* MSG_NOSIGNAL: a supervisor that hangs up must not kill the caller. */
	*reply = send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len ? control_read_reply(fd) : NULL;
	if (!*reply) {
		*why = ETIMEDOUT;
		close(fd);
		return nectl_err_set(err, NECTL_ERR_SOCKET, "the enclave process did not answer");
	}
	*fd_out = fd;
	return 0;
}

static int control_reply_error(json_t *reply, struct nectl_err *err)
{
	json_t *code = json_object_get(reply, "Error");
	json_int_t kind = json_integer_value(code);

	if (!code)
		return 0;
	/* The supervisor's reply carries an error kind (sup_control.c). */
	return nectl_err_set(
	    err, kind > 0 && kind < NECTL_ERR_KINDS ? (enum nectl_kind)kind : NECTL_ERR_REFUSED,
	    "%s", json_string_value(json_object_get(reply, "Message")) ?: "refused");
}

static bool control_exited(const json_t *rec)
{
	const char *st = json_string_value(json_object_get(rec, "State"));

	return st && strcmp(st, "EXITED") == 0;
}

/* The socket's owner: whose enclave it is, for a refusal's message. */
static unsigned control_owner(const char *dir, const char *sid)
{
	char path[PATH_MAX];
	struct stat st;

	rundir_file(dir, sid, ".sock", path, sizeof(path));
	return stat(path, &st) == 0 ? (unsigned)st.st_uid : 0;
}

static int control_denied(const char *dir, const char *sid, enum nectl_kind kind, const char *what,
			  struct nectl_err *err)
{
	return nectl_err_set(err, kind,
			     "Permission denied: only the enclave's owner (uid %u) or root may %s",
			     control_owner(dir, sid), what);
}

/* A handle on the process that a recycled PID cannot redirect; -1 when
 * it is gone (errno ESRCH) or pidfds are not available. */
static int control_pidfd(pid_t pid)
{
	if (pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static bool control_wait_gone(int pidfd, pid_t pid, int ms)
{
	struct timespec deadline;

	if (pidfd >= 0) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};

		/* Readable once the process has ended, zombie or not. */
		return poll(&p, 1, ms) > 0 || rundir_pid_gone(pid);
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	while (!rundir_pid_gone(pid) && control_ms_left(&deadline) > 0)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	return rundir_pid_gone(pid);
}

static int control_signal(int pidfd, pid_t pid, int sig)
{
	if (pidfd >= 0)
		return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
	return kill(pid, sig);
}

/* The supervisor did not answer, or did not end: signal it, once it is
 * sure to be the enclave's supervisor (never a recycled PID). */
static int control_kill(const char *dir, const char *sid, pid_t pid, int pidfd,
			struct nectl_err *err)
{
	int serves = rundir_pid_serves(dir, sid, pid);

	if (serves == 0 || rundir_pid_gone(pid))
		return 0; /* that PID is not (or no longer) the supervisor */
	if (serves < 0)
		return control_denied(dir, sid, NECTL_ERR_REFUSED, "terminate it", err);
	if (control_signal(pidfd, pid, SIGTERM) < 0) {
		if (errno == EPERM)
			return control_denied(dir, sid, NECTL_ERR_REFUSED, "terminate it", err);
		return errno == ESRCH ? 0
				      : nectl_err_sys(err, NECTL_ERR_REFUSED, errno,
						      "cannot signal PID %d", (int)pid);
	}
	if (control_wait_gone(pidfd, pid, CONTROL_TERM_MS))
		return 0;
	if (control_signal(pidfd, pid, SIGKILL) < 0 && errno != ESRCH)
		return nectl_err_sys(err, NECTL_ERR_REFUSED, errno, "cannot signal PID %d",
				     (int)pid);
	if (control_wait_gone(pidfd, pid, CONTROL_KILL_MS))
		return 0;
	return nectl_err_set(err, NECTL_ERR_REFUSED,
			     "Failed to terminate the enclave: its supervisor (PID %d) did not "
			     "answer and still runs after SIGKILL",
			     (int)pid);
}

/* Returns once the supervisor is gone: it was asked and ended, or it did
 * not answer and was signalled. A refusal (another user's enclave) ends
 * here, with the enclave untouched. */
static int control_stop(const char *dir, const char *sid, pid_t pid, struct nectl_err *err)
{
	int pidfd = control_pidfd(pid), fd, why = 0, rc = 0;
	bool gone = pidfd < 0 && errno == ESRCH;
	struct nectl_err asked = {0};
	json_t *reply;

	if (control_ask(dir, sid, "terminate", &fd, &reply, &why, &asked) == 0) {
		rc = control_reply_error(reply, err);
		json_decref(reply);
		close(fd);
		gone = rc == 0 && control_wait_gone(pidfd, pid, CONTROL_STOP_MS);
	} else if (why == EACCES || why == EPERM) {
		rc = control_denied(dir, sid, NECTL_ERR_REFUSED, "terminate it", err);
	}
	if (rc == 0 && !gone)
		rc = control_kill(dir, sid, pid, pidfd, err);
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

int enclave_terminate(const json_t *record, json_t **result, struct nectl_err *err)
{
	char dir[PATH_MAX], sid[24], path[PATH_MAX];
	pid_t pid = (pid_t)json_integer_value(json_object_get(record, "ProcessID"));

	if (enclave_run_dir(dir, sizeof(dir), err) < 0)
		return -1;
	if (!*record_sid(record, sid))
		return nectl_err_set(err, NECTL_ERR_SOCKET,
				     "the enclave's record has no usable EnclaveID");
	/* An exited enclave's supervisor has freed everything already. */
	if (!control_exited(record) && control_stop(dir, sid, pid, err) < 0)
		return -1;
	rundir_remove(dir, sid);
	rundir_file(dir, sid, ".json", path, sizeof(path));
	if (access(path, F_OK) == 0)
		return control_denied(dir, sid, NECTL_ERR_REFUSED, "remove what it left", err);
	*result = json_object();
	json_object_set(*result, "EnclaveName", json_object_get(record, "EnclaveName"));
	json_object_set(*result, "EnclaveID", json_object_get(record, "EnclaveID"));
	json_object_set_new(*result, "Terminated", json_true());
	return 0;
}

static int control_open_log(const char *dir, const char *sid, int *fd, struct nectl_err *err)
{
	char path[PATH_MAX];

	rundir_file(dir, sid, ".log", path, sizeof(path));
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return nectl_err_sys(err, NECTL_ERR_CONSOLE, errno,
				     "%s: cannot open the console log", path);
	return 0;
}

/* The enclave may have ended between the listing and the request: then its
 * log is what there is. */
static bool control_ended_now(const char *dir, const char *sid)
{
	char path[PATH_MAX];
	json_t *now;
	bool ended;

	rundir_file(dir, sid, ".json", path, sizeof(path));
	now = json_load_file(path, 0, NULL);
	ended = control_exited(now);
	json_decref(now);
	return ended;
}

int enclave_console_open(const json_t *record, int *fd, struct nectl_err *err)
{
	char dir[PATH_MAX], sid[24];
	const char *flags = json_string_value(json_object_get(record, "Flags"));
	struct nectl_err asked = {0};
	json_t *reply;
	int rc, why = 0;

	if (!flags || strcmp(flags, "DEBUG_MODE") != 0)
		return nectl_err_set(err, NECTL_ERR_CONSOLE,
				     "The enclave was not started with the debug flag set, "
				     "include '--debug-mode' in the run-enclave command");
	if (enclave_run_dir(dir, sizeof(dir), err) < 0 || !*record_sid(record, sid))
		return -1;
	if (control_exited(record))
		return control_open_log(dir, sid, fd, err);
	if (control_ask(dir, sid, "console", fd, &reply, &why, &asked) < 0) {
		if (control_ended_now(dir, sid))
			return control_open_log(dir, sid, fd, err);
		if (why == EACCES || why == EPERM)
			return control_denied(dir, sid, NECTL_ERR_CONSOLE, "stream its console",
					      err);
		return nectl_err_set(err, NECTL_ERR_CONSOLE,
				     "Enclave console connection failure: %s", asked.msg);
	}
	rc = control_reply_error(reply, err);
	json_decref(reply);
	if (rc < 0)
		close(*fd);
	return rc;
}
