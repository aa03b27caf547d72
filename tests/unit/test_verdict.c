/* How an enclave ended comes from the machine and from init's report over its
 * own vsock connection, never from console text: any process in the enclave
 * can print "Kernel panic - not syncing" or init's own words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enclave/forward.h"
#include "enclave/sup.h"
#include "vsockdrv.h"

static void feed(struct console *c, const char *s)
{
	console_feed(c, (const uint8_t *)s, strlen(s));
}

static const char *reason(json_t *e)
{
	return json_string_value(json_object_get(e, "Reason"));
}

/* An app that logs a client's input prints both lines; the guest then
 * reboots (its app ended without init's report). */
static void test_console_text_does_not_decide_the_exit(void **state)
{
	static struct sup s;
	struct nectl_err err = {0};
	json_t *e;

	(void)state;
	assert_int_equal(console_init(&s.cons, false, NULL, NULL, NULL, &err), 0);
	feed(&s.cons, "client said: Kernel panic - not syncing: forged\n");
	feed(&s.cons, "client said: nectl-init: app exited with status 7\n");
	feed(&s.cons, "nectl-init: app killed by signal 9 (SIGKILL)\n");
	s.why = MACHINE_EXIT_RESET;
	e = sup_classify(&s);
	assert_string_equal(reason(e), "reboot");
	assert_null(json_object_get(e, "AppExitStatus"));
	assert_null(json_object_get(e, "AppSignal"));
	/* Kept for people, marked as what the guest printed. */
	assert_string_equal(json_string_value(json_object_get(e, "ConsoleHint")),
			    "Kernel panic - not syncing: forged");
	json_decref(e);
	console_fini(&s.cons);
}

