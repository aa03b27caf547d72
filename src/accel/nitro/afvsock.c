/* afvsock.c: the AF_VSOCK transport's setup, its thread and its listening
 * sockets (nectl/afvsock.h). The thread waits in epoll without the mutex,
 * then takes it and handles what epoll reported: accepts, the console,
 * connection events (queued for service), timers, and one round of the
 * service list. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "accel/nitro/afvsock_int.h"

#define EV_BATCH       64
#define ACCEPT_BATCH   64
#define LISTEN_BACKLOG 128

uint64_t afv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void afv_wake(struct afvsock *a)
{
	uint64_t one = 1;
	ssize_t r;

	if (a->woken)
		return;
	a->woken = true;
	r = write(a->evfd, &one, sizeof(one)); /* EAGAIN: already pending */
	(void)r;
}

int afv_sock_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	return getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 ? errno : e;
}

static void afv_lock(void *ctx)
{
	pthread_mutex_lock(&((struct afvsock *)ctx)->mu);
}

static void afv_unlock(void *ctx)
{
	pthread_mutex_unlock(&((struct afvsock *)ctx)->mu);
}

/* --- listeners ----------------------------------------------------------- */

static int afv_epoll_add(struct afvsock *a, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};

	return epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static struct afv_listener *afv_listener_find(struct afvsock *a, uint32_t port)
{
	for (unsigned i = 0; i < AFVSOCK_MAX_LISTEN; i++)
		if (a->lis[i].fd >= 0 && a->lis[i].port == port)
			return &a->lis[i];
	return NULL;
}

static int afv_listen_socket(uint32_t port)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
		return fd;
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int afvsock_listen(struct afvsock *a, uint32_t port, struct nectl_err *err)
{
	struct afv_listener *l = NULL;
	int r = -1;

	afv_lock(a);
	for (unsigned i = 0; i < AFVSOCK_MAX_LISTEN && !l; i++)
		if (a->lis[i].fd < 0)
			l = &a->lis[i];
	if (afv_listener_find(a, port))
		nectl_err_sys(err, NECTL_ERR_SOCKET, EADDRINUSE, "vsock port %u: already listening",
			      port);
	else if (!l)
		nectl_err_set(err, NECTL_ERR_SOCKET, "vsock port %u: more than %d listening ports",
			      port, AFVSOCK_MAX_LISTEN);
	else if ((l->fd = afv_listen_socket(port)) < 0)
		nectl_err_sys(err, NECTL_ERR_SOCKET, errno, "vsock port %u: cannot listen", port);
	else if (afv_epoll_add(a, l->fd, EPOLLIN, AFV_EV_DATA(AFV_TAG_LISTEN, l - a->lis)) < 0) {
		nectl_err_sys(err, NECTL_ERR_EVENT, errno, "vsock port %u: epoll", port);
		close(l->fd);
		l->fd = -1;
	} else {
		l->port = port;
		l->resting = false;
		r = 0;
	}
	afv_unlock(a);
	return r;
}

void afv_listener_drop(struct afvsock *a, uint32_t port)
{
	struct afv_listener *l = afv_listener_find(a, port);

	if (l) {
		close(l->fd); /* also leaves the epoll set */
		l->fd = -1;
	}
}

int afvsock_unlisten(struct afvsock *a, uint32_t port)
{
	int r = -ENOENT;

	afv_lock(a);
	if (afv_listener_find(a, port)) {
		afv_listener_drop(a, port);
		r = 0;
	}
	afv_unlock(a);
	return r;
}

/* Level-triggered epoll would wake at once for a listener whose accept
 * keeps failing for want of descriptors, so it rests a while. */
static void afv_listener_rest(struct afvsock *a, struct afv_listener *l)
{
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	l->resting = true;
	a->rest_until = afv_now_ms() + AFVSOCK_REST_MS;
}

static void afv_listeners_resume(struct afvsock *a)
{
	a->rest_until = 0;
	for (unsigned i = 0; i < AFVSOCK_MAX_LISTEN; i++) {
		struct afv_listener *l = &a->lis[i];

		if (l->fd >= 0 && l->resting &&
		    afv_epoll_add(a, l->fd, EPOLLIN, AFV_EV_DATA(AFV_TAG_LISTEN, i)) == 0)
			l->resting = false;
	}
}

/* Only the enclave may connect: anyone else is closed before the host
 * hears of it. */
static void afv_listener_accept(struct afvsock *a, struct afv_listener *l)
{
	for (unsigned k = 0; k < ACCEPT_BATCH && l->fd >= 0; k++) {
		struct sockaddr_vm sa;
		socklen_t len = sizeof(sa);
		int fd = accept4(l->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				afv_listener_rest(a, l);
			return;
		}
		if (len < sizeof(sa) || sa.svm_cid != a->cfg.enclave_cid) {
			close(fd);
			continue;
		}
		afv_conn_accept(a, l->port, fd);
	}
}

/* --- the thread ---------------------------------------------------------- */

