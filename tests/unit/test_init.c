/* The pure parts of the enclave init (guest/init/parse.c): /cmd and /env parsing,
 * module load order and names, /proc/cgroups, and the app's exit report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "parse.h"

static struct strlist list;
static char err[256];

/* Parses a copy of text[0..len) with the spare byte cmdenv_parse() may need. */
static int parse(const char *text, size_t len, enum cmdenv_kind kind)
{
	static char buf[CMDENV_MAX_FILE + 2];

	memcpy(buf, text, len);
	err[0] = '\0';
	return cmdenv_parse(buf, len, kind, &list, err, sizeof(err));
}

static int parse_str(const char *text, enum cmdenv_kind kind)
{
	return parse(text, strlen(text), kind);
}

static void assert_list(size_t n, ...)
{
	va_list ap;

	assert_int_equal(list.n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(list.v[i], va_arg(ap, const char *));
	va_end(ap);
	assert_null(list.v[n]);
}

static void test_cmd_lines(void **state)
{
	assert_int_equal(parse_str("/bin/hello\n--port\n5000\n", CMDENV_CMD), 0);
	assert_list(3, "/bin/hello", "--port", "5000");
	assert_int_equal(parse_str("sh\n-c\necho a b  c\n", CMDENV_CMD), 0);
	assert_list(3, "sh", "-c", "echo a b  c");
}

static void test_cmd_no_trailing_newline(void **state)
{
	assert_int_equal(parse_str("/bin/hello\nlast", CMDENV_CMD), 0);
	assert_list(2, "/bin/hello", "last");
	assert_int_equal(parse_str("only", CMDENV_CMD), 0);
	assert_list(1, "only");
}

/* An empty line is an empty argument, as with AWS's init (getline per entry). */
static void test_cmd_empty_lines(void **state)
{
	assert_int_equal(parse_str("printf\n\nx\n", CMDENV_CMD), 0);
	assert_list(3, "printf", "", "x");
	assert_int_equal(parse_str("a\n\n", CMDENV_CMD), 0);
	assert_list(2, "a", "");
	assert_int_equal(parse_str("\n", CMDENV_CMD), 0);
	assert_list(1, "");
	assert_int_equal(parse_str("", CMDENV_CMD), 0);
	assert_list(0);
}

static void test_crlf(void **state)
{
	assert_int_equal(parse_str("/bin/hello\r\nworld\r\n", CMDENV_CMD), 0);
	assert_list(2, "/bin/hello", "world");
	assert_int_equal(parse_str("a\r", CMDENV_CMD), 0);
	assert_list(1, "a");
	/* Only a CR that ends a line goes; one inside a value stays. */
	assert_int_equal(parse_str("a\rb\n\r\n", CMDENV_CMD), 0);
	assert_list(2, "a\rb", "");
	assert_int_equal(parse_str("A=1\r\n\r\nB=2\r\n", CMDENV_ENV), 0);
	assert_list(2, "A=1", "B=2");
}

static void test_env_lines(void **state)
{
	const char *text = "PATH=/usr/bin:/bin\nGREETING=hi there\n\nEMPTY=\nEQ=a=b";

	assert_int_equal(parse_str(text, CMDENV_ENV), 0);
	assert_list(4, "PATH=/usr/bin:/bin", "GREETING=hi there", "EMPTY=", "EQ=a=b");
	assert_int_equal(parse_str("\n\n", CMDENV_ENV), 0);
	assert_list(0);
}

static void test_env_malformed(void **state)
{
	assert_int_equal(parse_str("A=1\nNOEQUALS\n", CMDENV_ENV), -1);
	assert_string_equal(err, "line 2 is not KEY=VALUE");
	assert_int_equal(parse_str("=value\n", CMDENV_ENV), -1);
	assert_string_equal(err, "line 1 is not KEY=VALUE");
	/* The same bytes are a fine argv. */
	assert_int_equal(parse_str("A=1\nNOEQUALS\n", CMDENV_CMD), 0);
	assert_list(2, "A=1", "NOEQUALS");
}

static void test_nul_bytes(void **state)
{
	static const char cmd[] = "/bin/hello\nab\0cd\n";
	static const char env[] = "A=\0\n";

	assert_int_equal(parse(cmd, sizeof(cmd) - 1, CMDENV_CMD), -1);
	assert_string_equal(err, "line 2 contains a NUL byte");
	assert_int_equal(parse(env, sizeof(env) - 1, CMDENV_ENV), -1);
	assert_string_equal(err, "line 1 contains a NUL byte");
	assert_int_equal(parse("\0", 1, CMDENV_CMD), -1);
	assert_string_equal(err, "line 1 contains a NUL byte");
}

static void test_oversize_file(void **state)
{
	char *big = malloc(CMDENV_MAX_FILE + 1);

	assert_non_null(big);
	memset(big, '\n', CMDENV_MAX_FILE + 1);
	assert_int_equal(parse(big, CMDENV_MAX_FILE + 1, CMDENV_ENV), -1);
	assert_string_equal(err, "larger than 1048576 bytes");
	/* Exactly the cap is accepted (all empty env lines, skipped). */
	assert_int_equal(parse(big, CMDENV_MAX_FILE, CMDENV_ENV), 0);
	assert_list(0);
	free(big);
}

static void test_long_line(void **state)
{
	char *text = malloc(CMDENV_MAX_LINE + 3);

	assert_non_null(text);
	memset(text, 'x', CMDENV_MAX_LINE + 2);
	text[CMDENV_MAX_LINE] = '\n';
	assert_int_equal(parse(text, CMDENV_MAX_LINE + 1, CMDENV_CMD), 0);
	assert_int_equal(list.n, 1);
	assert_int_equal(strlen(list.v[0]), CMDENV_MAX_LINE);
	/* One more byte on a second line: "x\n" + 131072 x's. */
	text[0] = 'x';
	text[1] = '\n';
	memset(text + 2, 'x', CMDENV_MAX_LINE + 1);
	assert_int_equal(parse(text, CMDENV_MAX_LINE + 3, CMDENV_CMD), -1);
	assert_string_equal(err, "line 2 is longer than 131071 bytes");
	free(text);
}

static void test_too_many_entries(void **state)
{
	size_t len = 2 * (CMDENV_MAX_ENTRIES + 1);
	char *text = malloc(len);

	assert_non_null(text);
	for (size_t i = 0; i < len; i += 2) {
		text[i] = 'a';
		text[i + 1] = '\n';
	}
	assert_int_equal(parse(text, len - 2, CMDENV_CMD), 0);
	assert_int_equal(list.n, CMDENV_MAX_ENTRIES);
	assert_null(list.v[CMDENV_MAX_ENTRIES]);
	assert_int_equal(parse(text, len, CMDENV_CMD), -1);
	assert_string_equal(err, "more than 4096 entries");
	/* Empty env lines do not count. */
	memset(text, '\n', len);
	assert_int_equal(parse(text, len, CMDENV_ENV), 0);
	assert_list(0);
	free(text);
}

static void test_env_lookup(void **state)
{
	assert_int_equal(parse_str("PATHX=no\nPATH=/opt/bin:/bin\nP=1\nEMPTY=\n", CMDENV_ENV), 0);
	assert_string_equal(env_lookup(&list, "PATH"), "/opt/bin:/bin");
	assert_string_equal(env_lookup(&list, "P"), "1");
	assert_string_equal(env_lookup(&list, "EMPTY"), "");
	assert_null(env_lookup(&list, "PAT"));
	assert_null(env_lookup(&list, "HOME"));
}

static void test_modules_select(void **state)
{
	const char *names[] = {"10-nsm.ko", "readme", "01-vsock.ko", ".00-hidden.ko",
			       "00-virtio_mmio.ko", "x.ko.xz", ".ko",
			       "02-vmw_vsock_virtio_transport_common.ko", "B.ko", "a.ko", "ko"};
	size_t n = modules_select(names, sizeof(names) / sizeof(names[0]));

	assert_int_equal(n, 6);
	assert_string_equal(names[0], "00-virtio_mmio.ko");
	assert_string_equal(names[1], "01-vsock.ko");
	assert_string_equal(names[2], "02-vmw_vsock_virtio_transport_common.ko");
	assert_string_equal(names[3], "10-nsm.ko");
	/* Byte order, not a locale's: uppercase before lowercase. */
	assert_string_equal(names[4], "B.ko");
	assert_string_equal(names[5], "a.ko");
	assert_int_equal(modules_select(names, 0), 0);
}

static void test_module_display_name(void **state)
{
	char out[64];

	module_display_name("00-virtio_mmio.ko", out, sizeof(out));
	assert_string_equal(out, "virtio_mmio");
	module_display_name("nsm.ko", out, sizeof(out));
	assert_string_equal(out, "nsm");
	module_display_name("123-vsock.ko", out, sizeof(out));
	assert_string_equal(out, "vsock");
	module_display_name("7-a-b.ko", out, sizeof(out));
	assert_string_equal(out, "a-b");
	/* Digits without a dash are part of the name. */
	module_display_name("8250.ko", out, sizeof(out));
	assert_string_equal(out, "8250");
	module_display_name("01-x", out, sizeof(out));
	assert_string_equal(out, "x");
	module_display_name("00-vmw_vsock_virtio_transport.ko", out, 8);
	assert_string_equal(out, "vmw_vso");
}

static void test_cgroups_enabled(void **state)
{
	char text[] = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
		      "cpuset\t0\t1\t1\n"
		      "cpu\t0\t1\t1\n"
		      "memory\t0\t1\t0\n"
		      "garbage line\n"
		      "../escape\t0\t1\t1\n"
		      "pids 0 1 1\n"
		      "\n"
		      "misc\t0\t1\t1";
	const char *names[8];
	char again[sizeof(text)];
	size_t n;

	memcpy(again, text, sizeof(text));
	n = cgroups_enabled(text, names, 8);
	assert_int_equal(n, 4);
	assert_string_equal(names[0], "cpuset");
	assert_string_equal(names[1], "cpu");
	assert_string_equal(names[2], "pids");
	assert_string_equal(names[3], "misc");
	assert_int_equal(cgroups_enabled(again, names, 2), 2);
	assert_string_equal(names[1], "cpu");
	strcpy(again, "#only a header\n");
	assert_int_equal(cgroups_enabled(again, names, 8), 0);
}

static void test_describe_exit(void **state)
{
	char out[128];

	describe_exit(W_EXITCODE(0, 0), out, sizeof(out));
	assert_string_equal(out, "app exited with status 0");
	describe_exit(W_EXITCODE(127, 0), out, sizeof(out));
	assert_string_equal(out, "app exited with status 127");
	describe_exit(W_EXITCODE(0, 9), out, sizeof(out));
	assert_string_equal(out, "app killed by signal 9 (SIGKILL)");
	describe_exit(W_EXITCODE(0, 11) | 0x80, out, sizeof(out));
	assert_string_equal(out, "app killed by signal 11 (SIGSEGV), core dumped");
	describe_exit(W_EXITCODE(0, 15), out, sizeof(out));
	assert_string_equal(out, "app killed by signal 15 (SIGTERM)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_lines),
		cmocka_unit_test(test_cmd_no_trailing_newline),
		cmocka_unit_test(test_cmd_empty_lines),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_env_lines),
		cmocka_unit_test(test_env_malformed),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_oversize_file),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_too_many_entries),
		cmocka_unit_test(test_env_lookup),
		cmocka_unit_test(test_modules_select),
		cmocka_unit_test(test_module_display_name),
		cmocka_unit_test(test_cgroups_enabled),
		cmocka_unit_test(test_describe_exit),
	};

	return cmocka_run_group_tests_name("init", tests, NULL, NULL);
}
