/* afvsock_console.c: the enclave's console over AF_VSOCK: a client of
 * (console_cid, console_port), every byte handed to cfg.console, and a new
 * connection after a wait of AFVSOCK_RETRY_MIN_MS doubling to
 * AFVSOCK_RETRY_MAX_MS whenever the last one could not be made or ended.
 * The socket is level-triggered in epoll: it is closed at its EOF, so
 * nothing can keep it ready for ever. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "accel/nitro/afvsock_int.h"

#define CONSOLE_READS 16 /* reads per event, so connections get their turn */

static void console_drop(struct afvsock *a)
{
	if (a->cons_fd >= 0)
		close(a->cons_fd); /* also leaves the epoll set */
	a->cons_fd = -1;
	a->cons_up = false;
	a->cons_retry_at = afv_now_ms() + a->cons_wait_ms;
	a->cons_wait_ms *= 2;
	if (a->cons_wait_ms > AFVSOCK_RETRY_MAX_MS)
		a->cons_wait_ms = AFVSOCK_RETRY_MAX_MS;
}

static int console_watch(struct afvsock *a, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = AFV_EV_DATA(AFV_TAG_CONSOLE, 0)};

	return epoll_ctl(a->epfd, op, a->cons_fd, &ev);
}

void afv_console_try(struct afvsock *a)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = a->cfg.console_cid, .svm_port = a->cfg.console_port};

	a->cons_retry_at = 0;
	if (a->cons_fd >= 0)
		return;
	a->cons_fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->cons_fd >= 0 &&
	    (connect(a->cons_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
	     errno == EINPROGRESS) &&
	    console_watch(a, EPOLL_CTL_ADD, EPOLLOUT) == 0)
		return;
	console_drop(a);
}

/* A connecting socket is reported writable once it is connected, and
 * (with an error, or in the closed state) once it has failed. */
static void console_connected(struct afvsock *a)
{
	struct sockaddr_vm sa;
	socklen_t len = sizeof(sa);

	if (afv_sock_error(a->cons_fd) ||
	    getpeername(a->cons_fd, (struct sockaddr *)&sa, &len) < 0 ||
	    console_watch(a, EPOLL_CTL_MOD, EPOLLIN) < 0) {
		console_drop(a);
		return;
	}
	a->cons_up = true;
	a->cons_wait_ms = AFVSOCK_RETRY_MIN_MS;
}

static void console_read(struct afvsock *a)
{
	for (unsigned k = 0; k < CONSOLE_READS; k++) {
		ssize_t n = recv(a->cons_fd, a->buf, sizeof(a->buf), MSG_DONTWAIT);

		if (n > 0) {
			if (a->cfg.console)
				a->cfg.console(a->cfg.console_ctx, a->buf, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		console_drop(a); /* EOF or an error: the next connection */
		return;
	}
}

void afv_console_event(struct afvsock *a)
{
	if (a->cons_fd < 0)
		return;
	if (a->cons_up)
		console_read(a);
	else
		console_connected(a);
}
