/* Which parent instance the NE driver model stands for: NECTL_NE_DEVICE=sim
 * (a c6i.2xlarge-like parent), or sim:FILE with a JSON topology:
 *   {"Cores": 4, "ThreadsPerCore": 2, "Nodes": 1, "Pool": "1-3,5-7",
 *    "MaxRegions": 256, "Hypervisor": "kvm"}
 * "Hypervisor": "loopback" runs no machine: the enclave is whoever answers
 * over the kernel's vsock loopback (CID 1), so the native parent side
 * (AF_VSOCK heartbeat, console, forwards) is tested end to end where the
 * kernel has vsock_loopback and no Nitro hypervisor exists.
 * Core i's threads are CPUs i, i + Cores, ... (as on EC2's Intel parents);
 * cores are split evenly over the nodes in order. Every key is optional
 * (the defaults above); Pool defaults to every CPU but those of CPU 0's
 * core, as the NE driver's documentation advises. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "nectl/sim.h"

static int sim_config_uint(json_t *j, const char *key, unsigned lo, unsigned hi, unsigned *out,
			   const char *path, struct nectl_err *err)
{
	json_t *v = json_object_get(j, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return nectl_err_set(err, NECTL_ERR_SERDE,
				     "%s: \"%s\" must be a number from %u to %u", path, key, lo,
				     hi);
	*out = (unsigned)json_integer_value(v);
	return 0;
}

static void sim_config_build(struct sim_topology *t, unsigned cores, unsigned threads,
			     unsigned nodes)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < cores; i++) {
		struct sim_core *c = &t->cores[i];

		c->id = i;
		c->node = (int)(i * nodes / cores);
		c->nthreads = threads;
		for (unsigned k = 0; k < threads; k++)
			c->cpus[k] = i + k * cores;
	}
	t->ncores = cores;
	t->nr_cpu_ids = cores * threads;
	t->max_mem_regions = 256;
}

/* Every CPU but CPU 0's core's, as a list ("1-3,5-7"). */
static void sim_config_pool(const struct sim_topology *t, char *pool, size_t len)
{
	size_t n = 0;

	pool[0] = 0;
	for (unsigned k = 0; k < t->cores[0].nthreads; k++) {
		unsigned lo = t->cores[0].cpus[k] + 1, hi = lo + t->ncores - 2;

		if (t->ncores < 2 || n >= len)
			continue;
		n += (size_t)snprintf(pool + n, len - n, "%s%u-%u", n ? "," : "", lo, hi);
	}
}

static int sim_config_hv(json_t *j, bool *loopback, const char *path, struct nectl_err *err)
{
	json_t *v = json_object_get(j, "Hypervisor");

	*loopback = false;
	if (!v || (json_is_string(v) && strcmp(json_string_value(v), "kvm") == 0))
		return 0;
	if (json_is_string(v) && strcmp(json_string_value(v), "loopback") == 0) {
		*loopback = true;
		return 0;
	}
	return nectl_err_set(err, NECTL_ERR_SERDE,
			     "%s: \"Hypervisor\" must be \"kvm\" or \"loopback\"", path);
}

static int sim_config_file(const char *path, struct sim_topology *t, char *pool, size_t len,
			   bool *loopback, struct nectl_err *err)
{
	unsigned cores = 4, threads = 2, nodes = 1, regions = 256;
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je), *p;
	int rc = -1;

	if (!j || !json_is_object(j)) {
		nectl_err_set(err, NECTL_ERR_SERDE, "%s: not a JSON object (%s)", path,
			      j ? "wrong type" : je.text);
		goto out;
	}
	if (sim_config_uint(j, "Cores", 1, SIM_MAX_CORES, &cores, path, err) < 0 ||
	    sim_config_uint(j, "ThreadsPerCore", 1, SIM_MAX_THREADS, &threads, path, err) < 0 ||
	    sim_config_uint(j, "Nodes", 1, cores, &nodes, path, err) < 0 ||
	    sim_config_uint(j, "MaxRegions", 1, 1u << 20, &regions, path, err) < 0 ||
	    sim_config_hv(j, loopback, path, err) < 0)
		goto out;
	sim_config_build(t, cores, threads, nodes);
	t->max_mem_regions = regions;
	sim_config_pool(t, pool, len);
	p = json_object_get(j, "Pool");
	if (p && (!json_is_string(p) || json_string_length(p) >= len)) {
		nectl_err_set(err, NECTL_ERR_SERDE, "%s: \"Pool\" must be a CPU list", path);
		goto out;
	}
	if (p)
		snprintf(pool, len, "%s", json_string_value(p));
	rc = 0;
out:
	json_decref(j);
	return rc;
}

int sim_topology_load(const char *spec, struct sim_topology *t, char *pool, size_t len,
		      bool *loopback, struct nectl_err *err)
{
	*loopback = false;
	if (strcmp(spec, "sim") == 0) {
		sim_topology_default(t);
		sim_config_pool(t, pool, len);
		return 0;
	}
	if (strncmp(spec, "sim:", 4) == 0 && spec[4])
		return sim_config_file(spec + 4, t, pool, len, loopback, err);
	return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
			     "NECTL_NE_DEVICE=%s: want sim, sim:FILE.json or a device path", spec);
}
