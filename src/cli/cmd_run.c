/* run-enclave, describe-enclaves, terminate-enclave, console: nitro-cli's
 * lifecycle commands over the enclave module. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "nectl/enclave.h"

static int run_u64(const char *opt, const char *text, uint64_t max, uint64_t *out,
		   struct nectl_err *err)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	if (!*text || *text == '-' || *end || errno || *out > max)
		return nectl_err_set(err, NECTL_E_INVALID_ARG,
				     "The parameter `%s` is not a valid integer (`%s`)", opt, text);
	return 0;
}

/* nitro-cli's --memory: MiB, or with an M, G or T suffix. */
static int run_memory(const char *text, uint64_t *mib, struct nectl_err *err)
{
	char num[32];
	size_t n = strlen(text);
	uint64_t mul = 1;

	if (n && strchr("MmGgTt", text[n - 1])) {
		mul = strchr("Mm", text[n - 1]) ? 1 : strchr("Gg", text[n - 1]) ? 1024 : 1024 * 1024;
		n--;
	}
	if (n == 0 || n >= sizeof(num))
		return nectl_err_set(err, NECTL_E_INVALID_ARG, "Invalid memory value `%s`", text);
	memcpy(num, text, n);
	num[n] = 0;
	if (run_u64("memory", num, UINT64_MAX / (1024 * 1024), mib, err) < 0)
		return -1;
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
				return nectl_err_set(err, 22, "at most %d CPUs per enclave",
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
		return nectl_err_set(err, NECTL_E_MISSING_ARG,
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
		nectl_err_set(err, NECTL_E_SERDE, "--config: `%s` must be a string", key);
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
		return nectl_err_set(err, NECTL_E_SERDE, "--config: `%s` must be an array", key);
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || *n == ENCLAVE_MAX_FORWARDS)
			return nectl_err_set(err, NECTL_E_SERDE,
					     "--config: `%s` must hold at most %d strings", key,
					     ENCLAVE_MAX_FORWARDS);
		out[(*n)++] = json_string_value(v);
	}
	return 0;
}

