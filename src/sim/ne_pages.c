/* What backs a user address, as the NE driver's get_user_pages would see it
 * (nectl/sim.h): the hugetlb page size of its mapping from /proc/self/smaps,
 * its NUMA node from move_pages(2). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nectl/sim.h"

/* The mapping holding addr: its start, end and KernelPageSize (bytes). */
static int sim_smaps_find(uintptr_t addr, uintptr_t *start, uintptr_t *end, uint64_t *page)
{
	FILE *fp = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	int rc = EFAULT;

	if (!fp)
		return errno;
	while (fgets(line, sizeof(line), fp)) {
		unsigned long lo, hi, kb;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = addr >= lo && addr < hi;
			if (in)
				*start = lo, *end = hi;
			continue;
		}
		if (in && sscanf(line, "KernelPageSize: %lu kB", &kb) == 1) {
			*page = (uint64_t)kb << 10;
			rc = 0;
			break;
		}
	}
	fclose(fp);
	return rc;
}

/* One smaps lookup per mapping within one NE_SET_USER_MEMORY_REGION call:
 * read again at each call's first page and whenever the address leaves the
 * mapping found, so a region mapped anew between calls is seen anew. */
static _Thread_local struct {
	uintptr_t region, start, end;
	uint64_t page;
	bool valid;
} sim_smaps_cache;

int sim_pages_host(void *ctx, uintptr_t region, uintptr_t addr, struct sim_page *out)
{
	uintptr_t start = 0, end = 0;
	uint64_t page = 0;
	void *pages[1] = {(void *)addr};
	int status[1] = {-1};
	int rc;

	(void)ctx;
	/* A call's first page (addr == region) always reads smaps afresh. */
	if (sim_smaps_cache.valid && addr != region && sim_smaps_cache.region == region &&
	    addr >= sim_smaps_cache.start && addr < sim_smaps_cache.end) {
		start = sim_smaps_cache.start;
		page = sim_smaps_cache.page;
	} else {
		sim_smaps_cache.valid = false;
		rc = sim_smaps_find(addr, &start, &end, &page);
		if (rc)
			return rc;
		sim_smaps_cache.region = region;
		sim_smaps_cache.start = start;
		sim_smaps_cache.end = end;
		sim_smaps_cache.page = page;
		sim_smaps_cache.valid = true;
	}
	/* Faulted in (a read), as get_user_pages does. */
	(void)*(volatile const uint8_t *)addr;
	out->huge = page > 4096;
	/* Inside a larger page the driver meets a tail page: 4 KiB. */
	out->size = (addr - start) % page ? 4096 : page;
	if (syscall(SYS_move_pages, 0, 1UL, pages, NULL, status, 0) < 0 || status[0] < 0)
		out->node = 0; /* no NUMA in this kernel: one node */
	else
		out->node = status[0];
	return 0;
}
