/* forward.c: setting the port forwarder up and tearing it down: the rule
 * set's checks, resolving to-host TCP hosts, binding the into-enclave
 * listeners before the enclave starts, and the thread's life. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "enclave/forward_int.h"

/* --- setting up -------------------------------------------------------- */

static int entry_fail(const struct fwd_entry *e, struct nectl_err *err, int errno_value,
		      const char *what)
{
	const char *opt = fwd_rule_option(e->rule.dir);

	if (!errno_value)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "%s '%s': %s", opt, e->rule.text,
				     what);
	return nectl_err_sys(err, NECTL_ERR_INVALID_ARG, errno_value, "%s '%s': %s", opt,
			     e->rule.text, what);
}

static int entry_resolve(struct fwd_entry *e, bool passive, struct nectl_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
	int r = getaddrinfo(e->rule.host, e->rule.service, &hints, &e->ai);

	if (r == EAI_SYSTEM)
		return entry_fail(e, err, errno, "cannot resolve the TCP host");
	if (r)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "%s '%s': cannot resolve '%s': %s",
				     fwd_rule_option(e->rule.dir), e->rule.text, e->rule.host,
				     gai_strerror(r));
	return 0;
}

static int entry_listen_fd(struct fwd_entry *e, int family, const struct sockaddr *sa,
			   socklen_t len)
{
	int one = 1;

	e->lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (e->lfd < 0)
		return -1;
	if (family != AF_UNIX)
		setsockopt(e->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(e->lfd, sa, len) < 0 || listen(e->lfd, SOMAXCONN) < 0) {
		int saved = errno;

		close(e->lfd);
		e->lfd = -1;
		errno = saved;
		return -1;
	}
	return 0;
}

static int entry_listen_tcp(struct fwd_entry *e, struct nectl_err *err)
{
	int last = EADDRNOTAVAIL;

	if (entry_resolve(e, true, err) < 0)
		return -1;
	for (const struct addrinfo *ai = e->ai; ai && e->lfd < 0; ai = ai->ai_next)
		if (entry_listen_fd(e, ai->ai_family, ai->ai_addr, ai->ai_addrlen) < 0)
			last = errno;
	freeaddrinfo(e->ai);
	e->ai = NULL;
	return e->lfd >= 0 ? 0 : entry_fail(e, err, last, "cannot listen");
}

/* Someone else's file, or a socket somebody listens on, is left alone; a
 * socket nobody answers on is a leftover of an earlier run. */
static int entry_clear_stale(struct fwd_entry *e, const struct sockaddr_un *un,
			     struct nectl_err *err)
{
	struct stat st;
	int fd, r;

	if (lstat(e->rule.path, &st) < 0)
		return errno == ENOENT ? 0 : entry_fail(e, err, errno, "cannot check the path");
	if (!S_ISSOCK(st.st_mode))
		return entry_fail(e, err, 0, "the path exists and is not a socket");
	/* Non-blocking: a listener with a full backlog must not hang us. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return entry_fail(e, err, errno, "socket");
	r = connect(fd, (const struct sockaddr *)un, sizeof(*un)) == 0 ? EADDRINUSE : errno;
	close(fd);
	if (r != ECONNREFUSED)
		return entry_fail(e, err, r, "the socket exists and is in use");
	if (unlink(e->rule.path) < 0 && errno != ENOENT)
		return entry_fail(e, err, errno, "cannot remove the stale socket");
	return 0;
}

static int entry_listen_unix(struct fwd_entry *e, struct nectl_err *err)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct stat st;

	memcpy(un.sun_path, e->rule.path, strlen(e->rule.path) + 1);
	if (entry_clear_stale(e, &un, err) < 0)
		return -1;
	if (entry_listen_fd(e, AF_UNIX, (const struct sockaddr *)&un, sizeof(un)) < 0)
		return entry_fail(e, err, errno, "cannot listen");
	/* Remembered so destroy removes this socket, not a successor's. */
	if (lstat(e->rule.path, &st) == 0) {
		e->unlink = true;
		e->st_dev = st.st_dev;
		e->st_ino = st.st_ino;
	}
	return 0;
}

static int entry_setup(struct forwarder *f, size_t i, struct nectl_err *err)
{
	struct fwd_entry *e = &f->ent[i];
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = FWD_EV_DATA(FWD_TAG_LISTENER, i)};

	if (e->rule.dir == FWD_TO_HOST)
		return e->rule.is_unix ? 0 : entry_resolve(e, false, err);
	if ((e->rule.is_unix ? entry_listen_unix(e, err) : entry_listen_tcp(e, err)) < 0)
		return -1;
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, e->lfd, &ev) < 0)
		return entry_fail(e, err, errno, "epoll");
	return 0;
}

