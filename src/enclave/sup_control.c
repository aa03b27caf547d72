/* The supervisor's control socket: one JSON request line per connection,
 * one JSON reply line; "console" then streams the captured console. Peers are
 * other local users too, so requests are bounded and non-blocking, idle
 * clients are dropped, the enclave's owner and root always find a slot, and
 * only they may stream the console or terminate the enclave (SO_PEERCRED). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enclave/sup.h"

#define MS (1000000ull)

static void sup_client_drop(struct sup_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->console = false;
	c->in_len = c->out_len = c->out_off = 0;
}

void sup_note(void *ctx, const char *line)
{
	struct sup *s = ctx;
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "\r\n[nectl: %s]\r\n", line);

	if (n > 0)
		console_feed(&s->cons, (const uint8_t *)buf,
			     (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static bool sup_privileged(const struct sup *s, uid_t uid)
{
	return uid == 0 || uid == s->owner;
}

static uid_t sup_peer_uid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return (uid_t)-1;
	return cr.uid;
}

/* The slot for a new client when all are taken, for the owner or root
 * only: the oldest client not streaming the console (one that never sent a
 * request, or is done with it), else the oldest console stream. */
static struct sup_client *sup_evict(struct sup *s)
{
	struct sup_client *victim = NULL;

	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++) {
		struct sup_client *c = &s->clients[i];

		if (!victim || (victim->console && !c->console) ||
		    (victim->console == c->console && c->idle_since < victim->idle_since))
			victim = c;
	}
	sup_client_drop(victim);
	return victim;
}

static void sup_admit(struct sup *s, int fd)
{
	uid_t uid = sup_peer_uid(fd);
	struct sup_client *slot = NULL;

	for (unsigned i = 0; i < SUP_MAX_CLIENTS && !slot; i++)
		if (s->clients[i].fd < 0)
			slot = &s->clients[i];
	if (!slot && sup_privileged(s, uid))
		slot = sup_evict(s);
	if (!slot) {
		/* Full, and a stranger: the connection closes; it may retry. */
		close(fd);
		return;
	}
	*slot = (struct sup_client){.fd = fd, .uid = uid, .idle_since = sup_now_ns()};
}

/* Level-triggered poll would wake at once for a listener whose accept
 * keeps failing, so it rests; the first rest is said in the log. */
static void sup_accept_rest(struct sup *s, int e)
{
	char line[160];

	s->accept_rest_until = sup_now_ns() + SUP_ACCEPT_REST_MS * MS;
	if (s->accept_rest_said)
		return;
	s->accept_rest_said = true;
	snprintf(line, sizeof(line),
		 "control socket: out of file descriptors or memory (%s); not accepting for %u ms "
		 "at a time until some are free (said once)",
		 strerror(e), SUP_ACCEPT_REST_MS);
	sup_note(s, line);
}

static void sup_accept(struct sup *s)
{
	/* A few per wake-up: a flood of connections cannot starve the rest. */
	for (unsigned k = 0; k < 4; k++) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			sup_admit(s, fd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			sup_accept_rest(s, errno);
		return;
	}
}

static void sup_reply(struct sup_client *c, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	size_t n = text ? strlen(text) : 0;

	json_decref(j);
	if (text && n + 1 <= sizeof(c->out)) {
		memcpy(c->out, text, n);
		c->out[n] = '\n';
		c->out_len = n + 1;
		c->out_off = 0;
	}
	free(text);
}

static json_t *sup_error(enum nectl_kind kind, const char *msg)
{
	return json_pack("{s:i, s:s}", "Error", (int)kind, "Message", msg);
}

/* Who may stream the console or terminate: the enclave's owner and root;
 * everyone else is told why, with the code the command would fail with. */
static bool sup_permitted(const struct sup *s, struct sup_client *c, enum nectl_kind kind,
			  const char *what)
{
	char msg[160];

	if (sup_privileged(s, c->uid))
		return true;
	snprintf(msg, sizeof(msg),
		 "Permission denied: only the enclave's owner (uid %u) or root may %s",
		 (unsigned)s->owner, what);
	sup_reply(c, sup_error(kind, msg));
	return false;
}

static void sup_console_start(struct sup *s, struct sup_client *c)
{
	if (!s->p->debug) {
		sup_reply(c, sup_error(NECTL_ERR_CONSOLE,
				       "The enclave was not started with the debug flag set, "
				       "include '--debug-mode' in the run-enclave command"));
	} else if (sup_permitted(s, c, NECTL_ERR_CONSOLE, "stream its console")) {
		sup_reply(c, json_pack("{s:b}", "Ok", 1));
		c->console = true;
		c->pos = 0;
	}
}

/* The answer goes out first: the caller then waits for this process to
 * end, which is when the VM's memory and CPUs are free again. */
_Noreturn static void sup_terminate(struct sup *s, struct sup_client *c)
{
	sup_reply(c, json_pack("{s:b}", "Ok", 1));
	if (send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* The caller went away; terminate anyway. */
	}
	sup_client_drop(c);
	s->exit_info = NULL;
	sup_halt(s, SUP_STOP_TERMINATE);
	sup_finish(s, false);
}

