/* The enclave lifecycle shared by every mode: plan (CID, name, memory rule),
 * launch a per-enclave supervisor that outlives the caller, and talk to
 * running supervisors through the run directory (describe, console,
 * terminate). Emulated mode runs the enclave on nectl's KVM hypervisor.
 *
 * The run directory (/run/nectl as root, $XDG_RUNTIME_DIR/nectl otherwise,
 * NECTL_RUN_DIR to override) holds, per enclave, <sid>.sock (the
 * supervisor's control socket), <sid>.json (its describe-enclaves record,
 * rewritten atomically on every change) and, in debug mode, <sid>.log (the
 * console from the first byte). <sid> is the hex after "-enc" in the ID. */
#ifndef NECTL_ENCLAVE_H
#define NECTL_ENCLAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nectl/err.h"
#include "nectl/memregion.h"

/* Streams the EIF file into the regions from `offset` (the accelerator's image
 * load offset), once; *len gets its size. NECTL_ERR_MEM_OVERFLOW (nothing
 * written) when it does not fit, NECTL_ERR_FILE when it cannot be read. */
int enclave_write_eif(const char *path, const struct mem_region *r, unsigned n, uint64_t offset,
		      uint64_t *len, struct nectl_err *err);

#define ENCLAVE_FIRST_AUTO_CID 16
#define ENCLAVE_MAX_CPUS       64
#define ENCLAVE_MAX_POOL       4096 /* CPUs in an NE CPU pool that nectl reads */
#define ENCLAVE_MAX_FORWARDS   64

/* Forwarded connections open at once (enclave_opts). */
#define ENCLAVE_DEFAULT_FORWARD_CONNS	    512
#define ENCLAVE_DEFAULT_FORWARD_CONNS_TOTAL 1024
#define ENCLAVE_MAX_FORWARD_CONNS	    1024
/* Memory is given in MiB and must be addressable in bytes. */
#define ENCLAVE_MAX_MEMORY_MIB (UINT64_MAX >> 20)

struct enclave_opts {
	const char *eif_path;
	uint64_t memory_mib;
	unsigned cpu_count; /* or: */
	const int *cpu_ids; /* host CPUs the vCPUs are pinned to */
	unsigned ncpu_ids;
	uint64_t cid; /* 0: the lowest free CID from 16 */
	bool debug;
	const char *name;	    /* NULL: the EIF's file name without ".eif" */
	const char *const *to_host; /* "PORT=unix:PATH", "PORT=tcp:HOST:HOSTPORT" */
	size_t nto_host;
	const char *const *into_enclave; /* "tcp:HOST:LPORT=PORT", "unix:PATH=PORT" */
	size_t ninto_enclave;
	unsigned heartbeat_timeout_s; /* 0: nitro-cli's rule (at least 180 s) */
	/* Add ACPI tables to the machine (not Nitro's: for debugging kernels
	 * that need them; such an image would not boot on Nitro). */
	bool machine_acpi;
	/* Forwarded connections open at once, per rule and for the enclave
	 * (0: ENCLAVE_DEFAULT_FORWARD_CONNS, ENCLAVE_DEFAULT_FORWARD_CONNS_TOTAL;
	 * at most ENCLAVE_MAX_FORWARD_CONNS); one more is refused. */
	unsigned forward_max_conns, forward_max_conns_total;
	/* NULL: emulated (accel/kvm). Otherwise the NE device: its path
	 * (/dev/nitro_enclaves), or "sim" / "sim:FILE.json" for the driver
	 * model (src/sim), which boots accel/kvm at NE_START_ENCLAVE. */
	const char *ne_device;
};

struct enclave_launched {
	json_t *run;				/* run-enclave's JSON, nitro-cli's keys */
	char memory_kind[32];			/* "hugepages" or "anonymous memory" */
	double load_ms, entry_ms, heartbeat_ms; /* since the supervisor started */
};

/* The run directory, created (0700 unless root: 0755) when missing. */
int enclave_run_dir(char *out, size_t len, struct nectl_err *err);

/* nitro-cli's CID rules for --enclave-cid (E03). */
int enclave_check_cid(uint64_t cid, struct nectl_err *err);

/* Checks everything that can be checked before a supervisor exists (EIF:
 * it opens (E19), parses and its CRC matches (E35); memory: at most
 * ENCLAVE_MAX_MEMORY_MIB (E03), 4x rule E26; CPUs E20/E21/E22; CID;
 * forwarding rules and caps), reserves a
 * CID and name, starts the supervisor and waits for the enclave's boot
 * heartbeat. A failure inside the supervisor comes back as its own error
 * (E36 for a boot without heartbeat) and leaves nothing behind. */
int enclave_launch(const struct enclave_opts *o, struct enclave_launched *out,
		   struct nectl_err *err);

/* describe-enclaves: every enclave in the run directory, running or exited
 * (stale records of dead supervisors are removed on the way). */
int enclave_describe_all(bool metadata, json_t **array, struct nectl_err *err);

/* Resolves --enclave-id or --enclave-name (exactly one non-NULL) to the
 * enclave's record (new reference): E11 for an unknown ID, E58 for a name
 * that matches none or several. */
int enclave_find(const char *id, const char *name, json_t **record, struct nectl_err *err);

/* Terminates one enclave (running: the supervisor stops the VM and removes
 * its files; exited: its files are removed) and returns once its supervisor
 * is gone. A supervisor that does not answer is verified to be the one
 * (rundir) and signalled: SIGTERM, then SIGKILL. Anything else fails, with
 * the files left: E38 (another user's enclave, or it would not end).
 * *result: nitro-cli's object. */
int enclave_terminate(const json_t *record, json_t **result, struct nectl_err *err);

/* Opens the enclave's console: a live stream from the supervisor (what was
 * captured so far, then new output until the enclave ends), or the captured
 * log of an exited enclave. E44 unless the enclave runs in debug mode and
 * the caller is its owner or root. */
int enclave_console_open(const json_t *record, int *fd, struct nectl_err *err);

#endif