static void test_app_report_lines(void **state)
{
	static const struct {
		const char *line;
		int rc;
		enum sup_app_end end;
		int value;
	} cases[] = {
	    {"exit 0\n", 0, SUP_APP_EXITED, 0},	    {"exit 3\n", 0, SUP_APP_EXITED, 3},
	    {"exit 255\n", 0, SUP_APP_EXITED, 255}, {"signal 9\n", 0, SUP_APP_KILLED, 9},
	    {"signal 64\n", 0, SUP_APP_KILLED, 64}, {"exit 256\n", -1, SUP_APP_NONE, 0},
	    {"exit -1\n", -1, SUP_APP_NONE, 0},	    {"exit 03\n", -1, SUP_APP_NONE, 0},
	    {"exit 1000\n", -1, SUP_APP_NONE, 0},   {"exit \n", -1, SUP_APP_NONE, 0},
	    {"exit 3", -1, SUP_APP_NONE, 0},	    {"exit 3 \n", -1, SUP_APP_NONE, 0},
	    {"exit 3\n\n", -1, SUP_APP_NONE, 0},    {"signal 0\n", -1, SUP_APP_NONE, 0},
	    {"signal 65\n", -1, SUP_APP_NONE, 0},   {"Exit 3\n", -1, SUP_APP_NONE, 0},
	    {"exit\t3\n", -1, SUP_APP_NONE, 0},	    {"", -1, SUP_APP_NONE, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum sup_app_end end = SUP_APP_NONE;
		int value = -1;
		int rc = sup_app_parse(cases[i].line, strlen(cases[i].line), &end, &value);

		if (rc != cases[i].rc)
			fail_msg("\"%s\": %d, expected %d", cases[i].line, rc, cases[i].rc);
		if (rc == 0) {
			assert_int_equal(end, cases[i].end);
			assert_int_equal(value, cases[i].value);
		}
	}
}

/* The device as the supervisor wires it: init's connection to
 * APP_REPORT_PORT is the supervisor's, the first one only. */
struct env {
	struct vdrv d;
	struct sup s;
};

static void no_irq(void *ctx, int level)
{
	(void)ctx;
	(void)level;
}

static struct env *env_new(void)
{
	struct env *e = calloc(1, sizeof(*e));
	struct nectl_err err = {0};

	assert_non_null(e);
	assert_int_equal(vd_mem_init(&e->d, 1 << 20), 0);
	e->s.wake_fd = -1;
	assert_int_equal(console_init(&e->s.cons, false, NULL, NULL, NULL, &err), 0);
	assert_int_equal(fwd_create(&e->s.fwd, NULL, 0, &err), 0);
	e->d.dev = vsock_new(GUEST_CID, &e->d.gm, no_irq, NULL, sup_vsock_ops_get(), &e->s);
	assert_non_null(e->d.dev);
	pvsock_from_device(&e->s.pv, e->d.dev, NULL, NULL, NULL);
	vd_init(&e->d);
	vd_post_rx(&e->d, QSIZE);
	return e;
}

static void env_free(struct env *e)
{
	vsock_free(e->d.dev);
	fwd_destroy(e->s.fwd);
	console_fini(&e->s.cons);
	vd_mem_free(&e->d);
	free(e);
}

static uint16_t next_op(struct env *e)
{
	struct pkt p;

	return vd_rx(&e->d, &p) ? p.op : 0;
}

static void send_line(struct env *e, uint32_t sport, const char *s)
{
	vd_tx(&e->d, OP_RW, sport, APP_REPORT_PORT, s, (uint32_t)strlen(s), 0, 65536, 0);
}

static void test_app_report_first_connection_only(void **state)
{
	struct env *e = env_new();
	json_t *x;

	(void)state;
	vd_tx(&e->d, OP_REQUEST, 1000, APP_REPORT_PORT, NULL, 0, 0, 65536, 0);
	assert_int_equal(next_op(e), OP_RESPONSE);
	/* An app trying the port after init: refused. */
	vd_tx(&e->d, OP_REQUEST, 1001, APP_REPORT_PORT, NULL, 0, 0, 65536, 0);
	assert_int_equal(next_op(e), OP_RST);
	send_line(e, 1000, "exit ");
	assert_int_equal(atomic_load(&e->s.app.end), SUP_APP_NONE);
	send_line(e, 1000, "3\n");
	/* The parent closes: init's acknowledgement. */
	assert_int_equal(next_op(e), OP_SHUTDOWN);
	assert_int_equal(atomic_load(&e->s.app.end), SUP_APP_EXITED);
	e->s.why = MACHINE_EXIT_RESET;
	x = sup_classify(&e->s);
	assert_string_equal(reason(x), "app-exited");
	assert_int_equal(json_integer_value(json_object_get(x, "AppExitStatus")), 3);
	json_decref(x);
	/* Other ports still go to the forwarder (no rules: refused). */
	vd_tx(&e->d, OP_REQUEST, 1002, 5000, NULL, 0, 0, 65536, 0);
	assert_int_equal(next_op(e), OP_RST);
	env_free(e);
}

static void test_app_report_bad_lines_decide_nothing(void **state)
{
	struct env *e = env_new();
	static char junk[64];

	(void)state;
	vd_tx(&e->d, OP_REQUEST, 1000, APP_REPORT_PORT, NULL, 0, 0, 65536, 0);
	assert_int_equal(next_op(e), OP_RESPONSE);
	memset(junk, '7', sizeof(junk) - 1);
	send_line(e, 1000, junk); /* no newline within the line limit */
	assert_int_equal(next_op(e), OP_SHUTDOWN);
	send_line(e, 1000, "\nexit 3\n"); /* too late: the connection is closed */
	assert_int_equal(atomic_load(&e->s.app.end), SUP_APP_NONE);
	env_free(e);

	e = env_new();
	vd_tx(&e->d, OP_REQUEST, 1000, APP_REPORT_PORT, NULL, 0, 0, 65536, 0);
	assert_int_equal(next_op(e), OP_RESPONSE);
	send_line(e, 1000, "exit 300\nexit 3\n");
	assert_int_equal(atomic_load(&e->s.app.end), SUP_APP_NONE);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_console_text_does_not_decide_the_exit),
	    cmocka_unit_test(test_app_report_lines),
	    cmocka_unit_test(test_app_report_first_connection_only),
	    cmocka_unit_test(test_app_report_bad_lines_decide_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
