/* The enclave memory plan (nectl/hugeplan.h): what the NUMA nodes have free,
 * read from sysfs, and the page sizes that cover a request best. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nectl/hugeplan.h"

/* A sysfs number: digits, then at most a newline. */
static int huge_read_u64(const char *path, uint64_t *out)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	uint64_t v = 0;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (buf[n - 1] == '\n')
		buf[--n] = 0;
	if (n == 0 || n > 19)
		return -1;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(buf[i] - '0');
	}
	*out = v;
	return 0;
}

/* "<prefix><decimal><suffix>" exactly; the number fits in 32 bits. */
static int huge_name_number(const char *name, const char *prefix, const char *suffix,
			    unsigned long long *out)
{
	size_t p = strlen(prefix), s = strlen(suffix), n = strlen(name);
	unsigned long long v = 0;

	if (n <= p + s || strncmp(name, prefix, p) != 0 || strcmp(name + n - s, suffix) != 0 ||
	    n - p - s > 9)
		return -1;
	for (size_t i = p; i < n - s; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (unsigned long long)(name[i] - '0');
	}
	*out = v;
	return 0;
}

static int huge_read_node(const char *dir, unsigned node, struct huge_inventory *inv,
			  struct nectl_err *err)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/hugepages", dir);
	d = opendir(path);
	if (!d)
		return 0; /* a node without hugetlb sizes */
	while ((de = readdir(d))) {
		unsigned long long kb;
		uint64_t free_pages;

		if (huge_name_number(de->d_name, "hugepages-", "kB", &kb) < 0 || kb == 0)
			continue;
		snprintf(path, sizeof(path), "%s/hugepages/%s/free_hugepages", dir, de->d_name);
		if (huge_read_u64(path, &free_pages) < 0)
			continue;
		if (inv->n == HUGE_MAX_POOLS) {
			closedir(d);
			return nectl_err_set(err, NECTL_ERR_MEM_AVAILABLE,
					     "more than %d hugepage pools in sysfs",
					     HUGE_MAX_POOLS);
		}
		inv->pools[inv->n++] = (struct huge_pool){
		    .node = node, .page_size = kb << 10, .free_pages = free_pages};
	}
	closedir(d);
	return 0;
}

int huge_inventory_read(const char *sysfs, struct huge_inventory *inv, struct nectl_err *err)
{
	char root[PATH_MAX], dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	inv->n = 0;
	snprintf(root, sizeof(root), "%s/devices/system/node", sysfs);
	d = opendir(root);
	if (!d)
		return errno == ENOENT
			   ? 0
			   : nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot read", root);
	while (rc == 0 && (de = readdir(d))) {
		unsigned long long node;

		if (huge_name_number(de->d_name, "node", "", &node) < 0 || node > 65535)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name);
		rc = huge_read_node(dir, (unsigned)node, inv, err);
	}
	closedir(d);
	return rc;
}

/* --- the plan ----------------------------------------------------------- */

struct huge_search {
	uint64_t size[HUGE_MAX_SIZES], avail[HUGE_MAX_SIZES], count[HUGE_MAX_SIZES];
	unsigned k;
	uint64_t max_regions;
	uint64_t best[HUGE_MAX_SIZES], best_total, best_regions;
	int found;
};

/* Sizes on `node`, largest first, their free pages summed. */
static void huge_node_sizes(const struct huge_inventory *inv, unsigned node, struct huge_search *s)
{
	s->k = 0;
	for (unsigned i = 0; i < inv->n; i++) {
		const struct huge_pool *p = &inv->pools[i];
		unsigned j;

		/* The driver takes only multiples of 2 MiB. */
		if (p->node != node || p->page_size % HUGE_PAGE_MIN || !p->free_pages)
			continue;
		for (j = 0; j < s->k && s->size[j] != p->page_size; j++)
			;
		if (j < s->k) {
			s->avail[j] += p->free_pages;
			continue;
		}
		if (s->k == HUGE_MAX_SIZES)
			continue;
		for (j = s->k++; j > 0 && s->size[j - 1] < p->page_size; j--) {
			s->size[j] = s->size[j - 1];
			s->avail[j] = s->avail[j - 1];
		}
		s->size[j] = p->page_size;
		s->avail[j] = p->free_pages;
	}
}

/* For each size, as many pages as fit under what is left, or one more (an
 * overshoot that may save regions): 2^k combinations, k <= 9. Ranked by
 * waste, then regions. */
