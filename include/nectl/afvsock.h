/* The parent side of a native enclave's vsock over real AF_VSOCK sockets:
 * a parent-side vsock (nectl/pvsock.h) whose callbacks are the emulated
 * device's struct vsock_host_ops, so the supervisor and the port forwarder
 * run unchanged on a Nitro parent instance.
 *
 * Addressing: the enclave reaches the parent at CID 3; the parent listens
 * on VMADDR_CID_ANY ports (afvsock_listen) and connects to (enclave CID,
 * port). Only connections from cfg.enclave_cid are taken: any other peer
 * (another enclave, a local process) is closed at once, before the host
 * hears of it. Ports bound on VMADDR_CID_ANY are global on the parent: a
 * second transport (another enclave's supervisor, nitro-cli) cannot bind
 * the same port, and afvsock_listen says so with EADDRINUSE.
 *
 * The heartbeat: a listener on VSOCK_HEARTBEAT_PORT is served here, as the
 * emulated device and nitro-cli do: a connection from the enclave sends
 * 0xB7, gets it back, `heartbeat` is called and the connection closed.
 * After the first heartbeat the port-9000 listener is closed, as nitro-cli
 * and QEMU close theirs: the port is the whole parent's, and the next
 * enclave's boot needs it.
 *
 * Connections behave as the device's (nectl/vsock.h), with what AF_VSOCK
 * changes:
 * - The enclave's connect has already succeeded in the kernel when `connect`
 *   asks the host; until the host calls `connected`, nothing is read. A
 *   refusal closes the socket (the enclave sees EOF, not a refused connect).
 * - Credit: at most VSOCK_CONN_BUF bytes delivered by `data` and not yet
 *   credited; past that the socket is not read, so the kernel's vsock
 *   credit stalls the enclave. `send` writes what the socket takes now;
 *   after a short send, `writable` follows when the socket has room.
 * - The enclave's EOF is `shutdown(SEND)`. Its SHUTDOWN RCV is seen when
 *   the host next sends, or once it has also stopped sending, and is then
 *   `shutdown(RCV)`. Once both directions are done (the enclave's EOF or
 *   the host's SHUTDOWN RCV, and the host's SHUTDOWN SEND or the enclave's
 *   RCV), and on any socket error, `closed` follows.
 * - `close` closes the socket: the kernel still delivers what `send` took,
 *   then the enclave sees EOF.
 * - `connect` ignores host_port: the parent's ports are shared with every
 *   process on it, so the kernel picks the local port.
 *
 * The console: the transport connects to (console_cid, console_port) and
 * hands every byte to cfg.console. When that connection drops or is refused
 * while the transport runs, it connects again after 100 ms, doubling to at
 * most 1 s between tries, so capture goes on across reconnects (QEMU's
 * serial-vsock has none). Between connections nobody reads the console
 * port: what the enclave prints then is lost to this transport, unless the
 * other end keeps it for the next reader.
 *
 * Threading: one thread, epoll, non-blocking sockets. Every callback runs
 * on it with the transport's mutex held; the pvsock calls must be made with
 * that mutex held too (struct pvsock's lock), from callbacks or any thread,
 * as the device's under the bus lock. */
#ifndef NECTL_AFVSOCK_H
#define NECTL_AFVSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "nectl/err.h"
#include "nectl/pvsock.h"
#include "nectl/vsock.h"

#define AFVSOCK_CID_HYPERVISOR	  0u	 /* VMADDR_CID_HYPERVISOR: Nitro's console */
#define AFVSOCK_CONSOLE_PORT_BASE 10000u /* the console's port is this + enclave CID */
#define AFVSOCK_MAX_LISTEN	  128	 /* listening ports per transport */
#define AFVSOCK_RETRY_MIN_MS	  100	 /* console reconnects, first wait ... */
#define AFVSOCK_RETRY_MAX_MS	  1000	 /* ... doubling up to this */
#define AFVSOCK_REST_MS		  1000	 /* a listener out of descriptors rests */

struct afvsock_cfg {
	uint32_t enclave_cid;  /* the only peer accepted */
	uint32_t console_cid;  /* production: AFVSOCK_CID_HYPERVISOR */
	uint32_t console_port; /* production: AFVSOCK_CONSOLE_PORT_BASE + CID; 0: none */
	/* Console bytes, with the mutex held; must not block. */
	void (*console)(void *ctx, const void *buf, size_t len);
	void *console_ctx;
};

struct afvsock;

/* A transport with no thread yet. `ops` and `ctx` must outlive it. */
int afvsock_new(struct afvsock **out, const struct afvsock_cfg *cfg,
		const struct vsock_host_ops *ops, void *ctx, struct nectl_err *err);
/* A listening socket on VMADDR_CID_ANY:port; its connections from the
 * enclave go to ops->connect(port) (VSOCK_HEARTBEAT_PORT: the heartbeat).
 * Bind errors keep their errno in err->errnum (EADDRINUSE: another process
 * holds the port). Takes the mutex: never from a callback. */
int afvsock_listen(struct afvsock *a, uint32_t port, struct nectl_err *err);
/* Closes the listener on `port`; connections it gave stay. 0 or -ENOENT.
 * Takes the mutex: never from a callback. */
int afvsock_unlisten(struct afvsock *a, uint32_t port);
/* Starts the thread and the console connection. */
int afvsock_start(struct afvsock *a, struct nectl_err *err);
/* The transport as a pvsock (its lock: the transport's mutex). */
/* The enclave's CID once the device has chosen it (NE_START_ENCLAVE with
 * CID 0), and its console's port (0: none). Until then no connection is
 * accepted: none can come from an enclave that has not started. */
void afvsock_set_enclave(struct afvsock *a, uint32_t cid, uint32_t console_port);
void afvsock_pvsock(struct afvsock *a, struct pvsock *out);
/* Stops and joins the thread, closes every socket, calls nothing back.
 * NULL is fine. Whoever makes pvsock calls (the forwarder) must be stopped
 * first. */
void afvsock_free(struct afvsock *a);

#endif
