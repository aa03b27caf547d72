/* The per-enclave supervisor's state, shared by its lifecycle half
 * (supervisor.c) and its control-socket half (sup_control.c). */
#ifndef NECTL_ENCLAVE_SUP_H
#define NECTL_ENCLAVE_SUP_H

#include <poll.h>
#include <stdatomic.h>

#include "enclave/enclave_int.h"
#include "nectl/accel.h"
#include "nectl/app_report.h"
#include "nectl/attest.h"
#include "nectl/eif.h"
#include "nectl/machine.h"
#include "nectl/pvsock.h"
#include "nectl/vsock.h"

#define SUP_MAX_CLIENTS 32
/* A client without a complete request for this long is dropped; console
 * streams are never idle. */
#define SUP_IDLE_MS 5000
/* Out of file descriptors (EMFILE, ENFILE): the listener rests this long. */
#define SUP_ACCEPT_REST_MS 1000

struct sup_client {
	int fd;
	bool console;	     /* streaming the console; otherwise reading a request */
	uid_t uid;	     /* the peer (SO_PEERCRED at accept); (uid_t)-1 if unknown */
	uint64_t idle_since; /* accepted, or its last request (sup_now_ns) */
	char in[CONTROL_LINE_MAX];
	size_t in_len;
	uint64_t pos; /* console stream position */
	uint8_t out[8192];
	size_t out_len, out_off;
};

enum sup_stop { SUP_STOP_NONE, SUP_STOP_TERMINATE, SUP_STOP_NO_HEARTBEAT };

enum sup_app_end { SUP_APP_NONE, SUP_APP_EXITED, SUP_APP_KILLED };

/* init's report connection (nectl/app_report.h, sup_app.c). */
struct sup_app {
	bool taken, open; /* the one connection arrived / is still open */
	uint64_t conn;
	char line[APP_REPORT_LINE_MAX];
	size_t len;
	atomic_int end; /* enum sup_app_end; set after value */
	atomic_int value;
};

struct sup {
	const struct enclave_plan *p;
	/* what runs the enclave (nectl/accel.h), and its NE device and
	 * simulated hypervisor in the NE modes */
	struct accel *acc;
	struct ne_dev *ne;
	struct sim_hv *hv;
	bool loopback;	      /* the model, its enclave reached over vsock loopback */
	struct afvsock *afv;  /* the parent's side over AF_VSOCK (native, loopback) */
	int hb_lock_fd;	      /* held from the heartbeat's listen to the heartbeat */
	int pool_lock_fd;     /* simulated: held until the CPUs are in the record */
	struct machine *m;    /* nectl's machine, when one runs it (not native) */
	struct eif_image img; /* the EIF as checked at launch (PCRs) */
	bool have_img;
	char memory_text[128];
	uint64_t cid;	   /* the enclave's CID (the device's choice in native mode) */
	uint64_t slot_uid; /* the NE modes: the device's, once created */
	/* The emulated NSM's signer, issued by the local CA for this enclave
	 * (machine-run modes only; nectl/attest.h). */
	struct nsm_cfg nsm_cfg;
	struct nsm_der nsm_bundle[ATTEST_CA_BUNDLE_LEN];
	uint32_t cpus[ENCLAVE_MAX_CPUS]; /* its CPUs as the accelerator gave them */
	unsigned ncpus;			 /* 0 before the start */
	struct forwarder *fwd;
	struct console cons;
	int lfd, wake_fd, sig_fd, report_fd;
	uid_t owner;
	pthread_t waiter;
	bool waiter_started;
	atomic_bool heartbeat_seen, exited;
	atomic_uint device_breaks;    /* seen by the vCPUs ... */
	unsigned device_breaks_saved; /* ... and in the record */
	bool booted;		      /* heartbeat handled */
	enum machine_exit why;
	bool why_unknown; /* the Nitro hypervisor only says that it ended */
	char detail[256];
	enum sup_stop stop;
	struct pvsock pv; /* the enclave's parent-side vsock, once it exists */
	struct sup_app app;
	uint64_t t0, t_loaded, t_entry, t_heartbeat;
	const char *state;
	json_t *exit_info;
	struct sup_client clients[SUP_MAX_CLIENTS];
	uint64_t accept_rest_until; /* the listener is not polled before (ns) */
	bool accept_rest_said;	    /* the first rest is in the console log */
};

uint64_t sup_now_ns(void);
/* Wakes the supervisor's loop (from any thread). */
void sup_wake(void *ctx);
/* Milliseconds from the supervisor's start to t (0 when t is unset). */
double sup_ms(const struct sup *s, uint64_t t);

/* sup_launch.c: before the run directory knows the enclave, the image
 * checked (E59) and the accelerator the plan names; in the NE modes the
 * enclave created there, its slot uid naming it (p->sid, p->id). */
int sup_prepare(struct sup *s, struct enclave_plan *p, struct nectl_err *err);
/* Then the launch sequence on it, up to the enclave's start (s->m, s->cid,
 * timings). */
int sup_launch(struct sup *s, struct nectl_err *err);

/* sup_record.c: the record (new reference), and the Exit object of an
 * enclave that stopped. */
json_t *sup_record(const struct sup *s);
/* describe's Mode for a plan's mode. */
const char *sup_mode_name(enum enclave_mode mode);
json_t *sup_classify(struct sup *s);
/* Rewrites the record from the current state. */
void sup_save(struct sup *s);
/* Stops the VM and waits for its threads (idempotent). */
void sup_halt(struct sup *s, enum sup_stop why);
/* Ends the process: terminated (everything removed) or exited (record and
 * log kept for describe and console). */
_Noreturn void sup_finish(struct sup *s, bool keep_record);

/* sup_app.c: the enclave's parent-side vsock as the supervisor sees it
 * (the callbacks of s->pv's transport): init's report connection,
 * everything else to the forwarder (ctx: the sup). */
const struct vsock_host_ops *sup_vsock_ops_get(void);
/* Parses one report line (with its '\n'); 0 or -1. */
int sup_app_parse(const char *line, size_t len, enum sup_app_end *end, int *value);

/* sup_control.c: the control socket's share of the supervisor's loop. Fills
 * pfd with the listener (unless it rests) and every client, who[i] naming
 * the client of pfd[i] (NULL: the listener); at most 1 + SUP_MAX_CLIENTS. */
nfds_t sup_control_fds(struct sup *s, struct pollfd *pfd, struct sup_client **who);
/* Serves what poll reported on those entries, then drops idle clients and
 * ends the listener's rest when their time has come. */
void sup_control_io(struct sup *s, const struct pollfd *pfd, struct sup_client *const *who,
		    nfds_t n);
/* When the control socket next needs the loop (sup_now_ns), 0: never. */
uint64_t sup_control_deadline(const struct sup *s);
/* A line of nectl's own in the console log (kept in debug mode). */
void sup_note(void *ctx, const char *line);
/* Pushes new console output to streaming clients. */
void sup_console_pump(struct sup *s);
/* Closes every client (console streams get what is left first). */
void sup_clients_close(struct sup *s);

#endif
