/* One error vocabulary for every nectl library. Codes are nitro-cli's E-numbers,
 * so the command-line front end maps them to exit statuses without a table. */
#ifndef NECTL_ERR_H
#define NECTL_ERR_H

#include <stddef.h>

enum nectl_code {
	NECTL_OK = 0,
	NECTL_E_MISSING_ARG = 1,
	NECTL_E_CONFLICT_ARG = 2,
	NECTL_E_INVALID_ARG = 3,
	NECTL_E_SERDE = 17,
	NECTL_E_FILE = 19,
	NECTL_E_EIF = 35,
	NECTL_E_BUILD = 48,
	NECTL_E_HASH = 57,
	NECTL_E_SIGCHECK = 59,
	NECTL_E_SIGN = 60,
};

#define NECTL_ERR_MSG_MAX 768

struct nectl_err {
	int code;
	char msg[NECTL_ERR_MSG_MAX];
};

/* Records code and message; returns -1 so callers can write
 * `return nectl_err_set(err, ...)`. err may be NULL. */
int nectl_err_set(struct nectl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* As nectl_err_set, with ": strerror(errno_value)" appended. */
int nectl_err_sys(struct nectl_err *err, int code, int errno_value, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Appends the OpenSSL error queue's first reason (if any) and clears the queue. */
int nectl_err_ssl(struct nectl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
