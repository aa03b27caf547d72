/* The parent-side vsock of one enclave, as its supervisor and port
 * forwarder use it: the host's calls toward the enclave's connections as an
 * ops table, so that the code above is written once for every mode. Two
 * transports implement it: the emulated virtio-vsock device's host side
 * (pvsock_from_device, include/nectl/vsock.h) and real AF_VSOCK sockets in
 * native mode (include/nectl/afvsock.h).
 *
 * Toward the host, every transport calls the same struct vsock_host_ops
 * (connect, connected, data, writable, shutdown, closed, heartbeat), with
 * the transport's lock held. The host makes every call below with that
 * lock held too (pvsock_lock), from callbacks or from its own threads; the
 * calls may call back into the host's ops (`writable` inside `send`), as
 * the device's do.
 *
 * Connection ids are the transport's; one is never reused for another
 * connection while the host may still hold it. */
#ifndef NECTL_PVSOCK_H
#define NECTL_PVSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "nectl/vsock.h"

struct pvsock_ops {
	/* All return 0 or -errno: ENOENT for an unknown or dead conn_id,
	 * EINVAL when the connection is in the wrong state for the call. */
	int (*connected)(void *t, uint64_t conn_id);
	/* Queues up to `len` bytes for the enclave; returns how many were
	 * taken (0 when the connection cannot carry data). Short: `writable`
	 * follows when there is room again. */
	size_t (*send)(void *t, uint64_t conn_id, const void *buf, size_t len);
	/* The host consumed `bytes` of what `data` delivered. */
	int (*credit)(void *t, uint64_t conn_id, uint32_t bytes);
	/* Tells the enclave the host will not receive/send any more (after
	 * the data already queued). */
	int (*shutdown)(void *t, uint64_t conn_id, uint32_t flags);
	/* The host is done: queued data is still delivered, then the enclave
	 * is told to close. No callback names conn_id afterwards. */
	int (*close)(void *t, uint64_t conn_id);
	/* Opens host_port -> enclave:guest_port; `connected` or `closed`
	 * follows. EBUSY when the port pair is in use, ENOSPC when the table
	 * is full. */
	int (*connect)(void *t, uint32_t guest_port, uint32_t host_port, uint64_t *conn_id);
};

struct pvsock { /* one enclave's parent side */
	const struct pvsock_ops *ops;
	void *t; /* the transport */
	/* Its serialisation: the machine's bus lock, or the AF_VSOCK
	 * transport's mutex. */
	void (*lock)(void *), (*unlock)(void *);
	void *lock_ctx;
};

/* The emulated device's host side as a pvsock (lock: the machine's bus
 * lock). `dev` must outlive every use of `pv`. */
void pvsock_from_device(struct pvsock *pv, struct vsock_dev *dev, void (*lock)(void *),
			void (*unlock)(void *), void *lock_ctx);

/* Shorthands for the calls, so callers read like the vsock_host_* ones. */
static inline int pvsock_connected(const struct pvsock *pv, uint64_t id)
{
	return pv->ops->connected(pv->t, id);
}

static inline size_t pvsock_send(const struct pvsock *pv, uint64_t id, const void *buf, size_t len)
{
	return pv->ops->send(pv->t, id, buf, len);
}

static inline int pvsock_credit(const struct pvsock *pv, uint64_t id, uint32_t bytes)
{
	return pv->ops->credit(pv->t, id, bytes);
}

static inline int pvsock_shutdown(const struct pvsock *pv, uint64_t id, uint32_t flags)
{
	return pv->ops->shutdown(pv->t, id, flags);
}

static inline int pvsock_close(const struct pvsock *pv, uint64_t id)
{
	return pv->ops->close(pv->t, id);
}

static inline int pvsock_connect(const struct pvsock *pv, uint32_t guest_port, uint32_t host_port,
				 uint64_t *id)
{
	return pv->ops->connect(pv->t, guest_port, host_port, id);
}

static inline void pvsock_lock(const struct pvsock *pv)
{
	pv->lock(pv->lock_ctx);
}

static inline void pvsock_unlock(const struct pvsock *pv)
{
	pv->unlock(pv->lock_ctx);
}

#endif
