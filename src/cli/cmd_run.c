/* run-enclave: nitro-cli's launch command (options, --config, checks, JSON)
 * over the enclave module. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "nectl/ne_dev.h"
#include "nectl/enclave.h"

static int run_u64(const char *opt, const char *text, uint64_t max, uint64_t *out,
		   struct nectl_err *err)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	if (!*text || *text == '-' || *end || errno || *out > max)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "The parameter `%s` is not a valid integer (`%s`)", opt, text);
	return 0;
}

/* nitro-cli's --memory: MiB, or with an M, G or T suffix. Refused when
 * its bytes do not fit in 64 bits (16777217T would wrap to 1 TiB). */
static int run_memory(const char *text, uint64_t *mib, struct nectl_err *err)
{
	char num[32];
	size_t n = strlen(text);
	uint64_t mul = 1;

	if (n && strchr("MmGgTt", text[n - 1])) {
		mul = strchr("Mm", text[n - 1])	  ? 1
		      : strchr("Gg", text[n - 1]) ? 1024
						  : 1024 * 1024;
		n--;
	}
	if (n == 0 || n >= sizeof(num))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "Invalid memory value `%s`", text);
	memcpy(num, text, n);
	num[n] = 0;
	if (run_u64("memory", num, UINT64_MAX, mib, err) < 0)
		return -1;
	if (*mib > ENCLAVE_MAX_MEMORY_MIB / mul)
		return nectl_err_set(
		    err, NECTL_ERR_INVALID_ARG,
		    "Invalid memory value `%s`: more than %llu MiB cannot be addressed", text,
		    (unsigned long long)ENCLAVE_MAX_MEMORY_MIB);
	*mib *= mul;
	return 0;
}

static int run_cpu_ids(const struct args *a, int *ids, unsigned *n, struct nectl_err *err)
{
	const char *vals[ENCLAVE_MAX_CPUS];
	size_t nv = args_all(a, "cpu-ids", vals, ENCLAVE_MAX_CPUS);

	*n = 0;
	for (size_t i = 0; i < nv; i++) {
		char buf[256], *save = NULL;

		snprintf(buf, sizeof(buf), "%s", vals[i]);
		for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
			uint64_t v;

			if (*n == ENCLAVE_MAX_CPUS)
				return nectl_err_set(err, NECTL_ERR_CPU_COUNT,
						     "at most %d CPUs per enclave",
						     ENCLAVE_MAX_CPUS);
			if (run_u64("cpu-ids", t, 0xffffffffu, &v, err) < 0)
				return -1;
			ids[(*n)++] = (int)v;
		}
	}
	return 0;
}

static int run_from_args(const struct args *a, struct enclave_opts *o, int *ids,
			 struct nectl_err *err)
{
	const char *v;
	uint64_t u;

	if (args_require(a, "eif-path", &o->eif_path, err) < 0 ||
	    args_require(a, "memory", &v, err) < 0 || run_memory(v, &o->memory_mib, err) < 0 ||
	    args_conflict(a, "cpu-count", "cpu-ids", err) < 0)
		return -1;
	if ((v = args_get(a, "cpu-count"))) {
		if (run_u64("cpu-count", v, 0xffffffffu, &u, err) < 0)
			return -1;
		o->cpu_count = (unsigned)u;
	} else if (args_has(a, "cpu-ids")) {
		if (run_cpu_ids(a, ids, &o->ncpu_ids, err) < 0)
			return -1;
		o->cpu_ids = ids;
	} else {
		return nectl_err_set(err, NECTL_ERR_MISSING_ARG,
				     "Missing mandatory argument. User did not provide the "
				     "`cpu-count` or `cpu-ids` argument.");
	}
	if ((v = args_get(a, "enclave-cid")) &&
	    (run_u64("enclave-cid", v, UINT64_MAX, &o->cid, err) < 0 ||
	     enclave_check_cid(o->cid, err) < 0))
		return -1;
	o->debug = args_has(a, "debug-mode") || args_has(a, "attach-console");
	o->name = args_get(a, "enclave-name");
	return 0;
}

