/* The virtio-vsock device's host side (vsock_host_*) as a parent-side vsock
 * (nectl/pvsock.h), so that the supervisor and the port forwarder reach an
 * emulated enclave through the same calls as a native one. It lives with
 * the device because it is the device's own host bridging, written against
 * its public calls only; the accelerator merely lends its bus lock. */
#include "nectl/pvsock.h"

static int pv_dev_connected(void *t, uint64_t conn_id)
{
	return vsock_host_connected(t, conn_id);
}

static size_t pv_dev_send(void *t, uint64_t conn_id, const void *buf, size_t len)
{
	return vsock_host_send(t, conn_id, buf, len);
}

static int pv_dev_credit(void *t, uint64_t conn_id, uint32_t bytes)
{
	return vsock_host_credit(t, conn_id, bytes);
}

static int pv_dev_shutdown(void *t, uint64_t conn_id, uint32_t flags)
{
	return vsock_host_shutdown(t, conn_id, flags);
}

static int pv_dev_close(void *t, uint64_t conn_id)
{
	return vsock_host_close(t, conn_id);
}

static int pv_dev_connect(void *t, uint32_t guest_port, uint32_t host_port, uint64_t *conn_id)
{
	return vsock_host_connect(t, guest_port, host_port, conn_id);
}

static const struct pvsock_ops pv_dev_ops = {
    .connected = pv_dev_connected,
    .send = pv_dev_send,
    .credit = pv_dev_credit,
    .shutdown = pv_dev_shutdown,
    .close = pv_dev_close,
    .connect = pv_dev_connect,
};

void pvsock_from_device(struct pvsock *pv, struct vsock_dev *dev, void (*lock)(void *),
			void (*unlock)(void *), void *lock_ctx)
{
	*pv = (struct pvsock){
	    .ops = &pv_dev_ops, .t = dev, .lock = lock, .unlock = unlock, .lock_ctx = lock_ctx};
}
