/* The run directory: one control socket, record and console log per enclave,
 * and a lock that serialises launches (CID and name reservation). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "enclave/enclave_int.h"
#include "util/fileio.h"

int enclave_run_dir(char *out, size_t len, struct nectl_err *err)
{
	const char *env = getenv("NECTL_RUN_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		snprintf(out, len, "%s", env);
	else if (geteuid() == 0)
		snprintf(out, len, "/run/nectl");
	else if (xdg && *xdg)
		snprintf(out, len, "%s/nectl", xdg);
	else
		return nectl_err_set(err, NECTL_ERR_RUNDIR,
				     "no run directory: not root and XDG_RUNTIME_DIR is not set "
				     "(set NECTL_RUN_DIR)");
	/* World-readable as root, like nitro-cli's sockets directory: other
	 * users may describe; the supervisors check who asks to change things. */
	for (char *slash = strchr(out + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		/* Parents too: /run may be missing in minimal systems. */
		*slash = 0;
		if (mkdir(out, 0755) < 0 && errno != EEXIST) {
			*slash = '/';
			return nectl_err_sys(err, NECTL_ERR_RUNDIR, errno,
					     "%s: cannot create the run directory", out);
		}
		*slash = '/';
	}
	if (mkdir(out, geteuid() == 0 ? 0755 : 0700) < 0 && errno != EEXIST)
		return nectl_err_sys(err, NECTL_ERR_RUNDIR, errno,
				     "%s: cannot create the run directory", out);
	return 0;
}

void rundir_file(const char *dir, const char *sid, const char *suffix, char *out, size_t len)
{
	snprintf(out, len, "%s/%s%s", dir, sid, suffix);
}

int rundir_lock(const char *dir, int *fd, struct nectl_err *err)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/lock", dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return nectl_err_sys(err, NECTL_ERR_LOCK, errno, "%s: cannot open", path);
	while (flock(*fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(*fd);
			return nectl_err_sys(err, NECTL_ERR_LOCK, errno, "%s: cannot lock", path);
		}
	return 0;
}

const char *record_sid(const json_t *rec, char out[24])
{
	const char *id = json_string_value(json_object_get(rec, "EnclaveID"));
	const char *enc = id ? strstr(id, "-enc") : NULL;
	size_t n;

	out[0] = 0;
	if (!enc)
		return out;
	enc += 4;
	n = strspn(enc, "0123456789abcdef");
	if (n == 0 || n > 16 || enc[n])
		return out;
	memcpy(out, enc, n);
	out[n] = 0;
	return out;
}

int rundir_connect(const char *dir, const char *sid, int timeout_ms)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd, e;

	rundir_file(dir, sid, ".sock", a.sun_path, sizeof(a.sun_path));
	/* Non-blocking: a full backlog (a supervisor that stopped accepting)
	 * must not hang the caller; it is retried until the deadline. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	for (int waited = 0;; waited += 20) {
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			return fd;
		}
		e = errno;
		if (e != EAGAIN || waited >= timeout_ms)
			break;
		nanosleep(&(struct timespec){0, 20000000}, NULL);
	}
	close(fd);
	errno = e;
	return -1;
}

/* The inodes of listening sockets bound at path, in pid's network
 * namespace (/proc/<pid>/net/unix: Num RefCount Protocol Flags Type St
 * Inode Path). */
static int rundir_listeners(pid_t pid, const char *path, unsigned long *ino, int max)
{
	char file[64], line[PATH_MAX + 128];
	int n = 0;
	FILE *f;

	snprintf(file, sizeof(file), "/proc/%d/net/unix", (int)pid);
	f = fopen(file, "re");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	while (n < max && fgets(line, sizeof(line), f)) {
		unsigned long flags, inode;
		int at = -1;

		line[strcspn(line, "\n")] = 0;
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %n", &flags, &inode, &at) == 2 &&
		    at > 0 && (flags & 0x10000) && strcmp(line + at, path) == 0)
			ino[n++] = inode; /* 0x10000: __SO_ACCEPTCON, listening */
	}
	fclose(f);
	return n;
}

