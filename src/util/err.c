/* The project's error values: kind, message, and the errno or OpenSSL
 * reason appended when there is one. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "nectl/err.h"

__attribute__((format(printf, 3, 0))) static void
err_vformat(struct nectl_err *err, enum nectl_kind kind, const char *fmt, va_list ap)
{
	err->kind = kind;
	err->errnum = 0;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

static void err_append(struct nectl_err *err, const char *suffix)
{
	size_t used = strlen(err->msg);

	snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", suffix);
}

int nectl_err_set(struct nectl_err *err, enum nectl_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	err_vformat(err, kind, fmt, ap);
	va_end(ap);
	return -1;
}

int nectl_err_sys(struct nectl_err *err, enum nectl_kind kind, int errno_value, const char *fmt,
		  ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	err_vformat(err, kind, fmt, ap);
	va_end(ap);
	err->errnum = errno_value;
	err_append(err, strerror(errno_value));
	return -1;
}

int nectl_err_ssl(struct nectl_err *err, enum nectl_kind kind, const char *fmt, ...)
{
	va_list ap;
	unsigned long e = ERR_peek_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	if (err) {
		va_start(ap, fmt);
		err_vformat(err, kind, fmt, ap);
		va_end(ap);
		if (reason)
			err_append(err, reason);
	}
	ERR_clear_error();
	return -1;
}
