/* A piece of an enclave's memory as the parent maps it. The enclave's memory
 * is the concatenation of its regions in the order they are donated (the NE
 * driver's rule, which accel/kvm follows too); the launch writes the EIF
 * there and the accelerator finds it there. */
#ifndef NECTL_MEMREGION_H
#define NECTL_MEMREGION_H

#include <stdint.h>

struct mem_region {
	uint8_t *addr;
	uint64_t size;
};

#endif