int rundir_pid_serves(const char *dir, const char *sid, pid_t pid)
{
	char path[PATH_MAX], link[64], want[40];
	unsigned long ino[8];
	struct dirent *de;
	DIR *d;
	int n, rc = 0;

	if (pid <= 0)
		return 0;
	rundir_file(dir, sid, ".sock", path, sizeof(path));
	n = rundir_listeners(pid, path, ino, (int)(sizeof(ino) / sizeof(ino[0])));
	if (n <= 0)
		return n;
	snprintf(link, sizeof(link), "/proc/%d/fd", (int)pid);
	d = opendir(link);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while (rc == 0 && (de = readdir(d))) {
		char target[64];
		ssize_t len;

		snprintf(path, sizeof(path), "%s/%s", link, de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		for (int i = 0; i < n && rc == 0; i++) {
			snprintf(want, sizeof(want), "socket:[%lu]", ino[i]);
			rc = strcmp(target, want) == 0;
		}
	}
	closedir(d);
	return rc;
}

void rundir_remove(const char *dir, const char *sid)
{
	static const char *const suffix[] = {".sock", ".json", ".log"};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		rundir_file(dir, sid, suffix[i], path, sizeof(path));
		unlink(path);
	}
}

int rundir_write_record(const char *dir, const char *sid, json_t *rec, struct nectl_err *err)
{
	char path[PATH_MAX];
	char *text = json_dumps(rec, JSON_INDENT(2));
	struct out_file f;
	int rc = -1;

	if (!text)
		return nectl_err_set(err, NECTL_ERR_SERDE, "cannot encode the enclave record");
	rundir_file(dir, sid, ".json", path, sizeof(path));
	if (out_file_open(&f, path, err) == 0) {
		if (out_file_pwrite(&f, text, strlen(text), 0, err) == 0 &&
		    out_file_commit(&f, err) == 0)
			rc = 0;
		out_file_abort(&f); /* frees; after a commit it removes nothing */
	}
	free(text);
	return rc;
}

/* Dead: nobody listens on the socket and the process is gone (or a zombie
 * nobody has reaped yet). A live supervisor creates its socket before its
 * first record, so a listener exists whenever a running record does. */
bool rundir_pid_gone(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool gone = true;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		gone = p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return gone;
}

/* Stale: nobody listens on the socket and the record's process is gone,
 * or is not the supervisor any more (a recycled PID). A socket that is not
 * ours to connect to (EACCES) or has a full backlog has a supervisor. */
static bool rundir_stale(const char *dir, const char *sid, const json_t *rec)
{
	const char *state = json_string_value(json_object_get(rec, "State"));
	pid_t pid = (pid_t)json_integer_value(json_object_get(rec, "ProcessID"));
	int fd;

	if (state && strcmp(state, "EXITED") == 0)
		return false;
	fd = rundir_connect(dir, sid, 0);
	if (fd >= 0) {
		close(fd);
		return false;
	}
	if (errno != ENOENT && errno != ECONNREFUSED)
		return false;
	return rundir_pid_gone(pid) || rundir_pid_serves(dir, sid, pid) == 0;
}

static json_t *rundir_load(const char *dir, const char *file)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return json_load_file(path, 0, NULL);
}

int rundir_records(const char *dir, json_t **array, struct nectl_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	json_t *all = json_array();

	if (!d) {
		json_decref(all);
		return nectl_err_sys(err, NECTL_ERR_RUNDIR, errno,
				     "%s: cannot read the run directory", dir);
	}
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char sid[24];
		json_t *rec;

		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		rec = rundir_load(dir, de->d_name);
		if (!rec || !*record_sid(rec, sid) || strlen(sid) != n - 5 ||
		    strncmp(sid, de->d_name, n - 5) != 0) {
			/* Half-written records cannot exist (rename); this is not ours. */
			json_decref(rec);
			continue;
		}
		if (rundir_stale(dir, sid, rec)) {
			rundir_remove(dir, sid);
			json_decref(rec);
			continue;
		}
		json_array_append_new(all, rec);
	}
	closedir(d);
	*array = all;
	return 0;
}
