/* The enclave module's pieces that need no KVM: console capture (ring,
 * log, the panic hint), the run directory
 * (records, stale detection), the launch checks nitro-cli makes before an
 * enclave process exists, the supervisor as a daemon, and the control
 * socket's policy (credentials, slots, idle clients) in a supervisor
 * without a machine. The control tests run as root (setuid to strangers)
 * and are skipped otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "eifgen.h"
#include "enclave/enclave_int.h"
#include "enclave/sup.h"

static char tmpdir[] = "/tmp/nectl-enclave-XXXXXX";

static void feed(struct console *c, const char *s)
{
	console_feed(c, (const uint8_t *)s, strlen(s));
}

static void test_console_scan(void **state)
{
	struct console c;

	(void)state;
	assert_int_equal(console_init(&c, false, NULL, NULL, NULL, NULL), 0);
	feed(&c, "[    1.0] Run /init as init process\r\nKernel panic - not ");
	assert_string_equal(c.panic_hint, ""); /* not a whole line yet */
	feed(&c, "syncing: sysrq triggered crash\n");
	assert_string_equal(c.panic_hint, "Kernel panic - not syncing: sysrq triggered crash");
	/* The first panic is the one kept. */
	feed(&c, "Kernel panic - not syncing: again\n");
	assert_string_equal(c.panic_hint, "Kernel panic - not syncing: sysrq triggered crash");
	/* Outside debug mode nothing is kept. */
	uint64_t pos = 0;
	char buf[16];

	assert_int_equal(console_read(&c, &pos, buf, sizeof(buf)), 0);
	console_fini(&c);
}

static void test_console_hostile_lines(void **state)
{
	struct console c;
	static char big[3000];

	(void)state;
	assert_int_equal(console_init(&c, false, NULL, NULL, NULL, NULL), 0);
	/* An endless line is cut, NULs do not hide what follows them. */
	memset(big, 'x', sizeof(big) - 1);
	feed(&c, big);
	feed(&c, "\n");
	console_feed(&c, (const uint8_t *)"a\0b Kernel panic - not syncing: x\n", 34);
	assert_string_equal(c.panic_hint, "Kernel panic - not syncing: x");
	console_fini(&c);
}

static void test_console_ring_and_log(void **state)
{
	char log[300];
	struct console c;
	uint8_t *chunk = malloc(CONSOLE_RING / 4), *out = malloc(CONSOLE_RING);
	uint64_t pos = 0;
	struct stat st;
	size_t n;

	(void)state;
	snprintf(log, sizeof(log), "%s/c.log", tmpdir);
	assert_int_equal(console_init(&c, true, log, NULL, NULL, NULL), 0);
	feed(&c, "hello\n");
	assert_int_equal(console_read(&c, &pos, out, 3), 3);
	assert_memory_equal(out, "hel", 3);
	assert_int_equal(console_read(&c, &pos, out, 100), 3);
	assert_int_equal(console_read(&c, &pos, out, 100), 0);
	/* Five quarter-rings later the reader at 6 has lost the oldest bytes: it
	 * resumes at the oldest byte still held, and gets exactly one ring. */
	for (int i = 0; i < 5; i++) {
		memset(chunk, 'a' + i, CONSOLE_RING / 4);
		console_feed(&c, chunk, CONSOLE_RING / 4);
	}
	n = console_read(&c, &pos, out, CONSOLE_RING);
	assert_int_equal(n, CONSOLE_RING);
	assert_int_equal(out[0], 'b');
	assert_int_equal(out[CONSOLE_RING - 1], 'e');
	assert_int_equal(pos, c.total);
	assert_int_equal(stat(log, &st), 0);
	assert_int_equal(st.st_size, 6 + 5 * (CONSOLE_RING / 4));
	console_fini(&c);
	free(chunk);
	free(out);
}

static json_t *record(const char *sid, const char *state, long pid)
{
	char id[64];

	snprintf(id, sizeof(id), "i-0000000000000000-enc%s", sid);
	return json_pack("{s:s, s:s, s:i, s:i, s:s}", "EnclaveName", "x", "EnclaveID", id,
			 "ProcessID", (int)pid, "EnclaveCID", 16, "State", state);
}

