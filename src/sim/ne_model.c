/* The NE driver's rules, in its order (nectl/sim.h). Numbers in comments
 * are the steps of linux-ne-and-nsm-drivers.md §4 and §6. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <linux/nitro_enclaves.h>

#include "nectl/nitro.h"
#include "nectl/sim.h"

#define MIB2		  (2ull << 20)
#define SIM_MAX_CPUS	  NE_CPUS_MAX
#define SIM_USER_VA_LIMIT 0x7ffffffff000ull
#define STATE_INIT	  0
#define STATE_RUNNING	  2
#define STATE_STOPPED	  0xffff

struct sim_ne {
	struct sim_topology t;
	sim_page_fn pages;
	void *ctx;
	int node;		   /* the pool's */
	unsigned threads_per_core; /* 0: no pool */
	unsigned nr_parent_vm_cores;
	uint8_t avail[SIM_MAX_CORES]; /* free threads of t.cores[i], a bit each */
	uint64_t next_uid;
	struct sim_enclave *list;
};

struct sim_enclave {
	struct sim_ne *d;
	struct sim_enclave *next;
	unsigned state;
	bool has_event;
	uint64_t slot_uid, cid;
	int node;
	uint8_t claimed[SIM_MAX_CORES]; /* threads of t.cores[i] moved to this enclave */
	uint8_t vcpu[SIM_MAX_CPUS];	/* vcpu_ids */
	unsigned nr_vcpus;
	struct {
		uintptr_t addr;
		uint64_t size;
	} reg[SIM_MAX_REGIONS];
	unsigned nreg;
	uint64_t chunks, mem_size;
};

void sim_topology_default(struct sim_topology *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < 4; i++)
		t->cores[i] =
		    (struct sim_core){.id = i, .node = 0, .nthreads = 2, .cpus = {i, i + 4}};
	t->ncores = 4;
	t->nr_cpu_ids = 8;
	t->max_mem_regions = 256;
}

struct sim_ne *sim_ne_new(const struct sim_topology *t, sim_page_fn pages, void *ctx)
{
	struct sim_ne *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->t = *t;
	d->pages = pages;
	d->ctx = ctx;
	/* Slot uids name enclaves (nitro-cli's enclave ID): unique across the
	 * models of every supervisor on this host, as the device's are. */
	if (getrandom(&d->next_uid, sizeof(d->next_uid), 0) != (ssize_t)sizeof(d->next_uid))
		d->next_uid = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	d->next_uid = (d->next_uid >> 1) | 1; /* never 0, never wraps to it */
	return d;
}

void sim_ne_free(struct sim_ne *d)
{
	while (d && d->list)
		sim_ne_release(d->list);
	free(d);
}

/* The core holding `cpu` and the thread's bit, or -1. */
static int sim_core_of(const struct sim_ne *d, unsigned cpu, unsigned *bit)
{
	for (unsigned i = 0; i < d->t.ncores; i++)
		for (unsigned j = 0; j < d->t.cores[i].nthreads; j++)
			if (d->t.cores[i].cpus[j] == cpu) {
				*bit = j;
				return (int)i;
			}
	return -1;
}

static void sim_pool_clear(struct sim_ne *d)
{
	memset(d->avail, 0, sizeof(d->avail));
	d->threads_per_core = 0;
	d->nr_parent_vm_cores = 0;
}

/* §6 step 4: every pooled CPU known (online), on one node, not CPU 0 or its
 * siblings, with all of its siblings. */
static int sim_pool_check(struct sim_ne *d, const int *ids, size_t n)
{
	unsigned zero_bit;
	int zero = sim_core_of(d, 0, &zero_bit), node = -1;

	if (n == 0)
		return EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned bit;
		int c = sim_core_of(d, (unsigned)ids[i], &bit);

		if (c < 0 || c == zero || d->t.cores[c].node < 0)
			return EINVAL;
		if (node >= 0 && d->t.cores[c].node != node)
			return EINVAL;
		node = d->t.cores[c].node;
		for (unsigned j = 0; j < d->t.cores[c].nthreads; j++) {
			bool in = false;

			for (size_t k = 0; k < n; k++)
				in |= ids[k] == (int)d->t.cores[c].cpus[j];
			if (!in)
				return EINVAL;
		}
	}
	d->node = node;
	return 0;
}

int sim_ne_set_pool(struct sim_ne *d, const char *cpulist)
{
	static int ids[SIM_MAX_CPUS];
	struct nectl_err err;
	size_t n;
	int rc;

	if (d->list)
		return EPERM;
	sim_pool_clear(d); /* before the new one is checked, as the driver does */
	if (ne_cpu_list_parse(cpulist, ids, SIM_MAX_CPUS, &n, &err) < 0)
		return EINVAL;
	rc = sim_pool_check(d, ids, n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		unsigned bit = 0;
		int c = sim_core_of(d, (unsigned)ids[i], &bit);

		d->threads_per_core = d->t.cores[c].nthreads;
		d->avail[c] |= (uint8_t)(1u << bit);
	}
	d->nr_parent_vm_cores = d->t.nr_cpu_ids / d->threads_per_core;
	for (unsigned i = 0; i < d->t.ncores; i++)
		if (d->avail[i] && d->t.cores[i].id >= d->nr_parent_vm_cores) {
			sim_pool_clear(d);
			return EINVAL;
		}
	return 0;
}

