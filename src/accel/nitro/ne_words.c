/* The NE driver's error numbers and its CPU pool's text (nectl/nitro.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nectl/nitro.h"

#define NE_ERR_FIRST 256

/* Each in words (nitro-cli's where its error.rs has them, the driver's
 * meaning otherwise), after the driver's name for it, so that a user can
 * search for either. */
static const char *const ne_err_table[] = {
    "NE_ERR_VCPU_ALREADY_USED: The provided vCPU is already used",
    "NE_ERR_VCPU_NOT_IN_CPU_POOL: The provided vCPU is not available in the CPU pool",
    "NE_ERR_VCPU_INVALID_CPU_CORE: The vCPU core ID is invalid for the CPU pool",
    "NE_ERR_INVALID_MEM_REGION_SIZE: The memory region's size is not a multiple of 2 MiB",
    "NE_ERR_INVALID_MEM_REGION_ADDR: The memory region's address is invalid",
    "NE_ERR_UNALIGNED_MEM_REGION_ADDR: The memory region's address is not aligned",
    "NE_ERR_MEM_REGION_ALREADY_USED: The memory region is already used",
    "NE_ERR_MEM_NOT_HUGE_PAGE: The memory region is not backed by contiguous physical huge "
    "pages",
    "NE_ERR_MEM_DIFFERENT_NUMA_NODE: The memory region's pages and the CPUs are on different "
    "NUMA nodes",
    "NE_ERR_MEM_MAX_REGIONS: The maximum number of memory regions per enclave is reached",
    "NE_ERR_NO_MEM_REGIONS_ADDED: The enclave cannot start: no memory regions were added",
    "NE_ERR_NO_VCPUS_ADDED: The enclave cannot start: no vCPUs were added",
    "NE_ERR_ENCLAVE_MEM_MIN_SIZE: The enclave memory is below the minimum of 64 MiB",
    "NE_ERR_FULL_CORES_NOT_USED: The enclave cannot start: every thread of each core used "
    "must be added",
    "NE_ERR_NOT_IN_INIT_STATE: The enclave is not in its init state (already started)",
    "NE_ERR_INVALID_VCPU: The provided vCPU is out of range",
    "NE_ERR_NO_CPUS_AVAIL_IN_POOL: No CPUs are available in the CPU pool",
    "NE_ERR_INVALID_PAGE_SIZE: The memory region's pages are not a multiple of 2 MiB",
    "NE_ERR_INVALID_FLAG_VALUE: A flag value is invalid",
    "NE_ERR_INVALID_ENCLAVE_CID: The enclave CID is invalid (well known, or the parent's)",
};

const char *ne_err_words(int errnum)
{
	size_t n = sizeof(ne_err_table) / sizeof(ne_err_table[0]);

	if (errnum < NE_ERR_FIRST || (size_t)(errnum - NE_ERR_FIRST) >= n)
		return NULL;
	return ne_err_table[errnum - NE_ERR_FIRST];
}

/* One decimal CPU id at *p, advancing it; -1 if there is none or it is too
 * large. */
static int ne_cpu_number(const char **p)
{
	long v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s - '0');
		if (v >= NE_CPUS_MAX)
			return -1;
		s++;
	}
	*p = s;
	return (int)v;
}

/* The pool's text for a one-line message: control characters as '?'. */
static void ne_cpu_list_show(const char *text, size_t len, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; i < len && i + 1 < outlen; i++)
		out[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
	out[i] = 0;
}

int ne_cpu_list_parse(const char *text, int *ids, size_t max, size_t *n, struct nectl_err *err)
{
	static bool seen[NE_CPUS_MAX];
	const char *p = text;
	size_t len = strlen(text);
	char show[80];

	memset(seen, 0, sizeof(seen));
	*n = 0;
	if (len && text[len - 1] == '\n')
		len--;
	ne_cpu_list_show(text, len, show, sizeof(show));
	while ((size_t)(p - text) < len) {
		int lo = ne_cpu_number(&p), hi;

		if (lo < 0)
			return nectl_err_set(err, NECTL_ERR_CPU_ID,
					     "CPU pool `%s`: not a CPU number", show);
		hi = lo;
		if (*p == '-') {
			p++;
			hi = ne_cpu_number(&p);
			if (hi < 0)
				return nectl_err_set(err, NECTL_ERR_CPU_ID,
						     "CPU pool `%s`: not a CPU number", show);
			if (hi < lo || *p == '-')
				return nectl_err_set(err, NECTL_ERR_CPU_RANGE,
						     "CPU pool `%s`: `%d-%d%s` is not a CPU range",
						     show, lo, hi, *p == '-' ? "-..." : "");
		}
		for (int c = lo; c <= hi; c++)
			seen[c] = true;
		if ((size_t)(p - text) < len && *p++ != ',')
			return nectl_err_set(err, NECTL_ERR_CPU_ID,
					     "CPU pool `%s`: a CPU list separates with commas",
					     show);
		if ((size_t)(p - text) == len && p[-1] == ',')
			return nectl_err_set(err, NECTL_ERR_CPU_ID,
					     "CPU pool `%s`: ends with a comma", show);
	}
	for (int c = 0; c < NE_CPUS_MAX; c++) {
		if (!seen[c])
			continue;
		if (*n == max)
			return nectl_err_set(err, NECTL_ERR_CPU_COUNT,
					     "CPU pool `%s`: more than %zu CPUs", show, max);
		ids[(*n)++] = c;
	}
	return 0;
}

void ne_pool_node(const char *sysfs, unsigned *node)
{
	char path[512], text[256] = "", *end;
	unsigned long cpu;
	FILE *f;

	*node = 0;
	snprintf(path, sizeof(path), "%s/module/nitro_enclaves/parameters/ne_cpus", sysfs);
	f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(text, sizeof(text), f))
		text[0] = 0;
	fclose(f);
	/* Only the first CPU matters: the driver keeps the pool on one node. */
	cpu = strtoul(text, &end, 10);
	if (end == text || cpu > 65535)
		return;
	for (unsigned k = 0; k < 1024; k++) {
		snprintf(path, sizeof(path), "%s/devices/system/cpu/cpu%lu/node%u", sysfs, cpu, k);
		if (access(path, F_OK) == 0) {
			*node = k;
			return;
		}
	}
}
