/* One error vocabulary for every nectl library: what went wrong, in nectl's
 * own terms, with a message and the errno behind it. Libraries never choose
 * nitro-cli's E-codes: src/cli/errmap.c maps kinds to them, in one table. */
#ifndef NECTL_ERR_H
#define NECTL_ERR_H

#include <stddef.h>

enum nectl_kind {
	NECTL_OK = 0,
	NECTL_ERR_MISSING_ARG,	  /* a mandatory argument is missing */
	NECTL_ERR_CONFLICT_ARG,	  /* two arguments that exclude each other */
	NECTL_ERR_INVALID_ARG,	  /* an argument's value */
	NECTL_ERR_IPC,		  /* a pipe between nectl's own processes */
	NECTL_ERR_SPAWN,	  /* starting the enclave process */
	NECTL_ERR_RUNDIR,	  /* the run directory */
	NECTL_ERR_SOCKET,	  /* a socket: listen, connect, an answer */
	NECTL_ERR_EVENT,	  /* event sources: eventfd, signalfd, epoll */
	NECTL_ERR_REQUEST,	  /* a malformed control request */
	NECTL_ERR_LOCK,		  /* a lock file */
	NECTL_ERR_THREAD,	  /* starting or joining a thread */
	NECTL_ERR_SERDE,	  /* JSON, CBOR or --config content */
	NECTL_ERR_FILE,		  /* opening, reading or writing a file */
	NECTL_ERR_CPU_CONFIG,	  /* the CPUs asked for (a duplicate) */
	NECTL_ERR_CPU_POOL,	  /* a CPU not available to enclaves */
	NECTL_ERR_CPU_COUNT,	  /* more CPUs than are available */
	NECTL_ERR_CPU_ID,	  /* a CPU number that is not one */
	NECTL_ERR_CPU_RANGE,	  /* a CPU range that is not one */
	NECTL_ERR_MEM_REQUEST,	  /* too little memory asked for the image */
	NECTL_ERR_MEM_AVAILABLE,  /* not enough memory on the host */
	NECTL_ERR_MEM_OVERFLOW,	  /* the image does not fit in the memory */
	NECTL_ERR_ENCLAVE_FD,	  /* the NE device refused a new enclave */
	NECTL_ERR_IOCTL,	  /* an NE ioctl failed */
	NECTL_ERR_EIF,		  /* a malformed or corrupted image */
	NECTL_ERR_BOOT,		  /* the enclave did not boot (no heartbeat) */
	NECTL_ERR_REFUSED,	  /* the enclave process refused or failed a command */
	NECTL_ERR_PROCESS,	  /* the enclave process ended without an answer */
	NECTL_ERR_CONSOLE,	  /* the console: not debug mode, or cannot connect */
	NECTL_ERR_CONSOLE_OUTPUT, /* writing the console out */
	NECTL_ERR_BUILD,	  /* building an image */
	NECTL_ERR_DOCKER_BUILD,	  /* docker: building the image */
	NECTL_ERR_DOCKER_PULL,	  /* docker: getting the image */
	NECTL_ERR_HASH,		  /* hashing (PCRs) */
	NECTL_ERR_NAMING,	  /* no enclave, or several, by that name */
	NECTL_ERR_SIGCHECK,	  /* a signature that does not verify */
	NECTL_ERR_SIGN,		  /* signing */
	NECTL_ERR_KINDS		  /* how many kinds there are */
};

#define NECTL_ERR_MSG_MAX 768

struct nectl_err {
	enum nectl_kind kind;
	int errnum; /* the errno behind it, 0 if none */
	char msg[NECTL_ERR_MSG_MAX];
};

/* Records kind and message (errnum 0); returns -1 so callers can write
 * `return nectl_err_set(err, ...)`. err may be NULL. */
int nectl_err_set(struct nectl_err *err, enum nectl_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As nectl_err_set, with errnum and ": strerror(errno_value)" appended. */
int nectl_err_sys(struct nectl_err *err, enum nectl_kind kind, int errno_value, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));

/* Appends the OpenSSL error queue's first reason (if any) and clears the queue. */
int nectl_err_ssl(struct nectl_err *err, enum nectl_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
