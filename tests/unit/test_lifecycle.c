/* The enclave module's pieces that need no KVM: console capture (ring,
 * log, the panic hint), the run directory
 * (records, stale detection) and the launch checks nitro-cli makes before an
 * enclave process exists. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

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
		assert_int_equal(err.code, NECTL_E_INVALID_ARG);
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
	assert_int_equal(err.code, 26);
	assert_non_null(strstr(err.msg, "User provided `memory` is 7 MB, but based on the EIF file "
					"size, the minimum memory should be 24 MB"));
	o.memory_mib = 24;
	o.cpu_count = 100000;
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.code, 22);
	o.cpu_count = 0;
	o.cpu_ids = (int[]){0, 0};
	o.ncpu_ids = 2;
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.code, 20);
	o.cpu_ids = (int[]){100000};
	o.ncpu_ids = 1;
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.code, 21);
	o.cpu_ids = NULL;
	o.ncpu_ids = 0;
	o.cpu_count = 1;
	o.to_host = (const char *[]){"9000=unix:/tmp/x"};
	o.nto_host = 1;
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.code, NECTL_E_INVALID_ARG);
	o.nto_host = 0;
	o.eif_path = "/nonexistent/x.eif";
	assert_int_equal(enclave_launch(&o, &l, &err), -1);
	assert_int_equal(err.code, NECTL_E_FILE);
	assert_non_null(strstr(err.msg, "File: '/nonexistent/x.eif', failing operation: 'Open'"));
}

static int setup(void **state)
{
	char run[400];

	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(run, sizeof(run), "%s/rd", tmpdir);
	setenv("NECTL_RUN_DIR", run, 1);
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
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