static const char *run_json_str(json_t *cfg, const char *key, struct nectl_err *err)
{
	json_t *v = json_object_get(cfg, key);

	if (v && !json_is_string(v))
		nectl_err_set(err, NECTL_ERR_SERDE, "--config: `%s` must be a string", key);
	return json_string_value(v);
}

static int run_json_strings(json_t *cfg, const char *key, const char **out, size_t *n,
			    struct nectl_err *err)
{
	json_t *arr = json_object_get(cfg, key), *v;
	size_t i;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return nectl_err_set(err, NECTL_ERR_SERDE, "--config: `%s` must be an array", key);
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || *n == ENCLAVE_MAX_FORWARDS)
			return nectl_err_set(err, NECTL_ERR_SERDE,
					     "--config: `%s` must hold at most %d strings", key,
					     ENCLAVE_MAX_FORWARDS);
		out[(*n)++] = json_string_value(v);
	}
	return 0;
}

static int run_json_bool(json_t *cfg, const char *key, bool *out, struct nectl_err *err)
{
	json_t *v = json_object_get(cfg, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return nectl_err_set(err, NECTL_ERR_SERDE, "--config: `%s` must be true or false",
				     key);
	*out = json_is_true(v);
	return 0;
}

static int run_json_uint(json_t *cfg, const char *key, uint64_t *out, struct nectl_err *err)
{
	json_t *v = json_object_get(cfg, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return nectl_err_set(err, NECTL_ERR_SERDE,
				     "--config: `%s` must be a non-negative integer", key);
	*out = (uint64_t)json_integer_value(v);
	return 1;
}

/* A forwarded-connection cap: 1..ENCLAVE_MAX_FORWARD_CONNS. */
static int run_json_cap(json_t *cfg, const char *key, unsigned *out, struct nectl_err *err)
{
	uint64_t v = 0;
	int r = run_json_uint(cfg, key, &v, err);

	if (r <= 0)
		return r;
	if (v < 1 || v > ENCLAVE_MAX_FORWARD_CONNS)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "--config: `%s` must be in 1..%d",
				     key, ENCLAVE_MAX_FORWARD_CONNS);
	*out = (unsigned)v;
	return 0;
}

/* nitro-cli's --config keys (unknown keys ignored), plus forward_to_host and
 * forward_into_enclave arrays, the forward_max_conns(_total) caps and the
 * machine_acpi boolean. The config owns
 * the strings: *cfg_out lives as long as o. */
static int run_from_config(const char *path, struct enclave_opts *o, int *ids, json_t **cfg_out,
			   const char **to_host, const char **into, struct nectl_err *err)
{
	json_error_t jerr;
	json_t *cfg = json_load_file(path, 0, &jerr), *v;
	uint64_t u = 0;
	size_t i;

	if (!cfg && access(path, R_OK) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno,
				     "File: '%s', failing operation: 'Open'", path);
	if (!cfg || !json_is_object(cfg)) {
		json_decref(cfg);
		return nectl_err_set(err, NECTL_ERR_SERDE, "--config %s: invalid JSON: %s", path,
				     cfg ? "not an object" : jerr.text);
	}
	*cfg_out = cfg;
	err->kind = NECTL_OK;
	o->eif_path = run_json_str(cfg, "eif_path", err);
	o->name = run_json_str(cfg, "enclave_name", err);
	if (err->kind)
		return -1;
	if (!o->eif_path || run_json_uint(cfg, "memory_mib", &o->memory_mib, err) == 0)
		return nectl_err_set(err, NECTL_ERR_MISSING_ARG,
				     "--config: `eif_path` and `memory_mib` are required");
	if (json_object_get(cfg, "cpu_count") && json_object_get(cfg, "cpu_ids"))
		return nectl_err_set(err, NECTL_ERR_CONFLICT_ARG,
				     "--config: `cpu_count` and `cpu_ids` conflict");
	if (run_json_uint(cfg, "cpu_count", &u, err) < 0 ||
	    run_json_uint(cfg, "enclave_cid", &o->cid, err) < 0)
		return -1;
	o->cpu_count = (unsigned)u;
	json_array_foreach(json_object_get(cfg, "cpu_ids"), i, v)
	{
		if (!json_is_integer(v) || i == ENCLAVE_MAX_CPUS)
			return nectl_err_set(err, NECTL_ERR_SERDE, "--config: bad `cpu_ids`");
		ids[o->ncpu_ids++] = (int)json_integer_value(v);
	}
	if (o->ncpu_ids)
		o->cpu_ids = ids;
	else if (!o->cpu_count)
		return nectl_err_set(err, NECTL_ERR_MISSING_ARG,
				     "--config: one of `cpu_count` or `cpu_ids` is required");
	o->debug = json_is_true(json_object_get(cfg, "debug_mode")) ||
		   json_is_true(json_object_get(cfg, "attach_console"));
	if (run_json_strings(cfg, "forward_to_host", to_host, &o->nto_host, err) < 0 ||
	    run_json_strings(cfg, "forward_into_enclave", into, &o->ninto_enclave, err) < 0 ||
	    run_json_bool(cfg, "machine_acpi", &o->machine_acpi, err) < 0 ||
	    run_json_cap(cfg, "forward_max_conns", &o->forward_max_conns, err) < 0 ||
	    run_json_cap(cfg, "forward_max_conns_total", &o->forward_max_conns_total, err) < 0)
		return -1;
	o->to_host = to_host;
	o->into_enclave = into;
	return 0;
}

/* --forward-max-conns(-total) N: 1..ENCLAVE_MAX_FORWARD_CONNS. */
static int run_cap(const struct args *a, const char *opt, unsigned *out, struct nectl_err *err)
{
	const char *v = args_get(a, opt);
	uint64_t u;

	if (!v)
		return 0;
	if (run_u64(opt, v, ENCLAVE_MAX_FORWARD_CONNS, &u, err) < 0 || u == 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "The parameter `%s` must be a number in 1..%d (`%s`)", opt,
				     ENCLAVE_MAX_FORWARD_CONNS, v);
	*out = (unsigned)u;
	return 0;
}

static int run_enclave_run(const struct args *a, struct nectl_err *err)
{
	struct enclave_opts o = {0};
	struct enclave_launched l;
	const char *to_host[ENCLAVE_MAX_FORWARDS], *into[ENCLAVE_MAX_FORWARDS], *v;
	int ids[ENCLAVE_MAX_CPUS];
	json_t *cfg = NULL, *rec = NULL;
	const char *id;
	bool attach;
	char *cpus;
	uint64_t u;
	int rc = -1;

	/* Without --emulate: the NE device, as nitro-cli; NECTL_NE_DEVICE
	 * names another (sim, sim:FILE.json: the driver model). */
	if (!args_has(a, "emulate")) {
		v = getenv("NECTL_NE_DEVICE");
		o.ne_device = v && *v ? v : NE_DEV_PATH;
		if (args_has(a, "machine-acpi"))
			return nectl_err_set(err, NECTL_ERR_CONFLICT_ARG,
					     "--machine-acpi is for --emulate only: Nitro's "
					     "machine has no ACPI tables");
	}
	if ((v = args_get(a, "config"))) {
		static const char *const solo[] = {"eif-path",	  "memory",	 "cpu-count",
						   "cpu-ids",	  "enclave-cid", "debug-mode",
						   "enclave-name"};

		for (size_t i = 0; i < sizeof(solo) / sizeof(solo[0]); i++)
			if (args_conflict(a, "config", solo[i], err) < 0)
				return -1;
		if (run_from_config(v, &o, ids, &cfg, to_host, into, err) < 0)
			goto out;
	} else if (run_from_args(a, &o, ids, err) < 0) {
		goto out;
	}
	o.nto_host +=
	    args_all(a, "forward-to-host", to_host + o.nto_host, ENCLAVE_MAX_FORWARDS - o.nto_host);
	o.ninto_enclave += args_all(a, "forward-into-enclave", into + o.ninto_enclave,
				    ENCLAVE_MAX_FORWARDS - o.ninto_enclave);
	o.to_host = to_host;
	o.into_enclave = into;
	if (args_has(a, "machine-acpi"))
		o.machine_acpi = true;
	if (run_cap(a, "forward-max-conns", &o.forward_max_conns, err) < 0 ||
	    run_cap(a, "forward-max-conns-total", &o.forward_max_conns_total, err) < 0)
		goto out;
	if ((v = args_get(a, "heartbeat-timeout"))) {
		if (run_u64("heartbeat-timeout", v, 86400, &u, err) < 0)
			goto out;
		o.heartbeat_timeout_s = (unsigned)(u ? u : 1);
	}
	fprintf(stderr, "Start allocating memory...\n");
	if (enclave_launch(&o, &l, err) < 0)
		goto out;
	cpus = json_dumps(json_object_get(l.run, "CPUIDs"), JSON_COMPACT);
	fprintf(stderr,
		"Started enclave with enclave-cid: %" JSON_INTEGER_FORMAT
		", memory: %" JSON_INTEGER_FORMAT " MiB, cpu-ids: %s\n",
		json_integer_value(json_object_get(l.run, "EnclaveCID")),
		json_integer_value(json_object_get(l.run, "MemoryMiB")), cpus ? cpus : "[]");
	free(cpus);
	if (args_has(a, "verbose"))
		fprintf(stderr,
			"Enclave memory: %s; loaded in %.1f ms, kernel entry at %.1f ms, heartbeat "
			"at %.1f ms\n",
			l.memory_kind, l.load_ms, l.entry_ms, l.heartbeat_ms);
	id = json_string_value(json_object_get(l.run, "EnclaveID"));
	attach =
	    args_has(a, "attach-console") || json_is_true(json_object_get(cfg, "attach_console"));
	/* The whole record (flags and all), before the enclave may end. */
	if (attach && enclave_find(id, NULL, &rec, err) < 0) {
		json_decref(l.run);
		goto out;
	}
	if (cli_print_json(l.run, err) < 0)
		goto out;
	rc = attach ? cli_console_stream(rec, 0, err) : 0;
out:
	json_decref(rec);
	json_decref(cfg);
	return rc;
}

static const struct opt_spec run_enclave_opts[] = {{"eif-path", true, false, NULL},
						   {"memory", true, false, NULL},
						   {"cpu-count", true, false, NULL},
						   {"cpu-ids", true, true, NULL},
						   {"enclave-cid", true, false, NULL},
						   {"debug-mode", false, false, NULL},
						   {"attach-console", false, false, NULL},
						   {"enclave-name", true, false, NULL},
						   {"config", true, false, NULL},
						   {"emulate", false, false, NULL},
						   {"forward-to-host", true, true, NULL},
						   {"forward-into-enclave", true, true, NULL},
						   {"heartbeat-timeout", true, false, NULL},
						   {"forward-max-conns", true, false, NULL},
						   {"forward-max-conns-total", true, false, NULL},
						   {"machine-acpi", false, false, NULL},
						   {"verbose", false, false, NULL},
						   {0}};

const struct cli_cmd cli_cmd_run_enclave = {
    .name = "run-enclave",
    .summary = "Start an enclave from an EIF (on /dev/nitro_enclaves; --emulate: on nectl's "
	       "KVM hypervisor)",
    .help = "Usage: nectl run-enclave [--emulate] --eif-path FILE --memory N[M|G|T]\n"
	    "           (--cpu-count N | --cpu-ids ID[,ID...]) [--enclave-cid CID]\n"
	    "           [--debug-mode] [--attach-console] [--enclave-name NAME]\n"
	    "           [--forward-to-host PORT=unix:PATH | PORT=tcp:HOST:HOSTPORT]...\n"
	    "           [--forward-into-enclave tcp:HOST:LPORT=PORT | unix:PATH=PORT]...\n"
	    "           [--forward-max-conns N] [--forward-max-conns-total N]\n"
	    "           [--heartbeat-timeout S] [--machine-acpi] [--verbose]\n"
	    "       nectl run-enclave [--emulate] --config FILE.json [--forward-...]\n"
	    "\n"
	    "Without --emulate the enclave goes to the NE device, /dev/nitro_enclaves on a\n"
	    "Nitro parent instance (E19 without it), through the same launch sequence:\n"
	    "hugepages planned per size and NUMA node, the EIF written once at the image\n"
	    "load offset, full cores from the NE CPU pool. NECTL_NE_DEVICE=sim runs it on\n"
	    "nectl's model of the NE driver instead (a 4-core, 2-thread parent, pool\n"
	    "1-3,5-7; sim:FILE.json gives another: docs/native.md), which boots the EIF\n"
	    "on nectl's hypervisor over the donated memory (describe: \"Mode\": \"simulated\").\n"
	    "  NECTL_NE_DEVICE=sim nectl run-enclave --eif-path hello.eif --memory 256 \\\n"
	    "      --cpu-count 2 --debug-mode\n"
	    "\n"
	    "Starts a supervisor process that holds the enclave (it outlives this command),\n"
	    "boots the unmodified EIF on nectl's KVM hypervisor (the EIF is written into\n"
	    "enclave memory at 8 MiB and booted from there, with virtio-vsock at 0xd0000000\n"
	    "and the parent at CID 3), waits for the enclave's boot heartbeat, and prints\n"
	    "nitro-cli's JSON. Checks as nitro-cli: the EIF parses and its CRC matches\n"
	    "(E35), memory >= 4x the EIF size (E26) and addressable (E03), CIDs\n"
	    "(0 = auto from 16; 1-3 and >= 2^32-1 refused), CPUs (E20/E21/E22); a signed\n"
	    "EIF must verify (E59); no heartbeat within --heartbeat-timeout (default as\n"
	    "nitro-cli, at least 180 s) is E36 and the enclave is torn down. Names: the\n"
	    "EIF's file name without .eif; a taken name gets _1, _2, ...\n"
	    "\n"
	    "The machine is Nitro's: its devices announced by virtio_mmio.device= entries\n"
	    "appended to the EIF's cmdline (virtio_mmio.device=4K@0xd0000000:5 for vsock),\n"
	    "CPUs and interrupt controllers in an MP table, no ACPI. So an image boots here\n"
	    "exactly when it would on Nitro; its kernel needs\n"
	    "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES (`nectl kernel build`, AWS's blobs; Debian's\n"
	    "kernels lack it: E36, saying so). --machine-acpi adds ACPI tables (a MADT, a\n"
	    "DSDT describing the devices, the S5 power-off) for debugging kernels that need\n"
	    "them; an image that needs them will not boot on Nitro. describe-enclaves shows\n"
	    "\"Machine\": \"nitro\" or \"nitro+acpi\".\n"
	    "\n"
	    "--cpu-ids pins the vCPUs to those host CPUs (comma-separated or repeated).\n"
	    "--forward-to-host: a guest connection to CID 3 port PORT is connected to the\n"
	    "Unix socket or TCP address; other ports are refused (RST).\n"
	    "--forward-into-enclave: nectl listens on the address and connects each client\n"
	    "to the enclave's vsock port PORT.\n"
	    "--forward-max-conns N (default 512) and --forward-max-conns-total N (default\n"
	    "1024, also the most for either): forwarded connections open at once per rule\n"
	    "and for the whole enclave; one more is refused (the guest's gets RST, a host\n"
	    "client is accepted and closed at once). In --config: \"forward_to_host\" and\n"
	    "\"forward_into_enclave\" arrays of the same strings, \"forward_max_conns\",\n"
	    "\"forward_max_conns_total\" and \"machine_acpi\" (true or false), next to\n"
	    "nitro-cli's keys (eif_path, memory_mib, cpu_count | cpu_ids, enclave_cid,\n"
	    "debug_mode, attach_console, enclave_name).\n"
	    "--verbose: memory backing (hugepages when reserved, else anonymous memory)\n"
	    "and phase timings (load, kernel entry, heartbeat) on stderr.\n"
	    "\n"
	    "Example:\n"
	    "  nectl run-enclave --emulate --eif-path hello.eif --memory 512 --cpu-count 2 \\\n"
	    "      --debug-mode --forward-into-enclave tcp:127.0.0.1:5000=5000\n",
    .opts = run_enclave_opts,
    .run = run_enclave_run,
};
