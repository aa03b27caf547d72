/* The native launch sequence on the simulated NE device with the host's real
 * hugepages: what is donated, where the EIF lands, which CPUs and CID the
 * driver gives, EPOLLHUP at the end, and failures that give every hugepage
 * back. Also the real device's absence here: nitro-cli's E19 words. Run as
 * root (hugepages are reserved for the test and given back); skipped
 * otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nectl/launch_seq.h"
#include "nectl/native.h"

#define MIB (1ull << 20)

static char eif[] = "/tmp/nectl-native-XXXXXX";
static char old_nr[32];

static uint8_t byte_at(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 11));
}

static long hp_free(void)
{
	FILE *fp = fopen("/proc/meminfo", "re");
	char line[128];
	long v = -1;

	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "HugePages_Free: %ld", &v) == 1)
			break;
	if (fp)
		fclose(fp);
	return v;
}

static int nr_hugepages(const char *set, char *get, size_t len)
{
	int fd = open("/proc/sys/vm/nr_hugepages", O_RDWR | O_CLOEXEC);
	ssize_t n = 0;

	if (fd < 0)
		return -1;
	if (get)
		n = read(fd, get, len - 1);
	if (get && n > 0)
		get[n] = 0;
	if (set && pwrite(fd, set, strlen(set), 0) < 0)
		n = -1;
	close(fd);
	return n < 0 ? -1 : 0;
}

static int setup(void **state)
{
	static uint8_t buf[3 * MIB + 777];
	int fd = mkstemp(eif);

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = byte_at(i);
	if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		return -1;
	close(fd);
	if (geteuid() == 0 && nr_hugepages(NULL, old_nr, sizeof(old_nr)) == 0) {
		char want[32];

		snprintf(want, sizeof(want), "%ld\n", atol(old_nr) + 40);
		nr_hugepages(want, NULL, 0);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(eif);
	if (old_nr[0])
		nr_hugepages(old_nr, NULL, 0);
	return 0;
}

static struct ne_dev *sim_dev(void)
{
	struct sim_topology t;
	struct ne_dev *d;
	struct nectl_err err = {0};

	sim_topology_default(&t);
	if (ne_dev_open_sim(&t, "1-3,5-7", NULL, NULL, &d, &err) < 0)
		fail_msg("%s", err.msg);
	return d;
}

static struct launch_spec spec(uint64_t mib, unsigned ncpus)
{
	return (struct launch_spec){.eif_path = eif, .memory_bytes = mib * MIB, .ncpus = ncpus};
}

/* The launch sequence on the NE device as an accelerator. */
struct run {
	struct accel *a;
	struct launch_result o;
};

static int start(struct ne_dev *d, const struct launch_spec *s, struct run *n,
		 struct nectl_err *err)
{
	struct ne_accel_cfg c = {.sysfs = "/sys", .node = 0, .max_regions = 256};

	if (accel_ne_new(&n->a, d, &c, err) < 0)
		return -1;
	if (launch_seq_run(n->a, s, &n->o, err) == 0)
		return 0;
	accel_destroy(n->a);
	n->a = NULL;
	return -1;
}

static void test_native_start_on_the_simulated_device(void **state)
{
	struct ne_dev *d;
	struct run n;
	struct launch_spec s = spec(64, 2);
	struct nectl_err err = {0};
	struct pollfd p;
	char plan[128];
	long before = hp_free();

	(void)state;
	if (before < 32)
		skip();
	d = sim_dev();
	assert_string_equal(ne_dev_mode(d), "simulated");
	if (start(d, &s, &n, &err) < 0)
		fail_msg("%s", err.msg);
	huge_plan_text(accel_ne_plan(n.a), plan, sizeof(plan));
	assert_string_equal(plan, "32 x 2 MiB on node 0 (64 MiB)");
	assert_int_equal(n.o.nr, 1);
	assert_int_equal(n.o.ncpus, 2);
	assert_int_equal(n.o.cpus[0], 1); /* the lowest free core, both threads */
	assert_int_equal(n.o.cpus[1], 5);
	assert_int_equal(n.o.cid, 16);
	assert_true(n.o.slot_uid != 0);
	assert_int_equal(n.o.eif_len, 3 * MIB + 777);
	for (uint64_t i = 0; i < n.o.eif_len; i++)
		if (n.o.r[0].addr[8 * MIB + i] != byte_at(i))
			fail_msg("EIF byte %llu differs in enclave memory", (unsigned long long)i);
	assert_int_equal(hp_free(), before - 32);
	/* Running: no event. Ended: exactly POLLHUP, and it stays. */
	p = (struct pollfd){.fd = ne_vm_fd(accel_ne_vm(n.a)), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0);
	ne_vm_ended(accel_ne_vm(n.a));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(poll(&p, 1, 0), 1);
		assert_int_equal(p.revents, POLLHUP);
	}
	accel_destroy(n.a);
	assert_int_equal(hp_free(), before);
	ne_dev_close(d);
}

static void test_native_failures_give_everything_back(void **state)
{
	struct ne_dev *d;
	struct run n;
	struct launch_spec s = spec(64, 1);
	struct nectl_err err = {0};
	long before = hp_free();

	(void)state;
	if (before < 32)
		skip();
	d = sim_dev();
	/* One thread of a two-thread core: START refuses. */
	assert_int_equal(start(d, &s, &n, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_IOCTL);
	assert_non_null(strstr(err.msg, "NE_START_ENCLAVE failed: NE_ERR_FULL_CORES_NOT_USED"));
	assert_int_equal(hp_free(), before);
	/* Below the driver's 64 MiB. */
	s = spec(32, 2);
	assert_int_equal(start(d, &s, &n, &err), -1);
	assert_non_null(strstr(err.msg, "NE_ERR_ENCLAVE_MEM_MIN_SIZE"));
	/* More than the host has: E27 with every node's free pages. */
	s = spec((uint64_t)(before + 100) * 2, 2);
	assert_int_equal(start(d, &s, &n, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_MEM_AVAILABLE);
	assert_non_null(strstr(err.msg, "node 0:"));
	/* A CPU outside the pool. */
	s = spec(64, 2);
	s.cpu_ids = (const uint32_t[]){1, 4};
	assert_int_equal(start(d, &s, &n, &err), -1);
	assert_non_null(strstr(err.msg, "NE_ADD_VCPU failed: NE_ERR_VCPU_NOT_IN_CPU_POOL"));
	/* The EIF larger than the memory after the load offset. */
	s = spec(10, 2);
	assert_int_equal(start(d, &s, &n, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_MEM_OVERFLOW);
	assert_int_equal(hp_free(), before);
	ne_dev_close(d);
}

static void test_real_device_absent(void **state)
{
	struct ne_dev *d;
	struct nectl_err err = {0};

	(void)state;
	if (access(NE_DEV_PATH, F_OK) == 0)
		skip(); /* a real parent instance */
	assert_int_equal(ne_dev_open(NULL, &d, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	assert_non_null(strstr(err.msg, "File: '/dev/nitro_enclaves', failing operation: 'Open'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_native_start_on_the_simulated_device),
	    cmocka_unit_test(test_native_failures_give_everything_back),
	    cmocka_unit_test(test_real_device_absent),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