static void test_rundir_records(void **state)
{
	char dir[300], path[400];
	json_t *all, *r;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/run", tmpdir);
	mkdir(dir, 0700);
	/* An exited record stays; a running one whose supervisor is gone is
	 * stale and removed with its files; foreign files are left alone. */
	r = record("abc1", "EXITED", 1);
	assert_int_equal(rundir_write_record(dir, "abc1", r, NULL), 0);
	json_decref(r);
	r = record("dead2", "RUNNING", 999999999);
	assert_int_equal(rundir_write_record(dir, "dead2", r, NULL), 0);
	json_decref(r);
	rundir_file(dir, "dead2", ".log", path, sizeof(path));
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof(path), "%s/notes.json", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(rundir_records(dir, &all, NULL), 0);
	assert_int_equal(json_array_size(all), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "State")),
			    "EXITED");
	json_decref(all);
	rundir_file(dir, "dead2", ".log", path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	rundir_file(dir, "dead2", ".json", path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/notes.json", dir);
	assert_int_equal(access(path, F_OK), 0);
}

static void test_record_sid(void **state)
{
	char sid[24];
	json_t *r = json_pack("{s:s}", "EnclaveID", "i-06c28848702514cd5-enc1904e4fea1636f6");

	(void)state;
	assert_string_equal(record_sid(r, sid), "1904e4fea1636f6");
	json_decref(r);
	/* Anything that could escape the run directory gives no sid. */
	r = json_pack("{s:s}", "EnclaveID", "i-0-enc../../etc/passwd");
	assert_string_equal(record_sid(r, sid), "");
	json_decref(r);
	r = json_pack("{s:i}", "EnclaveID", 5);
	assert_string_equal(record_sid(r, sid), "");
	json_decref(r);
}

/* describe-enclaves says which machine the enclave runs on, next to Mode:
 * Nitro's, or Nitro's with the ACPI tables Nitro does not have. */
static void test_record_machine(void **state)
{
	struct enclave_plan p = {.ncpus = 1, .memory_mib = 64, .cid = 16};
	struct sup s = {.p = &p, .state = "RUNNING"};
	json_t *r;
	char *text;

	(void)state;
	for (int acpi = 0; acpi < 2; acpi++) {
		p.acpi = acpi;
		r = sup_record(&s);
		text = json_dumps(r, JSON_COMPACT);
		assert_non_null(text);
		if (!strstr(text, acpi ? "\"Mode\":\"emulated\",\"Machine\":\"nitro+acpi\","
				       : "\"Mode\":\"emulated\",\"Machine\":\"nitro\","))
			fail_msg("%s", text);
		free(text);
		json_decref(r);
	}
}

static void test_cid_rules(void **state)
{
	static const uint64_t bad[] = {1, 2, 3, 0xffffffffull, 1ull << 40};
	struct nectl_err err = {0};

	(void)state;
	assert_int_equal(enclave_check_cid(4, &err), 0);
	assert_int_equal(enclave_check_cid(0xfffffffeull, &err), 0);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(enclave_check_cid(bad[i], &err), -1);
		assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
	}
}

static void test_launch_checks(void **state)
{
	char eif[300];
	struct enclave_opts o = {.memory_mib = 7, .cpu_count = 1};
	struct enclave_launched l;
	struct nectl_err err = {0};
	int fd;
	static char five_mib_and_a_byte[(5 << 20) + 1];

	(void)state;
	snprintf(eif, sizeof(eif), "%s/x.eif", tmpdir);
	fd = open(eif, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_int_equal(write(fd, five_mib_and_a_byte, sizeof(five_mib_and_a_byte)),
			 (ssize_t)sizeof(five_mib_and_a_byte));
	close(fd);
	o.eif_path = eif;
	/* 4 x ceil(5 MiB + 1 byte) = 24 MiB, nitro-cli's message. */
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_MEM_REQUEST);
	assert_non_null(strstr(err.msg, "User provided `memory` is 7 MB, but based on the EIF file "
					"size, the minimum memory should be 24 MB"));
	o.memory_mib = 24;
	o.cpu_count = 100000;
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_CPU_COUNT);
	o.cpu_count = 0;
	o.cpu_ids = (int[]){0, 0};
	o.ncpu_ids = 2;
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_CPU_CONFIG);
	o.cpu_ids = (int[]){100000};
	o.ncpu_ids = 1;
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_CPU_POOL);
	o.cpu_ids = NULL;
	o.ncpu_ids = 0;
	o.cpu_count = 1;
	o.to_host = (const char *[]){"9000=unix:/tmp/x"};
	o.nto_host = 1;
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
	o.nto_host = 0;
	o.eif_path = "/nonexistent/x.eif";
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	assert_non_null(strstr(err.msg, "File: '/nonexistent/x.eif', failing operation: 'Open'"));
}

