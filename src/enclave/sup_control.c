/* The supervisor's control socket: one JSON request line per connection,
 * one JSON reply line; "console" then streams the captured console. Peers are
 * other local users too, so requests are bounded, non-blocking, and only the
 * enclave's owner or root may change the enclave. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enclave/sup.h"

static void sup_client_drop(struct sup_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->console = false;
	c->in_len = c->out_len = c->out_off = 0;
}

void sup_accept(struct sup *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++)
		if (s->clients[i].fd < 0) {
			s->clients[i] = (struct sup_client){.fd = fd};
			return;
		}
	/* Full: the client sees the connection close and may retry. */
	close(fd);
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

static json_t *sup_error(int code, const char *msg)
{
	return json_pack("{s:i, s:s}", "Error", code, "Message", msg);
}

static bool sup_peer_may_change(const struct sup *s, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	return cr.uid == 0 || cr.uid == s->owner;
}

static void sup_request(struct sup *s, struct sup_client *c)
{
	json_t *req = json_loadb(c->in, c->in_len, 0, NULL);
	const char *op = json_string_value(json_object_get(req, "op"));

	if (!op) {
		sup_reply(c, sup_error(14, "bad request: expected {\"op\": ...}"));
	} else if (strcmp(op, "console") == 0) {
		if (!s->p->debug) {
			sup_reply(c,
				  sup_error(44, "The enclave was not started with the debug flag "
						"set, include '--debug-mode' in the run-enclave "
						"command"));
		} else {
			sup_reply(c, json_pack("{s:b}", "Ok", 1));
			c->console = true;
			c->pos = 0;
		}
	} else if (strcmp(op, "terminate") == 0) {
		if (!sup_peer_may_change(s, c->fd)) {
			sup_reply(c, sup_error(13, "Permission denied: not the enclave's owner"));
		} else {
			/* The reply goes out after the VM and its files are gone, so the
			 * caller may check that nothing is left. */
			s->exit_info = NULL;
			sup_halt(s, SUP_STOP_TERMINATE);
			rundir_remove(s->p->run_dir, s->p->sid);
			sup_reply(c, json_pack("{s:b}", "Ok", 1));
			if (write(c->fd, c->out, c->out_len) < 0) {
				/* The caller went away; terminate anyway. */
			}
			sup_client_drop(c);
			sup_finish(s, false);
		}
	} else {
		sup_reply(c, sup_error(14, "unknown request"));
	}
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
		sup_reply(c, sup_error(14, "request too long"));
		c->in_len = 0;
	}
}

static void sup_client_write(struct sup_client *c)
{
	ssize_t n;

	if (c->out_off >= c->out_len)
		return;
	n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			sup_client_drop(c);
		return;
	}
	c->out_off += (size_t)n;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

void sup_client_io(struct sup *s, struct sup_client *c, short revents)
{
	if (c->fd < 0)
		return;
	if (revents & (POLLIN | POLLHUP | POLLERR))
		sup_client_read(s, c);
	if (c->fd >= 0 && (revents & POLLOUT))
		sup_client_write(c);
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
		n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
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
