/* The port forwarder of an enclave: bridges the enclave's vsock connections
 * (through its parent-side vsock, include/nectl/pvsock.h: the emulated
 * device or AF_VSOCK) to host Unix and TCP sockets, inside the per-enclave
 * supervisor.
 *
 * To host: a guest connection to CID 3:PORT is connected to a host address.
 * Into the enclave: a host listener's clients are connected to the guest's
 * PORT. Both directions are bounded by vsock credit: a slow host socket
 * stalls the guest, a slow guest stops the host socket being read, and each
 * connection holds at most VSOCK_CONN_BUF + VSOCK_MAX_PAYLOAD bytes.
 * Half-closes pass through both ways; when the guest closes (or resets),
 * what it sent before still reaches the host socket, as fast as that
 * socket takes it, and then EOF.
 *
 * Threading: the transport's ops run under its lock (the VM's bus lock on
 * vCPU threads, or the AF_VSOCK transport's mutex on its thread) and only
 * record state and wake the forwarder's one thread, which takes that lock
 * (the pvsock given to fwd_attach) around each batch of non-blocking socket
 * I/O and pvsock calls. */
#ifndef NECTL_ENCLAVE_FORWARD_H
#define NECTL_ENCLAVE_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/enclave.h"
#include "nectl/err.h"
#include "nectl/pvsock.h"
#include "nectl/vsock.h"

enum fwd_dir { FWD_TO_HOST, FWD_INTO_ENCLAVE };

struct fwd_rule {
	enum fwd_dir dir;
	uint32_t port; /* the vsock port: CID 3's port (to host) or the enclave's port (into) */
	bool is_unix;
	char path[108];	 /* Unix socket path */
	char host[256];	 /* TCP host (name or address, without IPv6 brackets) */
	char service[8]; /* TCP port, decimal */
	char text[512];	 /* the rule as given, for messages (control characters as '?') */
};

/* Parses "PORT=unix:PATH" / "PORT=tcp:HOST:HOSTPORT" (FWD_TO_HOST) or
 * "tcp:HOST:LPORT=PORT" / "unix:PATH=PORT" (FWD_INTO_ENCLAVE); an IPv6 HOST
 * goes in [brackets]. Errors are NECTL_ERR_INVALID_ARG with a one-line message
 * naming the rule. */
int fwd_rule_parse(enum fwd_dir dir, const char *spec, struct fwd_rule *r, struct nectl_err *err);

struct forwarder;

/* Validates the rule set (duplicate to-host ports or into-enclave listen
 * addresses), resolves to-host TCP hosts, and binds and listens on every
 * into-enclave address, so bind errors come before the enclave starts.
 * No thread yet. */
int fwd_create(struct forwarder **out, const struct fwd_rule *rules, size_t n,
	       struct nectl_err *err);
/* Connections forwarded at once: per rule and for the whole enclave (0:
 * the default). One more is refused: a guest's connection to the host gets
 * RST, a client of an into-enclave listener is accepted and closed at once.
 * note (may be NULL) gets a line for the log, once per listener that ran
 * out of file descriptors; it is called with the bus lock held. */
#define FWD_DEFAULT_MAX_CONNS	    ENCLAVE_DEFAULT_FORWARD_CONNS
#define FWD_DEFAULT_MAX_CONNS_TOTAL ENCLAVE_DEFAULT_FORWARD_CONNS_TOTAL
void fwd_set_limits(struct forwarder *f, unsigned per_rule, unsigned per_enclave,
		    void (*note)(void *ctx, const char *line), void *note_ctx);
/* Out of file descriptors (EMFILE, ENFILE): a listener is not polled for
 * this long, or until a forwarded connection ends. */
#define FWD_LISTEN_REST_MS 1000
/* The device ops; their ctx is the forwarder. */
const struct vsock_host_ops *fwd_ops(void);
/* Before the guest runs: the enclave's parent-side vsock (copied; its
 * transport must outlive the forwarder) with its lock, and the heartbeat
 * callback (may be NULL; called under that lock, must not block). */
void fwd_attach(struct forwarder *f, const struct pvsock *pv, void (*heartbeat)(void *ctx),
		void *ctx);
/* Starts the relay thread; fwd_attach first. */
int fwd_start(struct forwarder *f, struct nectl_err *err);

struct fwd_stats {
	uint64_t conns_total;	   /* accepted from the guest or from a listener */
	uint64_t conns_open;	   /* not yet ended */
	uint64_t bytes_to_guest;   /* taken by the transport's send */
	uint64_t bytes_from_guest; /* handed over by the `data` op */
	uint64_t bytes_direct;	   /* of those, sent by the op itself */
	uint64_t buffered;	   /* held by the forwarder now, both directions */
	uint64_t mem;		   /* allocated for those bytes now */
};

/* Takes the bus lock itself: call from other threads only, never from an
 * op or with the lock held. */
void fwd_get_stats(struct forwarder *f, struct fwd_stats *st);
/* Stops and joins the thread, closes every socket, unlinks the Unix
 * listeners it created. Safe on a forwarder never started (and on NULL);
 * call before the device is freed, while no vCPU runs. */
void fwd_destroy(struct forwarder *f);

#endif
