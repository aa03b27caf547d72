/* Shared by the enclave module's files: the launch plan handed to the
 * supervisor, the run directory's records, console capture. */
#ifndef NECTL_ENCLAVE_INT_H
#define NECTL_ENCLAVE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "enclave/forward.h"
#include "nectl/enclave.h"

/* What runs the enclave (nectl/accel.h). */
enum enclave_mode {
	ENCLAVE_MODE_EMULATED,	/* accel/kvm directly (--emulate) */
	ENCLAVE_MODE_SIMULATED, /* the NE driver model (NECTL_NE_DEVICE=sim[:FILE]) */
	ENCLAVE_MODE_NATIVE,	/* /dev/nitro_enclaves */
};

struct enclave_plan {
	enum enclave_mode mode;
	char ne_device[PATH_MAX]; /* NE modes: "sim", "sim:FILE" or the device's path */
	char run_dir[PATH_MAX];
	char id[96];
	char sid[24];
	char name[256];
	char eif_path[PATH_MAX];
	uint64_t memory_mib;
	unsigned ncpus;
	int cpu_ids[ENCLAVE_MAX_CPUS];
	bool pinned;
	uint64_t cid;
	bool debug;
	bool acpi; /* the machine has ACPI tables too (--machine-acpi) */
	unsigned hb_timeout_s;
	struct fwd_rule rules[ENCLAVE_MAX_FORWARDS];
	size_t nrules;
	unsigned fwd_max_conns, fwd_max_conns_total; /* forwarded connections at once */
};

/* launch.c: the sid and nitro-cli's enclave ID ("<board asset tag or
 * i-0000000000000000>-enc<slot uid in hex>") for a slot uid. */
void enclave_plan_id(struct enclave_plan *p, uint64_t uid);

/* rundir.c: "<dir>/<sid><suffix>" */
void rundir_file(const char *dir, const char *sid, const char *suffix, char *out, size_t len);
int rundir_lock(const char *dir, int *fd, struct nectl_err *err);
/* Every record (new reference, an array); stale ones are removed first. */
int rundir_records(const char *dir, json_t **array, struct nectl_err *err);
/* Removes the socket, record and log of sid. */
void rundir_remove(const char *dir, const char *sid);
int rundir_write_record(const char *dir, const char *sid, json_t *rec, struct nectl_err *err);
/* The sid of a record ("" when it has no usable EnclaveID). */
const char *record_sid(const json_t *rec, char out[24]);
/* The process is gone, or a zombie nobody has reaped yet. */
bool rundir_pid_gone(pid_t pid);
/* Is pid sid's supervisor? It is when it holds the listening socket bound
 * at sid's socket path, which a supervisor keeps until it ends and a
 * recycled PID cannot have. 1 yes, 0 no (or gone), -1 cannot tell (another
 * user's process). */
int rundir_pid_serves(const char *dir, const char *sid, pid_t pid);
/* Connects to sid's control socket, waiting up to timeout_ms while its
 * backlog is full; -1 with errno (ENOENT, ECONNREFUSED: nobody listens;
 * EACCES: not ours; EAGAIN: still full). */
int rundir_connect(const char *dir, const char *sid, int timeout_ms);

/* supervisor.c: runs the enclave until it ends; never returns. Reports to
 * report_fd: "R\n" once the record exists (the launcher then drops the
 * lock), "OK\n" after the heartbeat, or "E<code> <message>\n". */
_Noreturn void supervisor_main(struct enclave_plan *p, int report_fd, int lock_fd);

/* console.c: capture from vCPU threads, readers in the supervisor loop. */
#define CONSOLE_RING	(1u << 20)
#define CONSOLE_LOG_MAX (64ull << 20)

struct console {
	pthread_mutex_t mu;
	uint8_t *ring; /* NULL outside debug mode: nothing is kept */
	uint64_t total;
	int log_fd;
	uint64_t logged;
	char line[512];
	size_t line_len;
	char last_line[200]; /* the last complete non-empty line */
	/* The first line that looked like a kernel panic: a hint for people,
	 * never a verdict (any process in the enclave can print it). */
	char panic_hint[200];
	void (*notify)(void *ctx);
	void *ctx;
};

int console_init(struct console *c, bool keep, const char *log_path, void (*notify)(void *),
		 void *ctx, struct nectl_err *err);
void console_feed(struct console *c, const uint8_t *buf, size_t len);
/* Copies from absolute position *pos (moved past what was lost if the ring
 * overtook it); returns the byte count, 0 when caught up. */
size_t console_read(struct console *c, uint64_t *pos, void *out, size_t max);
void console_fini(struct console *c);

/* control.c: one request line, one reply line (then, for "console", the
 * stream). Requests: {"op":"terminate"} and {"op":"console"}; both for the
 * enclave's owner and root only. A terminate is answered at once; the
 * caller waits for the supervisor's end. */
#define CONTROL_LINE_MAX 4096

#endif
