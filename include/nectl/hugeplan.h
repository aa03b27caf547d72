/* Planning an enclave's memory on a Nitro parent: the NE driver takes only
 * hugetlb pages, 2 MiB-aligned, on the CPU pool's NUMA node, and counts every
 * physically contiguous chunk against a per-enclave region limit. Before
 * anything is mapped, nectl reads what each node has free (sysfs) and picks
 * the page sizes that cover the request with the least waste, then the fewest
 * regions, within the limit: 2 MiB pages for a 256 MiB enclave even where
 * 1 GiB pages exist, 1 GiB pages where 2 MiB ones would pass the limit.
 * Pure: the sysfs root is a parameter, so tests use synthetic trees. */
#ifndef NECTL_HUGEPLAN_H
#define NECTL_HUGEPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "nectl/err.h"

#define HUGE_MAX_POOLS 64 /* (node, page size) pairs read */
#define HUGE_MAX_SIZES 9  /* page sizes in one plan (nitro-cli knows nine) */
#define HUGE_PAGE_MIN  (2ull << 20)

struct huge_pool {
	unsigned node;
	uint64_t page_size; /* bytes */
	uint64_t free_pages;
};

struct huge_inventory {
	struct huge_pool pools[HUGE_MAX_POOLS];
	unsigned n;
};

struct huge_plan {
	unsigned node;
	struct {
		uint64_t page_size, count;
	} items[HUGE_MAX_SIZES]; /* largest pages first: the donation order */
	unsigned n;
	uint64_t bytes;	  /* what the enclave gets: >= the request */
	uint64_t regions; /* pages, the most physical chunks they can make */
};

/* Reads SYSFS/devices/system/node/node<N>/hugepages/hugepages-<K>kB/
 * free_hugepages for every node and size ("/sys" on a real host). A host
 * without NUMA nodes in sysfs has an empty inventory. */
int huge_inventory_read(const char *sysfs, struct huge_inventory *inv, struct nectl_err *err);

/* The plan for `bytes` (rounded up to 2 MiB) on `node` with at most
 * `max_regions` regions. NECTL_ERR_MEM_AVAILABLE when the node cannot cover
 * it, naming what every node has free. */
int huge_plan_make(const struct huge_inventory *inv, unsigned node, uint64_t bytes,
		   uint64_t max_regions, struct huge_plan *plan, struct nectl_err *err);

/* "128 x 2 MiB on node 0" style text, for --verbose and describe. */
void huge_plan_text(const struct huge_plan *plan, char *buf, size_t len);

#endif
