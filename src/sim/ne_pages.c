/* What backs a user address, as the NE driver's get_user_pages would see it
 * (nectl/sim.h): the hugetlb page size of its mapping from /proc/self/smaps,
 * its NUMA node from move_pages(2). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nectl/sim.h"

/* The mapping holding addr: its start and KernelPageSize (bytes). */
static int sim_smaps_find(uintptr_t addr, uintptr_t *start, uint64_t *page)
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
				*start = lo;
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

int sim_pages_host(void *ctx, uintptr_t addr, struct sim_page *out)
{
	uintptr_t start = 0;
	uint64_t page = 0;
	void *pages[1] = {(void *)addr};
	int status[1] = {-1};
	int rc;

	(void)ctx;
	rc = sim_smaps_find(addr, &start, &page);
	if (rc)
		return rc;
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