/* --- the launch's own checks and the supervisor as a daemon -------------- */

/* waitpid(-1): the caller has no child left, running or zombie. */
static void assert_no_child(void)
{
	pid_t pid = waitpid(-1, NULL, WNOHANG);

	if (pid != -1 || errno != ECHILD)
		fail_msg("the caller still has a child (waitpid: %d): the supervisor is its "
			 "child and would be a zombie unless the caller reaps it",
			 (int)pid);
}

/* Launches the reference EIF (its kernel is 6 bytes: no machine boots
 * it), or that EIF with a bad CRC; returns enclave_launch's result, after
 * checking that the caller is left with no child to reap. */
static int launch_reference(bool bad_crc, uint64_t memory_mib, struct nectl_err *err)
{
	struct enclave_opts o = {.memory_mib = memory_mib, .cpu_count = 1};
	struct enclave_launched l;
	struct eifgen g;
	char eif[300];
	int rc;

	snprintf(eif, sizeof(eif), "%s/ref%d.eif", tmpdir, bad_crc);
	eifgen_init_reference(&g);
	g.bad_crc = bad_crc;
	assert_int_equal(eifgen_write_file(&g, eif), 0);
	o.eif_path = eif;
	rc = enclave_launch(&o, &l, err);
	assert_no_child();
	return rc;
}

/* A corrupted image is refused as describe-eif reports it (E35), before
 * any supervisor (or its memory) exists. */