static int fwd_init(struct forwarder *f, const struct fwd_rule *rules, size_t n,
		    struct nectl_err *err)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = FWD_EV_DATA(FWD_TAG_WAKE, 0)};

	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (f->epfd < 0 || f->evfd < 0 || epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->evfd, &ev) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "port forwarder: epoll");
	for (size_t i = 0; i < n; i++) {
		f->ent[i].rule = rules[i];
		f->ent[i].lfd = -1;
	}
	f->n = n;
	for (size_t i = 0; i < n; i++)
		if (entry_setup(f, i, err) < 0)
			return -1;
	return 0;
}

int fwd_create(struct forwarder **out, const struct fwd_rule *rules, size_t n,
	       struct nectl_err *err)
{
	struct forwarder *f;

	*out = NULL;
	if (fwd_rules_check(rules, n, err) < 0)
		return -1;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->ent = calloc(n ? n : 1, sizeof(*f->ent)))) {
		free(f);
		return nectl_err_set(err, NECTL_ERR_FILE, "port forwarder: out of memory");
	}
	f->epfd = f->evfd = -1;
	f->next_port = FWD_FIRST_PORT;
	f->max_conns = FWD_DEFAULT_MAX_CONNS;
	f->max_total = FWD_DEFAULT_MAX_CONNS_TOTAL;
	for (size_t i = VSOCK_MAX_CONNS; i-- > 0;) {
		f->conn[i].fd = -1;
		f->conn[i].hnext = f->free_list;
		f->free_list = &f->conn[i];
	}
	if (fwd_init(f, rules, n, err) < 0) {
		fwd_destroy(f);
		return -1;
	}
	*out = f;
	return 0;
}

void fwd_set_limits(struct forwarder *f, unsigned per_rule, unsigned per_enclave,
		    void (*note)(void *ctx, const char *line), void *note_ctx)
{
	f->max_conns = per_rule ? per_rule : FWD_DEFAULT_MAX_CONNS;
	f->max_total = per_enclave ? per_enclave : FWD_DEFAULT_MAX_CONNS_TOTAL;
	/* The device's own table is the hard ceiling. */
	if (f->max_total > VSOCK_MAX_CONNS)
		f->max_total = VSOCK_MAX_CONNS;
	f->note = note;
	f->note_ctx = note_ctx;
}

void fwd_attach(struct forwarder *f, const struct pvsock *pv, void (*heartbeat)(void *ctx),
		void *ctx)
{
	f->pv = *pv;
	f->heartbeat = heartbeat;
	f->hb_ctx = ctx;
}

int fwd_start(struct forwarder *f, struct nectl_err *err)
{
	sigset_t all, old;
	int r;

	if (!f->pv.ops || !f->pv.lock || !f->pv.unlock)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "port forwarder: not attached");
	if (f->started)
		return 0;
	/* Signals are the supervisor's business, not this thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&f->thread, NULL, fwd_thread_main, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return nectl_err_sys(err, NECTL_ERR_FILE, r, "port forwarder: cannot start thread");
	f->started = true;
	return 0;
}

void fwd_get_stats(struct forwarder *f, struct fwd_stats *st)
{
	if (f->pv.lock)
		pvsock_lock(&f->pv);
	*st = f->st;
	if (f->pv.unlock)
		pvsock_unlock(&f->pv);
}

static void entry_close(struct fwd_entry *e)
{
	struct stat st;

	if (e->lfd >= 0)
		close(e->lfd);
	if (e->unlink && lstat(e->rule.path, &st) == 0 && st.st_dev == e->st_dev &&
	    st.st_ino == e->st_ino)
		unlink(e->rule.path);
	if (e->ai)
		freeaddrinfo(e->ai);
}

void fwd_destroy(struct forwarder *f)
{
	if (!f)
		return;
	if (f->started) {
		pvsock_lock(&f->pv);
		f->stopping = true;
		f->woken = false;
		fwd_wake(f);
		pvsock_unlock(&f->pv);
		pthread_join(f->thread, NULL);
	}
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		if (f->conn[i].fd >= 0)
			close(f->conn[i].fd);
		free(f->conn[i].in);
		free(f->conn[i].out);
	}
	for (size_t i = 0; i < f->n; i++)
		entry_close(&f->ent[i]);
	if (f->epfd >= 0)
		close(f->epfd);
	if (f->evfd >= 0)
		close(f->evfd);
	free(f->ent);
	free(f);
}
