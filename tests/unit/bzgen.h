/* bzgen.h: the setup header of a synthetic bzImage that x86_boot_setup
 * accepts, for tests that place or run a "kernel" without a real one. */
#ifndef NECTL_TESTS_BZGEN_H
#define NECTL_TESTS_BZGEN_H

#include <stddef.h>
#include <stdint.h>

/* Zeroes k[0, len) and writes a protocol-2.15 header: setup_sects sectors of
 * setup, relocatable with 2 MiB alignment, 64-bit entry, loadable above
 * 4 GiB, cmdline_size 2047, pref_address pref and init_size init_size. */
void bzgen_header(uint8_t *k, size_t len, unsigned setup_sects, uint64_t pref, uint32_t init_size);

#endif
