/* The client side of the run directory: describe, find, terminate and the
 * console, for any user of the library (the CLI is one). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
		return nectl_err_set(err, 11, "No enclave with ID '%s' is running here", id);
	return nectl_err_set(err, 58,
			     hits ? "Conflicting enclave names have been found."
				  : "No enclave matched the given name.");
}

/* One request line; the reply line is read a byte at a time so that a
 * console stream after it stays in the socket. */
static int control_ask(const char *dir, const char *sid, const char *op, int *fd_out,
		       json_t **reply, struct nectl_err *err)
{
	char line[CONTROL_LINE_MAX], req[64];
	size_t n = 0;
	int fd = rundir_connect(dir, sid);
	struct pollfd pfd;

	if (fd < 0)
		return nectl_err_sys(err, 11, errno, "cannot connect to the enclave process");
	snprintf(req, sizeof(req), "{\"op\": \"%s\"}\n", op);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto fail;
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	while (n < sizeof(line) - 1) {
		/* A terminate waits for the VM to stop: allow it time. */
		if (poll(&pfd, 1, 60000) <= 0 || read(fd, line + n, 1) != 1)
			goto fail;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	*reply = json_loads(line, 0, NULL);
	if (!*reply)
		goto fail;
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return nectl_err_set(err, 11, "the enclave process did not answer");
}

static int control_reply_error(json_t *reply, struct nectl_err *err)
{
	json_t *code = json_object_get(reply, "Error");

	if (!code)
		return 0;
	return nectl_err_set(err, (int)json_integer_value(code), "%s",
			     json_string_value(json_object_get(reply, "Message")) ?: "refused");
}

static bool control_exited(const json_t *rec)
{
	const char *st = json_string_value(json_object_get(rec, "State"));

	return st && strcmp(st, "EXITED") == 0;
}

/* The supervisor removes its files before it answers; its process ends just
 * after. Wait for that, so "no process left" holds when terminate returns. */
static void control_wait_gone(pid_t pid)
{
	for (int i = 0; i < 500 && !rundir_pid_gone(pid); i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
}

int enclave_terminate(const json_t *record, json_t **result, struct nectl_err *err)
{
	char dir[PATH_MAX], sid[24];
	json_t *reply = NULL;
	int fd = -1, rc = 0;

	if (enclave_run_dir(dir, sizeof(dir), err) < 0 || !*record_sid(record, sid))
		return -1;
	if (control_exited(record)) {
		rundir_remove(dir, sid);
	} else if (control_ask(dir, sid, "terminate", &fd, &reply, err) == 0) {
		rc = control_reply_error(reply, err);
		json_decref(reply);
		close(fd);
		if (rc == 0)
			control_wait_gone(
			    (pid_t)json_integer_value(json_object_get(record, "ProcessID")));
	} else {
		/* Gone between listing and asking: nothing is left to stop. */
		rundir_remove(dir, sid);
		rc = 0;
	}
	if (rc < 0)
		return -1;
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
		return nectl_err_sys(err, 44, errno, "%s: cannot open the console log", path);
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
	json_t *reply;
	int rc;

	if (!flags || strcmp(flags, "DEBUG_MODE") != 0)
		return nectl_err_set(err, 44,
				     "The enclave was not started with the debug flag set, "
				     "include '--debug-mode' in the run-enclave command");
	if (enclave_run_dir(dir, sizeof(dir), err) < 0 || !*record_sid(record, sid))
		return -1;
	if (control_exited(record))
		return control_open_log(dir, sid, fd, err);
	if (control_ask(dir, sid, "console", fd, &reply, err) < 0) {
		if (control_ended_now(dir, sid))
			return control_open_log(dir, sid, fd, err);
		return nectl_err_set(err, 44, "Enclave console connection failure: %s", err->msg);
	}
	rc = control_reply_error(reply, err);
	json_decref(reply);
	if (rc < 0)
		close(*fd);
	return rc;
}