static void sup_request(struct sup *s, struct sup_client *c)
{
	json_t *req = json_loadb(c->in, c->in_len, 0, NULL);
	const char *op = json_string_value(json_object_get(req, "op"));

	c->idle_since = sup_now_ns();
	if (!op)
		sup_reply(c, sup_error(NECTL_ERR_REQUEST, "bad request: expected {\"op\": ...}"));
	else if (strcmp(op, "console") == 0)
		sup_console_start(s, c);
	else if (strcmp(op, "terminate") != 0)
		sup_reply(c, sup_error(NECTL_ERR_REQUEST, "unknown request"));
	else if (sup_permitted(s, c, NECTL_ERR_REFUSED, "terminate it"))
		sup_terminate(s, c);
	json_decref(req);
	c->in_len = 0;
}

static void sup_client_read(struct sup *s, struct sup_client *c)
{
	ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
	char *nl;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		sup_client_drop(c);
		return;
	}
	if (n < 0 || c->console)
		return; /* console clients only listen */
	c->in_len += (size_t)n;
	nl = memchr(c->in, '\n', c->in_len);
	if (nl) {
		c->in_len = (size_t)(nl - c->in);
		sup_request(s, c);
	} else if (c->in_len == sizeof(c->in)) {
		sup_reply(c, sup_error(NECTL_ERR_REQUEST, "request too long"));
		c->in_len = 0;
	}
}

static void sup_client_write(struct sup_client *c)
{
	ssize_t n;

	if (c->out_off >= c->out_len)
		return;
	n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			sup_client_drop(c);
		return;
	}
	c->out_off += (size_t)n;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

static void sup_client_io(struct sup *s, struct sup_client *c, short revents)
{
	if (c->fd < 0)
		return;
	if (revents & (POLLIN | POLLHUP | POLLERR))
		sup_client_read(s, c);
	if (c->fd >= 0 && (revents & POLLOUT))
		sup_client_write(c);
}

nfds_t sup_control_fds(struct sup *s, struct pollfd *pfd, struct sup_client **who)
{
	nfds_t n = 0;

	if (s->accept_rest_until && sup_now_ns() >= s->accept_rest_until)
		s->accept_rest_until = 0;
	if (!s->accept_rest_until && s->lfd >= 0) {
		who[n] = NULL;
		pfd[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
	}
	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++) {
		struct sup_client *c = &s->clients[i];

		if (c->fd < 0)
			continue;
		who[n] = c;
		pfd[n++] = (struct pollfd){
		    .fd = c->fd,
		    .events = (short)(POLLIN | (c->out_len > c->out_off ? POLLOUT : 0))};
	}
	return n;
}

static void sup_expire(struct sup *s)
{
	uint64_t now = sup_now_ns();

	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++) {
		struct sup_client *c = &s->clients[i];

		if (c->fd >= 0 && !c->console && now - c->idle_since >= SUP_IDLE_MS * MS)
			sup_client_drop(c);
	}
}

void sup_control_io(struct sup *s, const struct pollfd *pfd, struct sup_client *const *who,
		    nfds_t n)
{
	for (nfds_t i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (who[i])
			sup_client_io(s, who[i], pfd[i].revents);
		else
			sup_accept(s);
	}
	sup_expire(s);
}

uint64_t sup_control_deadline(const struct sup *s)
{
	uint64_t t = s->accept_rest_until;

	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++) {
		const struct sup_client *c = &s->clients[i];
		uint64_t idle = c->idle_since + SUP_IDLE_MS * MS;

		if (c->fd >= 0 && !c->console && (!t || idle < t))
			t = idle;
	}
	return t;
}

void sup_console_pump(struct sup *s)
{
	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++) {
		struct sup_client *c = &s->clients[i];

		/* A slow reader loses what the ring overwrote; it never holds
		 * back the guest. */
		while (c->fd >= 0 && c->console) {
			if (c->out_len == 0) {
				c->out_len =
				    console_read(&s->cons, &c->pos, c->out, sizeof(c->out));
				c->out_off = 0;
				if (c->out_len == 0)
					break;
			}
			sup_client_write(c);
			if (c->out_len)
				break; /* the socket is full: POLLOUT brings us back */
		}
	}
}

/* Blocking, bounded by SO_SNDTIMEO: the last of the console reaches the
 * client before the stream ends, unless the client stops reading. */
static void sup_client_flush(struct sup *s, struct sup_client *c)
{
	struct timeval tv = {.tv_sec = 1};

	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
	for (;;) {
		ssize_t n;

		if (c->out_off == c->out_len) {
			c->out_len = console_read(&s->cons, &c->pos, c->out, sizeof(c->out));
			c->out_off = 0;
			if (c->out_len == 0)
				return;
		}
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		c->out_off += (size_t)n;
	}
}

void sup_clients_close(struct sup *s)
{
	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++) {
		struct sup_client *c = &s->clients[i];

		if (c->fd >= 0 && c->console)
			sup_client_flush(s, c);
		sup_client_drop(c);
	}
}
