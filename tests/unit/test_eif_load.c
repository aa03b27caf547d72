/* The launch's load step: the EIF streamed into enclave memory at the load
 * offset across regions in donation order, byte for byte, and nothing
 * written when it does not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nectl/enclave.h"

#define MIB (1u << 20)

static char path[] = "/tmp/nectl-eifload-XXXXXX";

static uint8_t byte_at(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 13));
}

static int make_file(void **state)
{
	static uint8_t buf[64 * 1024];
	int fd = mkstemp(path);
	uint64_t size = 5 * MIB + 12345;

	(void)state;
	if (fd < 0)
		return -1;
	for (uint64_t at = 0; at < size;) {
		size_t k = size - at < sizeof(buf) ? (size_t)(size - at) : sizeof(buf);

		for (size_t i = 0; i < k; i++)
			buf[i] = byte_at(at + i);
		if (write(fd, buf, k) != (ssize_t)k)
			return -1;
		at += k;
	}
	close(fd);
	return 0;
}

static int remove_file(void **state)
{
	(void)state;
	return unlink(path);
}

static void test_eif_spans_regions_from_the_offset(void **state)
{
	/* 6 + 2 + 8 MiB: the 8 MiB offset is the third region's first byte.
	 * 4 + 6 + 4 MiB: it is 4 MiB into the second, and the EIF runs on
	 * into the third. */
	static const uint64_t layouts[2][3] = {{6 * MIB, 2 * MIB, 8 * MIB},
					       {4 * MIB, 6 * MIB, 4 * MIB}};
	struct nectl_err err = {0};

	(void)state;
	for (int l = 0; l < 2; l++) {
		struct mem_region r[3];
		uint64_t len = 0, logical = 0;

		for (int i = 0; i < 3; i++) {
			r[i].size = layouts[l][i];
			r[i].addr = calloc(1, r[i].size);
			assert_non_null(r[i].addr);
		}
		assert_int_equal(enclave_write_eif(path, r, 3, 8 * MIB, &len, &err), 0);
		assert_int_equal(len, 5 * MIB + 12345);
		for (int i = 0; i < 3; i++) {
			for (uint64_t j = 0; j < r[i].size; j++, logical++) {
				uint8_t want = logical >= 8 * MIB && logical < 8 * MIB + len
						   ? byte_at(logical - 8 * MIB)
						   : 0;

				if (r[i].addr[j] != want)
					fail_msg("layout %d: byte %llu of region %d is %u, want %u",
						 l, (unsigned long long)j, i, r[i].addr[j], want);
			}
			free(r[i].addr);
		}
	}
}

static void test_eif_that_does_not_fit_writes_nothing(void **state)
{
	struct nectl_err err = {0};
	struct mem_region r[2];

	(void)state;
	r[0].size = 8 * MIB;
	r[1].size = 4 * MIB;
	r[0].addr = calloc(1, r[0].size);
	r[1].addr = calloc(1, r[1].size);
	assert_int_equal(enclave_write_eif(path, r, 2, 8 * MIB, NULL, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_MEM_OVERFLOW);
	assert_non_null(strstr(err.msg, "does not fit in 12 MiB"));
	for (uint64_t j = 0; j < r[1].size; j++)
		assert_int_equal(r[1].addr[j], 0);
	/* An offset past the memory, and a missing file. */
	assert_int_equal(enclave_write_eif(path, r, 2, 64 * MIB, NULL, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_MEM_OVERFLOW);
	assert_int_equal(enclave_write_eif("/nonexistent.eif", r, 2, 0, NULL, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	assert_int_equal(enclave_write_eif("/tmp", r, 2, 0, NULL, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	free(r[0].addr);
	free(r[1].addr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eif_spans_regions_from_the_offset),
	    cmocka_unit_test(test_eif_that_does_not_fit_writes_nothing),
	};

	return cmocka_run_group_tests(tests, make_file, remove_file);
}
