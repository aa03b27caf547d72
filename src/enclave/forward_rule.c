/* forward_rule.c: the --forward-to-host and --forward-into-enclave rule
 * syntax, and the checks across a rule set. Every message names the option
 * and the rule as given (control characters shown as '?'), so the user can
 * tell which of several rules is wrong. */
#include <stdio.h>
#include <string.h>

#include "enclave/forward_int.h"
#include "nectl/app_report.h"

const char *fwd_rule_option(enum fwd_dir dir)
{
	return dir == FWD_TO_HOST ? "--forward-to-host" : "--forward-into-enclave";
}

/* Decimal digits only: strtoul would take signs, spaces and hex. */
static bool parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static int rule_fail(const struct fwd_rule *r, struct nectl_err *err, const char *what)
{
	return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "%s '%s': %s", fwd_rule_option(r->dir),
			     r->text, what);
}

static int rule_parse_vport(struct fwd_rule *r, const char *s, size_t len, struct nectl_err *err)
{
	uint64_t v;

	if (!parse_u64(s, len, 0xffffffffu, &v))
		return rule_fail(r, err,
				 "the vsock port must be a decimal number in 1..4294967295");
	if (v == 0)
		return rule_fail(r, err, "vsock port 0 is not valid");
	if (r->dir == FWD_TO_HOST && v == VSOCK_HEARTBEAT_PORT)
		return rule_fail(
		    r, err, "port 9000 is the enclave's boot heartbeat and cannot be forwarded");
	/* The supervisor takes the first connection there (nectl/app_report.h). */
	if (r->dir == FWD_TO_HOST && v == APP_REPORT_PORT)
		return rule_fail(r, err,
				 "port 9009 is where nectl's init reports the app's end and cannot "
				 "be forwarded");
	r->port = (uint32_t)v;
	return 0;
}

static int rule_parse_unix(struct fwd_rule *r, const char *s, size_t len, struct nectl_err *err)
{
	if (!len)
		return rule_fail(r, err, "empty Unix socket path");
	if (len >= sizeof(r->path))
		return rule_fail(r, err, "Unix socket path longer than 107 bytes");
	if (memchr(s, '\0', len))
		return rule_fail(r, err, "Unix socket path contains a NUL byte");
	memcpy(r->path, s, len);
	r->path[len] = '\0';
	r->is_unix = true;
	return 0;
}

/* HOST, or [IPv6] with the brackets dropped. */
static int rule_parse_host(struct fwd_rule *r, const char *s, size_t len, struct nectl_err *err)
{
	if (len && s[0] == '[') {
		if (len < 2 || s[len - 1] != ']')
			return rule_fail(r, err, "unclosed '[' in the TCP host");
		s++;
		len -= 2;
	} else if (memchr(s, ':', len) || memchr(s, ']', len)) {
		return rule_fail(r, err, "an IPv6 TCP host must be written in [brackets]");
	}
	if (!len)
		return rule_fail(r, err, "empty TCP host");
	if (len >= sizeof(r->host))
		return rule_fail(r, err, "TCP host longer than 255 bytes");
	memcpy(r->host, s, len);
	r->host[len] = '\0';
	return 0;
}

static int rule_parse_tcp(struct fwd_rule *r, const char *s, size_t len, struct nectl_err *err)
{
	const char *colon = NULL;
	uint64_t port;

	for (size_t i = 0; i < len; i++)
		if (s[i] == ':')
			colon = s + i;
	if (!colon)
		return rule_fail(r, err, "expected tcp:HOST:PORT");
	if (rule_parse_host(r, s, (size_t)(colon - s), err) < 0)
		return -1;
	len -= (size_t)(colon + 1 - s);
	if (!parse_u64(colon + 1, len, 65535, &port) || port == 0)
		return rule_fail(r, err, "the TCP port must be a decimal number in 1..65535");
	snprintf(r->service, sizeof(r->service), "%u", (unsigned)port);
	r->is_unix = false;
	return 0;
}

static int rule_parse_addr(struct fwd_rule *r, const char *s, size_t len, struct nectl_err *err)
{
	if (len >= 5 && !memcmp(s, "unix:", 5))
		return rule_parse_unix(r, s + 5, len - 5, err);
	if (len >= 4 && !memcmp(s, "tcp:", 4))
		return rule_parse_tcp(r, s + 4, len - 4, err);
	return rule_fail(r, err, "the address must be unix:PATH or tcp:HOST:PORT");
}

int fwd_rule_parse(enum fwd_dir dir, const char *spec, struct fwd_rule *r, struct nectl_err *err)
{
	size_t len = strlen(spec);
	const char *eq;

	memset(r, 0, sizeof(*r));
	r->dir = dir;
	snprintf(r->text, sizeof(r->text), "%s", spec);
	/* The text goes into one-line messages and the log: a rule from a
	 * --config file may hold a newline or an escape sequence. */
	for (char *c = r->text; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (len >= sizeof(r->text))
		return rule_fail(r, err, "rule longer than 511 bytes");
	if (dir == FWD_TO_HOST) {
		/* The port has no '=', the path may. */
		eq = strchr(spec, '=');
		if (!eq)
			return rule_fail(r, err, "expected PORT=unix:PATH or PORT=tcp:HOST:PORT");
		if (rule_parse_vport(r, spec, (size_t)(eq - spec), err) < 0)
			return -1;
		return rule_parse_addr(r, eq + 1, len - (size_t)(eq + 1 - spec), err);
	}
	eq = strrchr(spec, '=');
	if (!eq)
		return rule_fail(r, err, "expected unix:PATH=PORT or tcp:HOST:PORT=PORT");
	if (rule_parse_addr(r, spec, (size_t)(eq - spec), err) < 0)
		return -1;
	return rule_parse_vport(r, eq + 1, strlen(eq + 1), err);
}

static bool rules_clash(const struct fwd_rule *a, const struct fwd_rule *b)
{
	if (a->dir != b->dir)
		return false;
	if (a->dir == FWD_TO_HOST)
		return a->port == b->port;
	if (a->is_unix != b->is_unix)
		return false;
	if (a->is_unix)
		return !strcmp(a->path, b->path);
	return !strcmp(a->host, b->host) && !strcmp(a->service, b->service);
}

int fwd_rules_check(const struct fwd_rule *rules, size_t n, struct nectl_err *err)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++) {
			if (!rules_clash(&rules[i], &rules[j]))
				continue;
			return nectl_err_set(
			    err, NECTL_ERR_INVALID_ARG, "%s '%s' and '%s': %s",
			    fwd_rule_option(rules[i].dir), rules[j].text, rules[i].text,
			    rules[i].dir == FWD_TO_HOST ? "the same vsock port twice"
							: "the same listen address twice");
		}
	return 0;
}
