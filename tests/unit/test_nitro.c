/* The native path's device-free pieces: NE error numbers in words and the CPU
 * pool's cpu-list text, well formed and hostile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nectl/nitro.h"

static void test_ne_errors_in_words(void **state)
{
	(void)state;
	assert_string_equal(ne_err_words(256),
			    "NE_ERR_VCPU_ALREADY_USED: The provided vCPU is already used");
	assert_non_null(strstr(ne_err_words(268), "64 MiB"));
	assert_non_null(strstr(ne_err_words(275), "NE_ERR_INVALID_ENCLAVE_CID"));
	/* Every one of 256..275 has words, nothing else has. */
	for (int e = 256; e <= 275; e++)
		assert_non_null(ne_err_words(e));
	assert_null(ne_err_words(255));
	assert_null(ne_err_words(276));
	assert_null(ne_err_words(22));
	assert_null(ne_err_words(-256));
}

static void list_is(const char *text, const char *want)
{
	int ids[64];
	size_t n;
	char got[256] = "";
	struct nectl_err err = {0};

	if (ne_cpu_list_parse(text, ids, 64, &n, &err) < 0)
		fail_msg("`%s`: %s", text, err.msg);
	for (size_t i = 0; i < n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%d", i ? " " : "",
			 ids[i]);
	assert_string_equal(got, want);
}

static void list_fails(const char *text, enum nectl_kind kind)
{
	int ids[64];
	size_t n;
	struct nectl_err err = {0};

	if (ne_cpu_list_parse(text, ids, 64, &n, &err) == 0)
		fail_msg("`%s` accepted", text);
	assert_int_equal(err.kind, kind);
	assert_null(strchr(err.msg, '\n'));
}

static void test_cpu_lists(void **state)
{
	(void)state;
	list_is("1-3,6\n", "1 2 3 6");
	list_is("2,6,3,7", "2 3 6 7");
	list_is("5", "5");
	list_is("", "");
	list_is("\n", "");
	list_is("4-4,4", "4");
	list_fails("0-3-7", NECTL_ERR_CPU_RANGE);
	list_fails("3-1", NECTL_ERR_CPU_RANGE);
	list_fails("a", NECTL_ERR_CPU_ID);
	list_fails("1,,2", NECTL_ERR_CPU_ID);
	list_fails("1,", NECTL_ERR_CPU_ID);
	list_fails("-1", NECTL_ERR_CPU_ID);
	list_fails("1 2", NECTL_ERR_CPU_ID);
	list_fails("1\n2", NECTL_ERR_CPU_ID);
	list_fails("99999999999999999999", NECTL_ERR_CPU_ID);
	list_fails("4096", NECTL_ERR_CPU_ID);
	list_fails("0-200", NECTL_ERR_CPU_COUNT); /* more than the 64 asked for */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ne_errors_in_words),
	    cmocka_unit_test(test_cpu_lists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