/* The lowest core id with free threads, or -1. */
static int sim_free_core(const struct sim_ne *d)
{
	int best = -1;

	for (unsigned i = 0; i < d->t.ncores; i++)
		if (d->avail[i] && (best < 0 || d->t.cores[i].id < d->t.cores[best].id))
			best = (int)i;
	return best;
}

int sim_ne_create_vm(struct sim_ne *d, struct sim_enclave **out, uint64_t *slot_uid)
{
	struct sim_enclave *e;

	if (sim_free_core(d) < 0) /* 4.1.1: nothing reserved, only asked */
		return NE_ERR_NO_CPUS_AVAIL_IN_POOL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return ENOMEM;
	e->d = d;
	e->node = d->node;
	e->slot_uid = d->next_uid++;
	e->next = d->list;
	d->list = e;
	*out = e;
	*slot_uid = e->slot_uid;
	return 0;
}

/* Moves every free thread of core c to the enclave (4.2.4b). */
static void sim_claim(struct sim_enclave *e, int c)
{
	e->claimed[c] |= e->d->avail[c];
	e->d->avail[c] = 0;
}

/* 4.2.4a then b: a free thread of a claimed core, else the lowest free core. */
static int sim_pick_vcpu(struct sim_enclave *e, uint32_t *vcpu)
{
	const struct sim_ne *d = e->d;
	int best = -1, c;

	for (unsigned i = 0; i < d->t.ncores; i++) {
		if (!e->claimed[i] || (best >= 0 && d->t.cores[i].id >= d->t.cores[best].id))
			continue;
		for (unsigned j = 0; j < d->t.cores[i].nthreads; j++)
			if ((e->claimed[i] >> j & 1) && !e->vcpu[d->t.cores[i].cpus[j]])
				best = (int)i;
	}
	c = best >= 0 ? best : sim_free_core(d);
	if (c < 0)
		return NE_ERR_NO_CPUS_AVAIL_IN_POOL;
	if (best < 0)
		sim_claim(e, c);
	for (unsigned j = 0; j < d->t.cores[c].nthreads; j++)
		if ((e->claimed[c] >> j & 1) && !e->vcpu[d->t.cores[c].cpus[j]]) {
			*vcpu = d->t.cores[c].cpus[j];
			return 0;
		}
	return NE_ERR_NO_CPUS_AVAIL_IN_POOL;
}

void sim_ne_hold_core(struct sim_ne *d, unsigned cpu)
{
	unsigned bit;
	int c = sim_core_of(d, cpu, &bit);

	if (c >= 0)
		d->avail[c] = 0;
}

int sim_ne_add_vcpu(struct sim_enclave *e, uint32_t *vcpu)
{
	const struct sim_ne *d = e->d;
	unsigned bit = 0;
	int c, rc;

	if (e->state != STATE_INIT)
		return NE_ERR_NOT_IN_INIT_STATE;
	if (*vcpu >= d->nr_parent_vm_cores * d->threads_per_core || *vcpu >= SIM_MAX_CPUS)
		return NE_ERR_INVALID_VCPU;
	if (*vcpu == 0) {
		rc = sim_pick_vcpu(e, vcpu);
		if (rc)
			return rc;
	} else {
		if (e->vcpu[*vcpu])
			return NE_ERR_VCPU_ALREADY_USED;
		c = sim_core_of(d, *vcpu, &bit);
		if (c < 0 || !((e->claimed[c] | d->avail[c]) >> bit & 1))
			return NE_ERR_VCPU_NOT_IN_CPU_POOL;
		if (!(e->claimed[c] >> bit & 1)) {
			if (d->t.cores[c].id >= d->nr_parent_vm_cores)
				return NE_ERR_VCPU_INVALID_CPU_CORE;
			sim_claim(e, c);
		}
	}
	e->vcpu[*vcpu] = 1;
	e->nr_vcpus++;
	return 0;
}

int sim_ne_image_load_info(struct sim_enclave *e, uint64_t flags, uint64_t *offset)
{
	/* 4.3: here the state comes before the flags. */
	if (e->state != STATE_INIT)
		return NE_ERR_NOT_IN_INIT_STATE;
	if (flags != NE_EIF_IMAGE)
		return NE_ERR_INVALID_FLAG_VALUE;
	*offset = SIM_IMAGE_LOAD_OFFSET;
	return 0;
}