static void test_launch_refuses_a_bad_crc(void **state)
{
	struct nectl_err err = {0};
	json_t *all;

	(void)state;
	assert_int_equal(launch_reference(true, 64, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_EIF);
	assert_non_null(strstr(err.msg, "CRC mismatch"));
	assert_int_equal(rundir_records(getenv("NECTL_RUN_DIR"), &all, NULL), 0);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
}

/* Memory is checked before it is shifted into bytes. */
static void test_launch_refuses_memory_that_wraps(void **state)
{
	struct nectl_err err = {0};

	(void)state;
	assert_int_equal(launch_reference(false, ENCLAVE_MAX_MEMORY_MIB + 1, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
}

/* The supervisor is nobody's child but init's: whatever the launch's
 * outcome (here its machine refuses the 6-byte kernel), the caller is left
 * with no child to reap (launch_reference checks). */
static void test_launch_leaves_no_child(void **state)
{
	struct nectl_err err = {0};

	(void)state;
	assert_int_equal(launch_reference(false, 64, &err), -1);
}

/* --- the control socket: credentials, slots, idle clients ---------------- */

#define OWNER	 ((uid_t)4242)
#define STRANGER ((uid_t)65534)

/* Children a failed assertion would leave running; killed by kids_reap. */
static pid_t kids[4];
static unsigned nkids;

static pid_t kid_fork(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid > 0 && nkids < sizeof(kids) / sizeof(kids[0]))
		kids[nkids++] = pid;
	return pid;
}

static int kids_reap(void **state)
{
	(void)state;
	for (unsigned i = 0; i < nkids; i++)
		if (kill(kids[i], SIGKILL) == 0)
			waitpid(kids[i], NULL, 0);
	nkids = 0;
	return 0;
}

/* A supervisor without a machine: sup_control.c's share of the loop, as
 * supervisor.c runs it, in a child process; a terminate ends it. The
 * socket is opened to everyone so that only the supervisor's own checks
 * stand between a stranger and the enclave. */
static pid_t fake_supervisor(const char *dir, const char *sid)
{
	static struct enclave_plan p;
	static struct sup s;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char log[400];
	pid_t pid = kid_fork();

	if (pid > 0)
		return pid;
	snprintf(p.run_dir, sizeof(p.run_dir), "%s", dir);
	snprintf(p.sid, sizeof(p.sid), "%s", sid);
	p.debug = true;
	s.p = &p;
	s.owner = OWNER;
	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++)
		s.clients[i].fd = -1;
	rundir_file(dir, sid, ".log", log, sizeof(log));
	rundir_file(dir, sid, ".sock", a.sun_path, sizeof(a.sun_path));
	s.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (console_init(&s.cons, true, log, NULL, NULL, NULL) < 0 ||
	    bind(s.lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s.lfd, 64) < 0 ||
	    chmod(a.sun_path, 0777) < 0)
		_exit(2);
	console_feed(&s.cons, (const uint8_t *)"hello\n", 6);
	for (;;) {
		struct pollfd pfd[1 + SUP_MAX_CLIENTS];
		struct sup_client *who[1 + SUP_MAX_CLIENTS];
		nfds_t n = sup_control_fds(&s, pfd, who);
		uint64_t d = sup_control_deadline(&s), now = sup_now_ns();

		poll(pfd, n, !d ? -1 : d <= now ? 0 : (int)((d - now) / 1000000 + 1));
		sup_control_io(&s, pfd, who, n);
		sup_console_pump(&s);
	}
}

static void as_user(uid_t uid)
{
	if (uid == 0)
		return;
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		_exit(3);
}

static int dial(const char *dir, const char *sid)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	rundir_file(dir, sid, ".sock", a.sun_path, sizeof(a.sun_path));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads what fd gives within ms (or until EOF) into out. */
static size_t read_for(int fd, char *out, size_t len, int ms)
{
	size_t n = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (n < len - 1 && poll(&p, 1, ms) > 0) {
		ssize_t r = read(fd, out + n, len - 1 - n);

		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = 0;
	return n;
}

/* The request `op` as uid: what came back within a second ("" when the
 * connection was refused or closed at once). */
static void ask_as(uid_t uid, const char *dir, const char *sid, const char *op, char *out,
		   size_t len)
{
	int pfd[2];
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[512], req[64];
		int fd;

		as_user(uid);
		fd = dial(dir, sid);
		snprintf(req, sizeof(req), "{\"op\": \"%s\"}\n", op);
		if (fd >= 0 && send(fd, req, strlen(req), MSG_NOSIGNAL) > 0)
			read_for(fd, buf, sizeof(buf), 1000);
		else
			buf[0] = 0;
		if (write(pfd[1], buf, strlen(buf)) < 0)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	read_for(pfd[0], out, len, 5000);
	close(pfd[0]);
	waitpid(pid, NULL, 0);
}

static bool alive(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

static void control_dir(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "%s/%s", tmpdir, name);
	mkdir(dir, 0755);
	/* The stranger reaches the socket through the test's directory. */
	chmod(tmpdir, 0711);
}

/* SO_PEERCRED, not the socket's mode: a stranger may neither stream the
 * console nor terminate; the owner streams, root terminates. */
/* The reply's "Error" member: the kind (sup_control.c). */
static const char *error_is(enum nectl_kind kind)
{
	static char buf[2][32];
	static int i;

	i = !i;
	snprintf(buf[i], sizeof(buf[i]), "\"Error\":%d", (int)kind);
	return buf[i];
}

static void test_control_stranger_may_not_stream_or_terminate(void **state)
{
	char dir[300], out[512];
	pid_t sup;

	(void)state;
	if (geteuid() != 0)
		skip(); /* strangers are made with setuid */
	control_dir(dir, sizeof(dir), "cred");
	sup = fake_supervisor(dir, "c1");
	nanosleep(&(struct timespec){0, 100000000}, NULL);
	ask_as(STRANGER, dir, "c1", "console", out, sizeof(out));
	if (!strstr(out, error_is(NECTL_ERR_CONSOLE)) || !strstr(out, "Permission denied") ||
	    strstr(out, "hello"))
		fail_msg("a stranger's console: %s", out);
	ask_as(STRANGER, dir, "c1", "terminate", out, sizeof(out));
	if (!strstr(out, error_is(NECTL_ERR_REFUSED)) || !strstr(out, "Permission denied"))
		fail_msg("a stranger's terminate: %s", out);
	assert_true(alive(sup));
	ask_as(OWNER, dir, "c1", "console", out, sizeof(out));
	if (!strstr(out, "\"Ok\":true") || !strstr(out, "hello"))
		fail_msg("the owner's console: %s", out);
	ask_as(0, dir, "c1", "terminate", out, sizeof(out));
	assert_non_null(strstr(out, "\"Ok\":true"));
	assert_int_equal(waitpid(sup, NULL, 0), sup);
}

/* Strangers fill every slot with idle connections: one more stranger is
 * refused, the owner gets through at once, and the idle ones are dropped
 * within the idle timeout. */
static void test_control_idle_clients_cannot_lock_the_owner_out(void **state)
{
	char dir[300], out[512];
	int ready[2], done[2];
	pid_t sup, holder;
	unsigned closed = 0;

	(void)state;
	if (geteuid() != 0)
		skip(); /* strangers are made with setuid */
	control_dir(dir, sizeof(dir), "slots");
	sup = fake_supervisor(dir, "s1");
	nanosleep(&(struct timespec){0, 100000000}, NULL);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	holder = kid_fork();
	if (holder == 0) {
		int fd[SUP_MAX_CLIENTS];
		char c;

		as_user(STRANGER);
		for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++)
			fd[i] = dial(dir, "s1");
		if (write(ready[1], "r", 1) < 0)
			_exit(1);
		nanosleep(&(struct timespec){SUP_IDLE_MS / 1000 + 1, 500000000}, NULL);
		closed = 0;
		for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++)
			closed += fd[i] >= 0 && recv(fd[i], &c, 1, MSG_DONTWAIT) == 0;
		if (write(done[1], &closed, sizeof(closed)) < 0)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(read_for(ready[0], out, 2, 5000), 1);
	nanosleep(&(struct timespec){0, 200000000}, NULL);
	ask_as(STRANGER, dir, "s1", "console", out, sizeof(out));
	assert_string_equal(out, ""); /* full, and a stranger: closed at once */
	ask_as(OWNER, dir, "s1", "console", out, sizeof(out));
	if (!strstr(out, "\"Ok\":true") || !strstr(out, "hello"))
		fail_msg("the owner, all slots taken: %s", out);
	assert_int_equal(read(done[0], &closed, sizeof(closed)), (ssize_t)sizeof(closed));
	assert_int_equal(closed, SUP_MAX_CLIENTS); /* one evicted, the rest idle */
	waitpid(holder, NULL, 0);
	ask_as(0, dir, "s1", "terminate", out, sizeof(out));
	assert_int_equal(waitpid(sup, NULL, 0), sup);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(done[i]);
	}
}

static int setup(void **state)
{
	char run[400];

	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(run, sizeof(run), "%s/rd", tmpdir);
	setenv("NECTL_RUN_DIR", run, 1);
	mkdir(run, 0755);
	return 0;
}

static int teardown(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_console_scan),
	    cmocka_unit_test(test_console_hostile_lines),
	    cmocka_unit_test(test_console_ring_and_log),
	    cmocka_unit_test(test_rundir_records),
	    cmocka_unit_test(test_record_sid),
	    cmocka_unit_test(test_record_machine),
	    cmocka_unit_test(test_cid_rules),
	    cmocka_unit_test(test_launch_checks),
	    cmocka_unit_test(test_launch_refuses_a_bad_crc),
	    cmocka_unit_test(test_launch_refuses_memory_that_wraps),
	    cmocka_unit_test(test_launch_leaves_no_child),
	    cmocka_unit_test_teardown(test_control_stranger_may_not_stream_or_terminate, kids_reap),
	    cmocka_unit_test_teardown(test_control_idle_clients_cannot_lock_the_owner_out,
				      kids_reap),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