static void huge_search(struct huge_search *s, unsigned i, uint64_t left, uint64_t regions)
{
	uint64_t fit, choice[2];

	if (s->max_regions && regions > s->max_regions)
		return;
	if (left == 0 || i == s->k) {
		uint64_t total = 0; /* the request plus the waste */

		if (left)
			return;
		for (unsigned j = 0; j < s->k; j++)
			total += s->count[j] * s->size[j];
		if (s->found && (total > s->best_total ||
				 (total == s->best_total && regions >= s->best_regions)))
			return;
		memcpy(s->best, s->count, sizeof(s->best));
		s->best_total = total;
		s->best_regions = regions;
		s->found = 1;
		return;
	}
	fit = left / s->size[i];
	choice[0] = fit < s->avail[i] ? fit : s->avail[i];
	choice[1] = fit + 1 <= s->avail[i] && left % s->size[i] ? fit + 1 : choice[0];
	for (int c = 1; c >= 0; c--) {
		uint64_t got = choice[c] * s->size[i];

		if (c == 0 && choice[0] == choice[1])
			continue;
		s->count[i] = choice[c];
		huge_search(s, i + 1, got >= left ? 0 : left - got, regions + choice[c]);
		s->count[i] = 0;
	}
}

static void huge_size_text(uint64_t size, char *buf, size_t len)
{
	if (size >= (1ull << 30) && size % (1ull << 30) == 0)
		snprintf(buf, len, "%llu GiB", (unsigned long long)(size >> 30));
	else
		snprintf(buf, len, "%llu MiB", (unsigned long long)(size >> 20));
}

/* What every node has free: "node 0: 100 x 2 MiB, 1 x 1 GiB; node 1: none". */
static void huge_inventory_text(const struct huge_inventory *inv, char *buf, size_t len)
{
	size_t used = 0;
	int any = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < inv->n && used < len; i++) {
		const struct huge_pool *p = &inv->pools[i];
		char sz[32];

		if (!p->free_pages)
			continue;
		huge_size_text(p->page_size, sz, sizeof(sz));
		used += (size_t)snprintf(buf + used, len - used, "%snode %u: %llu x %s",
					 any ? ", " : "", p->node,
					 (unsigned long long)p->free_pages, sz);
		any = 1;
	}
	if (!any)
		snprintf(buf, len, "no free hugepages on any node");
}

int huge_plan_make(const struct huge_inventory *inv, unsigned node, uint64_t bytes,
		   uint64_t max_regions, struct huge_plan *plan, struct nectl_err *err)
{
	static struct huge_search s;
	uint64_t want = (bytes + HUGE_PAGE_MIN - 1) & ~(HUGE_PAGE_MIN - 1);
	char have[512];

	if (!bytes || want < bytes)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "enclave memory of %llu bytes",
				     (unsigned long long)bytes);
	memset(&s, 0, sizeof(s));
	s.max_regions = max_regions;
	huge_node_sizes(inv, node, &s);
	huge_search(&s, 0, want, 0);
	if (!s.found) {
		huge_inventory_text(inv, have, sizeof(have));
		return nectl_err_set(
		    err, NECTL_ERR_MEM_AVAILABLE,
		    "not enough hugepages for %llu MiB on NUMA node %u (the CPU pool's)%s: free "
		    "hugepages: %s; reserve them on that node (nitro-enclaves-allocator's "
		    "memory_mib, or /sys/devices/system/node/node%u/hugepages/*/nr_hugepages)",
		    (unsigned long long)(want >> 20), node,
		    max_regions ? " within the enclave's region limit" : "", have, node);
	}
	memset(plan, 0, sizeof(*plan));
	plan->node = node;
	for (unsigned i = 0; i < s.k; i++) {
		if (!s.best[i])
			continue;
		plan->items[plan->n].page_size = s.size[i];
		plan->items[plan->n].count = s.best[i];
		plan->n++;
		plan->bytes += s.best[i] * s.size[i];
		plan->regions += s.best[i];
	}
	return 0;
}

void huge_plan_text(const struct huge_plan *plan, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < plan->n && used < len; i++) {
		char sz[32];

		huge_size_text(plan->items[i].page_size, sz, sizeof(sz));
		used += (size_t)snprintf(buf + used, len - used, "%s%llu x %s", i ? " + " : "",
					 (unsigned long long)plan->items[i].count, sz);
	}
	if (used < len)
		snprintf(buf + used, len - used, " on node %u (%llu MiB)", plan->node,
			 (unsigned long long)(plan->bytes >> 20));
}
