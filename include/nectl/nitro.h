/* Pieces of the native Nitro Enclaves path that need no device: the NE
 * driver's error numbers in words (nitro-cli's, so messages match), and the
 * CPU pool's cpu-list text (/sys/module/nitro_enclaves/parameters/ne_cpus),
 * parsed as nitro-cli does, strictly. The ioctls themselves are the
 * kernel's (<linux/nitro_enclaves.h>). */
#ifndef NECTL_NITRO_H
#define NECTL_NITRO_H

#include <stddef.h>

#include "nectl/err.h"

#define NE_CPUS_MAX 4096 /* CPU ids accepted in a pool */

/* "NE_ERR_VCPU_ALREADY_USED: The provided vCPU is already used" for the NE
 * driver's 256..275; NULL for any other errno (use strerror). */
const char *ne_err_words(int errnum);

/* A Linux cpu-list ("1-3,6", a newline at most at the end, "" empty) into
 * ids[], ascending, without duplicates; *n the count. NECTL_ERR_CPU_ID for a
 * number that is not one (E23), NECTL_ERR_CPU_RANGE for a range that is not
 * one ("3-1", "0-3-7": E24). */
/* The driver's CPU pool, as nitro-cli reads it. */
#define NE_CPU_POOL_PATH "/sys/module/nitro_enclaves/parameters/ne_cpus"

int ne_cpu_list_parse(const char *text, int *ids, size_t max, size_t *n, struct nectl_err *err);

/* The NUMA node of the NE CPU pool's first CPU, from SYSFS
 * (module/nitro_enclaves/parameters/ne_cpus, devices/system/cpu/cpuN/nodeK);
 * 0 when either cannot be read (a host without NUMA in sysfs). */
void ne_pool_node(const char *sysfs, unsigned *node);

#endif
