/* describe-enclaves, terminate-enclave, console: nitro-cli's commands over
 * the run directory, for enclaves in any mode. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "nectl/enclave.h"

static int lifecycle_u64(const char *opt, const char *text, uint64_t *out, struct nectl_err *err)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	if (!*text || *text == '-' || *end || errno || *out > UINT64_MAX / 1000)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "The parameter `%s` is not a valid integer (`%s`)", opt, text);
	return 0;
}

/* Raw console bytes to stdout until the stream ends or the timeout. */
int cli_console_stream(const json_t *rec, uint64_t timeout_s, struct nectl_err *err)
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
			rc = nectl_err_set(err, NECTL_ERR_CONSOLE_OUTPUT,
					   "cannot write the console to standard output");
			break;
		}
	}
	close(fd);
	return rc;
}

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
		return nectl_err_set(err, NECTL_ERR_MISSING_ARG,
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
	json_array_foreach(all, i, rec)
	{
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

static const struct opt_spec terminate_enclave_opts[] = {{"enclave-id", true, false, NULL},
							 {"enclave-name", true, false, NULL},
							 {"all", false, false, NULL},
							 {0}};

const struct cli_cmd cli_cmd_terminate_enclave = {
    .name = "terminate-enclave",
    .summary = "Stop an enclave and remove everything it left",
    .help = "Usage: nectl terminate-enclave (--enclave-id ID | --enclave-name NAME | --all)\n"
	    "\n"
	    "Stops the enclave's VM, frees its memory, ends its supervisor and removes its\n"
	    "socket, record and console log; for an enclave that already exited, removes\n"
	    "what it left. Returns once the supervisor is gone: one that does not answer\n"
	    "within 5 s is signalled (SIGTERM, then SIGKILL), once it is sure to be the\n"
	    "enclave's supervisor. Prints {\"EnclaveName\", \"EnclaveID\", \"Terminated\":\n"
	    "true}, or an array of them with --all. Only the enclave's owner (the user who\n"
	    "launched it) and root may terminate it; otherwise, or when its supervisor\n"
	    "cannot be ended, E38 and nothing is removed (--all skips such enclaves).\n"
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

	if (v && lifecycle_u64("disconnect-timeout", v, &timeout, err) < 0)
		return -1;
	if (run_pick(a, &rec, err) < 0)
		return -1;
	rc = cli_console_stream(rec, timeout, err);
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
	    "enclaves started with --debug-mode (E44 otherwise, as nitro-cli), and only\n"
	    "for the enclave's owner and root (E44). For an enclave that has exited,\n"
	    "prints what was captured.\n"
	    "\n"
	    "Example:\n"
	    "  nectl console --enclave-name hello --disconnect-timeout 10\n",
    .opts = console_opts,
    .run = console_run,
};
