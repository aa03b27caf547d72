/* pvpanic as Linux's driver uses it: it reads the offered events once, then
 * writes PANICKED from its panic notifier; nothing else may look like a panic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nectl/pvpanic.h"

static unsigned calls;
static uint8_t last;

static void on_event(void *ctx, uint8_t events)
{
	(void)ctx;
	calls++;
	last = events;
}

static void test_pvpanic_offers_panicked_and_crash_loaded(void **state)
{
	struct pvpanic p;

	(void)state;
	pvpanic_init(&p, on_event, NULL);
	assert_int_equal(pvpanic_read(&p), PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
}

static void test_pvpanic_only_offered_events_count(void **state)
{
	struct pvpanic p;

	(void)state;
	calls = 0;
	pvpanic_init(&p, on_event, NULL);
	pvpanic_write(&p, 0);
	pvpanic_write(&p, 0xfc); /* events this device does not offer */
	assert_int_equal(calls, 0);
	pvpanic_write(&p, 0xff);
	assert_int_equal(calls, 1);
	assert_int_equal(last, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	pvpanic_write(&p, PVPANIC_PANICKED);
	assert_int_equal(calls, 2);
	assert_int_equal(last, PVPANIC_PANICKED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pvpanic_offers_panicked_and_crash_loaded),
	    cmocka_unit_test(test_pvpanic_only_offered_events_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