static int run_json_uint(json_t *cfg, const char *key, uint64_t *out, struct nectl_err *err)
{
	json_t *v = json_object_get(cfg, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return nectl_err_set(err, NECTL_E_SERDE,
				     "--config: `%s` must be a non-negative integer", key);
	*out = (uint64_t)json_integer_value(v);
	return 1;
}

/* nitro-cli's --config keys (unknown keys ignored), plus forward_to_host and
 * forward_into_enclave arrays. The config owns the strings: *cfg_out lives as
 * long as o. */
static int run_from_config(const char *path, struct enclave_opts *o, int *ids, json_t **cfg_out,
			   const char **to_host, const char **into, struct nectl_err *err)
{
	json_error_t jerr;
	json_t *cfg = json_load_file(path, 0, &jerr), *v;
	uint64_t u = 0;
	size_t i;

	if (!cfg && access(path, R_OK) < 0)
		return nectl_err_sys(err, NECTL_E_FILE, errno,
				     "File: '%s', failing operation: 'Open'", path);
	if (!cfg || !json_is_object(cfg)) {
		json_decref(cfg);
		return nectl_err_set(err, NECTL_E_SERDE, "--config %s: invalid JSON: %s", path,
				     cfg ? "not an object" : jerr.text);
	}
	*cfg_out = cfg;
	err->code = 0;
	o->eif_path = run_json_str(cfg, "eif_path", err);
	o->name = run_json_str(cfg, "enclave_name", err);
	if (err->code)
		return -1;
	if (!o->eif_path || run_json_uint(cfg, "memory_mib", &o->memory_mib, err) == 0)
		return nectl_err_set(err, NECTL_E_MISSING_ARG,
				     "--config: `eif_path` and `memory_mib` are required");
	if (json_object_get(cfg, "cpu_count") && json_object_get(cfg, "cpu_ids"))
		return nectl_err_set(err, NECTL_E_CONFLICT_ARG,
				     "--config: `cpu_count` and `cpu_ids` conflict");
	if (run_json_uint(cfg, "cpu_count", &u, err) < 0 ||
	    run_json_uint(cfg, "enclave_cid", &o->cid, err) < 0)
		return -1;
	o->cpu_count = (unsigned)u;
	json_array_foreach(json_object_get(cfg, "cpu_ids"), i, v) {
		if (!json_is_integer(v) || i == ENCLAVE_MAX_CPUS)
			return nectl_err_set(err, NECTL_E_SERDE, "--config: bad `cpu_ids`");
		ids[o->ncpu_ids++] = (int)json_integer_value(v);
	}
	if (o->ncpu_ids)
		o->cpu_ids = ids;
	else if (!o->cpu_count)
		return nectl_err_set(err, NECTL_E_MISSING_ARG,
				     "--config: one of `cpu_count` or `cpu_ids` is required");
	o->debug = json_is_true(json_object_get(cfg, "debug_mode")) ||
		   json_is_true(json_object_get(cfg, "attach_console"));
	if (run_json_strings(cfg, "forward_to_host", to_host, &o->nto_host, err) < 0 ||
	    run_json_strings(cfg, "forward_into_enclave", into, &o->ninto_enclave, err) < 0)
		return -1;
	o->to_host = to_host;
	o->into_enclave = into;
	return 0;
}

/* Raw console bytes to stdout until the stream ends or the timeout. */
static int run_console_stream(const json_t *rec, uint64_t timeout_s, struct nectl_err *err)
{
	struct timespec t0;
	char buf[4096];
	int fd, rc = 0;

	printf("Connecting to the console for enclave %" JSON_INTEGER_FORMAT "...\n",
	       json_integer_value(json_object_get(rec, "EnclaveCID")));
	fflush(stdout);
	if (enclave_console_open(rec, &fd, err) < 0)
		return -1;
	printf("Successfully connected to the console.\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int wait_ms = -1;
		ssize_t n;

		if (timeout_s) {
			struct timespec now;
			int64_t left;

			clock_gettime(CLOCK_MONOTONIC, &now);
			left = (int64_t)timeout_s * 1000 - ((now.tv_sec - t0.tv_sec) * 1000 +
							     (now.tv_nsec - t0.tv_nsec) / 1000000);
			if (left <= 0)
				break;
			wait_ms = (int)left;
		}
		if (poll(&p, 1, wait_ms) == 0)
			break;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
			rc = nectl_err_set(err, 46, "cannot write the console to standard output");
			break;
		}
	}
	close(fd);
	return rc;
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

	if (!args_has(a, "emulate"))
		return nectl_err_sys(err, NECTL_E_FILE, ENOENT,
				     "File: '/dev/nitro_enclaves', failing operation: 'Open' (this "
				     "build runs enclaves emulated: add --emulate)");
	if ((v = args_get(a, "config"))) {
		static const char *const solo[] = {"eif-path", "memory", "cpu-count", "cpu-ids",
						   "enclave-cid", "debug-mode", "enclave-name"};

		for (size_t i = 0; i < sizeof(solo) / sizeof(solo[0]); i++)
			if (args_conflict(a, "config", solo[i], err) < 0)
				return -1;
		if (run_from_config(v, &o, ids, &cfg, to_host, into, err) < 0)
			goto out;
	} else if (run_from_args(a, &o, ids, err) < 0) {
		goto out;
	}
	o.nto_host += args_all(a, "forward-to-host", to_host + o.nto_host,
			       ENCLAVE_MAX_FORWARDS - o.nto_host);
	o.ninto_enclave += args_all(a, "forward-into-enclave", into + o.ninto_enclave,
				    ENCLAVE_MAX_FORWARDS - o.ninto_enclave);
	o.to_host = to_host;
	o.into_enclave = into;
	if ((v = args_get(a, "heartbeat-timeout"))) {
		if (run_u64("heartbeat-timeout", v, 86400, &u, err) < 0)
			goto out;
		o.heartbeat_timeout_s = (unsigned)(u ? u : 1);
	}
	fprintf(stderr, "Start allocating memory...\n");
	if (enclave_launch(&o, &l, err) < 0)
		goto out;
	cpus = json_dumps(json_object_get(l.run, "CPUIDs"), JSON_COMPACT);
	fprintf(stderr, "Started enclave with enclave-cid: %" JSON_INTEGER_FORMAT
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
	attach = args_has(a, "attach-console") || json_is_true(json_object_get(cfg, "attach_console"));
	/* The whole record (flags and all), before the enclave may end. */
	if (attach && enclave_find(id, NULL, &rec, err) < 0) {
		json_decref(l.run);
		goto out;
	}
	if (cli_print_json(l.run, err) < 0)
		goto out;
	rc = attach ? run_console_stream(rec, 0, err) : 0;
out:
	json_decref(rec);
	json_decref(cfg);
	return rc;
}

static const struct opt_spec run_enclave_opts[] = {
	{"eif-path", true, false, NULL},
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
	{"verbose", false, false, NULL},
	{0}};

const struct cli_cmd cli_cmd_run_enclave = {
	.name = "run-enclave",
	.summary = "Start an enclave from an EIF (--emulate: on nectl's KVM hypervisor)",
	.help =
		"Usage: nectl run-enclave --emulate --eif-path FILE --memory N[M|G|T]\n"
		"           (--cpu-count N | --cpu-ids ID[,ID...]) [--enclave-cid CID]\n"
		"           [--debug-mode] [--attach-console] [--enclave-name NAME]\n"
		"           [--forward-to-host PORT=unix:PATH | PORT=tcp:HOST:HOSTPORT]...\n"
		"           [--forward-into-enclave tcp:HOST:LPORT=PORT | unix:PATH=PORT]...\n"
		"           [--heartbeat-timeout S] [--verbose]\n"
		"       nectl run-enclave --emulate --config FILE.json [--forward-...]\n"
		"\n"
		"Starts a supervisor process that holds the enclave (it outlives this command),\n"
		"boots the unmodified EIF on nectl's KVM hypervisor (the EIF is written into\n"
		"enclave memory at 8 MiB and booted from there, with virtio-vsock at 0xd0000000\n"
		"and the parent at CID 3), waits for the enclave's boot heartbeat, and prints\n"
		"nitro-cli's JSON. Checks as nitro-cli: memory >= 4x the EIF size (E26), CIDs\n"
		"(0 = auto from 16; 1-3 and >= 2^32-1 refused), CPUs (E20/E21/E22); a signed\n"
		"EIF must verify (E59); no heartbeat within --heartbeat-timeout (default as\n"
		"nitro-cli, at least 180 s) is E36 and the enclave is torn down. Names: the\n"
		"EIF's file name without .eif; a taken name gets _1, _2, ...\n"
		"\n"
		"--cpu-ids pins the vCPUs to those host CPUs (comma-separated or repeated).\n"
		"--forward-to-host: a guest connection to CID 3 port PORT is connected to the\n"
		"Unix socket or TCP address; other ports are refused (RST).\n"
		"--forward-into-enclave: nectl listens on the address and connects each client\n"
		"to the enclave's vsock port PORT. In --config: \"forward_to_host\" and\n"
		"\"forward_into_enclave\" arrays of the same strings, next to nitro-cli's keys\n"
		"(eif_path, memory_mib, cpu_count | cpu_ids, enclave_cid, debug_mode,\n"
		"attach_console, enclave_name).\n"
		"--verbose: memory backing (hugepages when reserved, else anonymous memory)\n"
		"and phase timings (load, kernel entry, heartbeat) on stderr.\n"
		"\n"
		"Example:\n"
		"  nectl run-enclave --emulate --eif-path hello.eif --memory 512 --cpu-count 2 \\\n"
		"      --debug-mode --forward-into-enclave tcp:127.0.0.1:5000=5000\n",
	.opts = run_enclave_opts,
	.run = run_enclave_run,
};

static int describe_enclaves_run(const struct args *a, struct nectl_err *err)
{
	json_t *all;

	if (enclave_describe_all(args_has(a, "metadata"), &all, err) < 0)
		return -1;
	return cli_print_json(all, err);
}

static const struct opt_spec describe_enclaves_opts[] = {{"metadata", false, false, NULL}, {0}};

const struct cli_cmd cli_cmd_describe_enclaves = {
	.name = "describe-enclaves",
	.summary = "List the enclaves with their state, CID, memory, CPUs and PCRs",
	.help = "Usage: nectl describe-enclaves [--metadata]\n"
		"\n"
		"Prints a JSON array (nitro-cli's keys: EnclaveName, EnclaveID, ProcessID,\n"
		"EnclaveCID, NumberOfCPUs, CPUIDs, MemoryMiB, State, Flags, Measurements; with\n"
		"--metadata also ImageName, ImageVersion, Metadata) plus nectl's: Mode\n"
		"(\"emulated\"), MemoryBacking, EifPath, Timings {LoadMs, KernelEntryMs,\n"
		"HeartbeatMs}, and for an enclave that ended by itself State \"EXITED\" and\n"
		"Exit {Reason: app-exited | app-killed | reboot | kernel-panic | triple-fault |\n"
		"kvm-error, AppExitStatus, AppSignal, Detail, UptimeMs}. Exited enclaves stay\n"
		"listed (and their console readable) until terminate-enclave removes them.\n"
		"Records of supervisors that died are removed on the way.\n"
		"\n"
		"Example:\n"
		"  nectl describe-enclaves\n",
	.opts = describe_enclaves_opts,
	.run = describe_enclaves_run,
};

/* Exactly one of --enclave-id / --enclave-name. */
static int run_pick(const struct args *a, json_t **rec, struct nectl_err *err)
{
	const char *id = args_get(a, "enclave-id"), *name = args_get(a, "enclave-name");

	if (args_conflict(a, "enclave-id", "enclave-name", err) < 0)
		return -1;
	if (!id && !name)
		return nectl_err_set(err, NECTL_E_MISSING_ARG,
				     "Missing mandatory argument. User did not provide the "
				     "`enclave-id` or `enclave-name` argument.");
	return enclave_find(id, name, rec, err);
}

static int terminate_one(const json_t *rec, json_t **res, struct nectl_err *err)
{
	if (enclave_terminate(rec, res, err) < 0)
		return -1;
	fprintf(stderr, "Successfully terminated enclave %s.\n",
		json_string_value(json_object_get(rec, "EnclaveID")));
	return 0;
}

static int terminate_enclave_run(const struct args *a, struct nectl_err *err)
{
	json_t *rec, *res, *all, *out;
	size_t i;
	int rc;

	if (!args_has(a, "all")) {
		if (run_pick(a, &rec, err) < 0)
			return -1;
		rc = terminate_one(rec, &res, err);
		json_decref(rec);
		return rc < 0 ? -1 : cli_print_json(res, err);
	}
	if (args_conflict(a, "all", "enclave-id", err) < 0 ||
	    args_conflict(a, "all", "enclave-name", err) < 0 ||
	    enclave_describe_all(false, &all, err) < 0)
		return -1;
	out = json_array();
	json_array_foreach(all, i, rec) {
		struct nectl_err one = {0};

		/* Like nitro-cli: an enclave that refuses (another user's) is skipped. */
		if (terminate_one(rec, &res, &one) == 0)
			json_array_append_new(out, res);
		else
			cli_print_error(&one);
	}
	json_decref(all);
	return cli_print_json(out, err);
}

static const struct opt_spec terminate_enclave_opts[] = {
	{"enclave-id", true, false, NULL}, {"enclave-name", true, false, NULL},
	{"all", false, false, NULL}, {0}};

const struct cli_cmd cli_cmd_terminate_enclave = {
	.name = "terminate-enclave",
	.summary = "Stop an enclave and remove everything it left",
	.help = "Usage: nectl terminate-enclave (--enclave-id ID | --enclave-name NAME | --all)\n"
		"\n"
		"Stops the enclave's VM, frees its memory, ends its supervisor and removes its\n"
		"socket, record and console log; for an enclave that already exited, removes\n"
		"what it left. Prints {\"EnclaveName\", \"EnclaveID\", \"Terminated\": true}, or an\n"
		"array of them with --all.\n"
		"\n"
		"Example:\n"
		"  nectl terminate-enclave --enclave-name hello\n",
	.opts = terminate_enclave_opts,
	.run = terminate_enclave_run,
};

static int console_run(const struct args *a, struct nectl_err *err)
{
	json_t *rec;
	const char *v = args_get(a, "disconnect-timeout");
	uint64_t timeout = 0;
	int rc;

	if (v && run_u64("disconnect-timeout", v, UINT64_MAX / 1000, &timeout, err) < 0)
		return -1;
	if (run_pick(a, &rec, err) < 0)
		return -1;
	rc = run_console_stream(rec, timeout, err);
	json_decref(rec);
	return rc;
}

static const struct opt_spec console_opts[] = {{"enclave-id", true, false, NULL},
					       {"enclave-name", true, false, NULL},
					       {"disconnect-timeout", true, false, NULL},
					       {0}};

const struct cli_cmd cli_cmd_console = {
	.name = "console",
	.summary = "Stream a debug-mode enclave's console",
	.help = "Usage: nectl console (--enclave-id ID | --enclave-name NAME)\n"
		"           [--disconnect-timeout SECONDS]\n"
		"\n"
		"Prints everything the enclave wrote to its serial console since it started\n"
		"(the last 1 MiB; the whole of it is in the run directory's <id>.log), then\n"
		"follows it live until the enclave ends or the timeout passes. Only for\n"
		"enclaves started with --debug-mode (E44 otherwise, as nitro-cli). For an\n"
		"enclave that has exited, prints what was captured.\n"
		"\n"
		"Example:\n"
		"  nectl console --enclave-name hello --disconnect-timeout 10\n",
	.opts = console_opts,
	.run = console_run,
};