/* 4.4.4: the user region, before any page is looked at. */
static int sim_region_check(const struct sim_enclave *e, uint64_t size, uintptr_t addr)
{
	if (size & (MIB2 - 1))
		return NE_ERR_INVALID_MEM_REGION_SIZE;
	if (addr & (MIB2 - 1))
		return NE_ERR_UNALIGNED_MEM_REGION_ADDR;
	if ((uint64_t)addr + size < (uint64_t)addr || (uint64_t)addr + size > SIM_USER_VA_LIMIT)
		return NE_ERR_INVALID_MEM_REGION_ADDR;
	for (unsigned i = 0; i < e->nreg; i++)
		if (addr < e->reg[i].addr + e->reg[i].size && e->reg[i].addr < addr + size)
			return NE_ERR_MEM_REGION_ALREADY_USED;
	return 0;
}

int sim_ne_set_memory(struct sim_enclave *e, uint64_t flags, uint64_t size, uintptr_t addr)
{
	uint64_t off = 0, pages = 0, chunks = 0, donated = 0;
	int rc;

	if (flags >= 1) /* 4.4.2: here the flags come first */
		return NE_ERR_INVALID_FLAG_VALUE;
	if (e->state != STATE_INIT)
		return NE_ERR_NOT_IN_INIT_STATE;
	rc = sim_region_check(e, size, addr);
	if (rc)
		return rc;
	while (off < size || size == 0) {
		struct sim_page pg;

		if (pages == size / MIB2) /* also size 0: ENOMEM, a quirk */
			return ENOMEM;
		rc = e->d->pages(e->d->ctx, addr, addr + off, &pg);
		if (rc)
			return rc;
		if (!pg.huge)
			return NE_ERR_MEM_NOT_HUGE_PAGE;
		if (pg.size == 0 || pg.size % MIB2)
			return NE_ERR_INVALID_PAGE_SIZE;
		if (pg.node != e->node)
			return NE_ERR_MEM_DIFFERENT_NUMA_NODE;
		/* Without physical addresses each page is a chunk: the worst case. */
		chunks++;
		donated += pg.size;
		off += pg.size;
		pages++;
	}
	if (e->chunks + chunks > e->d->t.max_mem_regions)
		return NE_ERR_MEM_MAX_REGIONS;
	if (e->nreg == SIM_MAX_REGIONS)
		return ENOMEM;
	e->reg[e->nreg].addr = addr;
	e->reg[e->nreg].size = size;
	e->nreg++;
	e->chunks += chunks;
	e->mem_size += donated;
	return 0;
}

static bool sim_cid_taken(const struct sim_ne *d, uint64_t cid)
{
	for (const struct sim_enclave *o = d->list; o; o = o->next)
		if (o->state == STATE_RUNNING && o->cid == cid)
			return true;
	return false;
}

/* 4.5.8: every thread of every claimed core added. */
static bool sim_full_cores(const struct sim_enclave *e)
{
	const struct sim_ne *d = e->d;

	for (unsigned i = 0; i < d->t.ncores; i++)
		for (unsigned j = 0; j < d->t.cores[i].nthreads; j++)
			if ((e->claimed[i] >> j & 1) && !e->vcpu[d->t.cores[i].cpus[j]])
				return false;
	return true;
}

int sim_ne_start(struct sim_enclave *e, uint64_t flags, uint64_t *cid)
{
	if (flags >= 2)
		return NE_ERR_INVALID_FLAG_VALUE;
	if ((*cid >= 1 && *cid <= 2) || *cid == 0xffffffffull || *cid == 3 || *cid > 0xffffffffull)
		return NE_ERR_INVALID_ENCLAVE_CID;
	if (e->state != STATE_INIT)
		return NE_ERR_NOT_IN_INIT_STATE;
	if (e->chunks == 0)
		return NE_ERR_NO_MEM_REGIONS_ADDED;
	if (e->mem_size < SIM_MIN_MEMORY)
		return NE_ERR_ENCLAVE_MEM_MIN_SIZE;
	if (e->nr_vcpus == 0)
		return NE_ERR_NO_VCPUS_ADDED;
	if (!sim_full_cores(e))
		return NE_ERR_FULL_CORES_NOT_USED;
	/* The hypervisor's side: its answer to a CID in use is unverified;
	 * EBUSY here. Auto CIDs start at 16, as AWS documents. */
	if (*cid == 0)
		for (*cid = SIM_FIRST_AUTO_CID; sim_cid_taken(e->d, *cid); (*cid)++)
			;
	else if (sim_cid_taken(e->d, *cid))
		return EBUSY;
	e->cid = *cid;
	e->state = STATE_RUNNING;
	return 0;
}

void sim_ne_stopped(struct sim_enclave *e)
{
	if (e->state == STATE_RUNNING) {
		e->state = STATE_STOPPED;
		e->has_event = true;
	}
}

bool sim_ne_hup(const struct sim_enclave *e)
{
	return e->has_event;
}

uint64_t sim_ne_memory(const struct sim_enclave *e)
{
	return e->mem_size;
}

void sim_ne_release(struct sim_enclave *e)
{
	struct sim_ne *d = e->d;

	for (struct sim_enclave **p = &d->list; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	/* 5.3.5: the cores go back to the pool (the CPUs stay offline). */
	for (unsigned i = 0; i < d->t.ncores; i++)
		d->avail[i] |= e->claimed[i];
	free(e);
}