static void afv_dispatch(struct afvsock *a, const struct epoll_event *ev)
{
	uint64_t tag = ev->data.u64 >> 32;
	uint32_t i = (uint32_t)ev->data.u64;
	uint64_t v;
	ssize_t r;

	if (tag == AFV_TAG_WAKE) {
		r = read(a->evfd, &v, sizeof(v)); /* EAGAIN: already drained */
		(void)r;
		a->woken = false;
	} else if (tag == AFV_TAG_LISTEN) {
		if (i < AFVSOCK_MAX_LISTEN && a->lis[i].fd >= 0 && !a->lis[i].resting)
			afv_listener_accept(a, &a->lis[i]);
	} else if (tag == AFV_TAG_CONSOLE) {
		afv_console_event(a);
	} else if (i < VSOCK_MAX_CONNS) {
		afv_conn_event(a, i, ev->events);
	}
}

static void afv_timers(struct afvsock *a)
{
	uint64_t now = afv_now_ms();

	if (a->rest_until && now >= a->rest_until)
		afv_listeners_resume(a);
	if (a->cons_retry_at && now >= a->cons_retry_at)
		afv_console_try(a);
}

/* The epoll timeout: 0 while connections wait for service, else until the
 * next timer. */
static int afv_wait_ms(const struct afvsock *a)
{
	uint64_t next = 0, now;

	if (a->svc_head >= 0)
		return 0;
	if (a->rest_until)
		next = a->rest_until;
	if (a->cons_retry_at && (!next || a->cons_retry_at < next))
		next = a->cons_retry_at;
	if (!next)
		return -1;
	now = afv_now_ms();
	return next <= now ? 0 : (int)(next - now);
}

static void *afv_main(void *arg)
{
	struct afvsock *a = arg;
	struct epoll_event ev[EV_BATCH];
	int wait_ms;

	afv_lock(a);
	if (a->cfg.console_port)
		afv_console_try(a);
	wait_ms = afv_wait_ms(a);
	afv_unlock(a);
	for (;;) {
		int n = epoll_wait(a->epfd, ev, EV_BATCH, wait_ms);

		afv_lock(a);
		if (a->stopping)
			break;
		for (int i = 0; i < n; i++)
			afv_dispatch(a, &ev[i]);
		afv_timers(a);
		afv_conns_service(a);
		wait_ms = afv_wait_ms(a);
		afv_unlock(a);
	}
	afv_unlock(a);
	return NULL;
}

/* --- life ---------------------------------------------------------------- */

int afvsock_new(struct afvsock **out, const struct afvsock_cfg *cfg,
		const struct vsock_host_ops *ops, void *ctx, struct nectl_err *err)
{
	struct afvsock *a = calloc(1, sizeof(*a));

	if (!a)
		return nectl_err_sys(err, NECTL_ERR_SOCKET, ENOMEM, "vsock transport");
	a->cfg = *cfg;
	a->ops = ops;
	a->ctx = ctx;
	a->cons_fd = -1;
	a->cons_wait_ms = AFVSOCK_RETRY_MIN_MS;
	for (unsigned i = 0; i < AFVSOCK_MAX_LISTEN; i++)
		a->lis[i].fd = -1;
	afv_conns_init(a);
	pthread_mutex_init(&a->mu, NULL);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->epfd < 0 || a->evfd < 0 ||
	    afv_epoll_add(a, a->evfd, EPOLLIN, AFV_EV_DATA(AFV_TAG_WAKE, 0)) < 0) {
		nectl_err_sys(err, NECTL_ERR_EVENT, errno, "vsock transport: epoll");
		afvsock_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

int afvsock_start(struct afvsock *a, struct nectl_err *err)
{
	sigset_t all, old;
	int r;

	if (a->started)
		return 0;
	/* Signals are the supervisor's business, not this thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&a->thread, NULL, afv_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return nectl_err_sys(err, NECTL_ERR_THREAD, r,
				     "vsock transport: cannot start thread");
	a->started = true;
	return 0;
}

void afvsock_set_enclave(struct afvsock *a, uint32_t cid, uint32_t console_port)
{
	afv_lock(a);
	a->cfg.enclave_cid = cid;
	a->cfg.console_port = console_port;
	/* The console's first try, now that its port is known. */
	if (console_port && a->cons_fd < 0) {
		a->cons_retry_at = afv_now_ms();
		afv_wake(a);
	}
	afv_unlock(a);
}

void afvsock_pvsock(struct afvsock *a, struct pvsock *out)
{
	*out = (struct pvsock){
	    .ops = &afv_pvsock_ops, .t = a, .lock = afv_lock, .unlock = afv_unlock, .lock_ctx = a};
}

void afvsock_free(struct afvsock *a)
{
	if (!a)
		return;
	if (a->started) {
		afv_lock(a);
		a->stopping = true;
		a->woken = false;
		afv_wake(a);
		afv_unlock(a);
		pthread_join(a->thread, NULL);
	}
	afv_conns_close(a);
	for (unsigned i = 0; i < AFVSOCK_MAX_LISTEN; i++)
		if (a->lis[i].fd >= 0)
			close(a->lis[i].fd);
	if (a->cons_fd >= 0)
		close(a->cons_fd);
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->evfd >= 0)
		close(a->evfd);
	pthread_mutex_destroy(&a->mu);
	free(a);
}
