/* Internal to the AF_VSOCK transport (afvsock*.c): its state, shared by the
 * setup, thread and listeners (afvsock.c), the connections and the pvsock
 * calls (afvsock_conn.c), and the console (afvsock_console.c).
 *
 * All of it is guarded by the transport's mutex, except what only the
 * thread touches while it waits in epoll (the timers it reads are written
 * under the mutex by the thread itself). */
#ifndef NECTL_ACCEL_NITRO_AFVSOCK_INT_H
#define NECTL_ACCEL_NITRO_AFVSOCK_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "nectl/afvsock.h"

/* epoll data: what an event is for, and its index. */
#define AFV_TAG_WAKE	    0ull
#define AFV_TAG_LISTEN	    1ull
#define AFV_TAG_CONN	    2ull
#define AFV_TAG_CONSOLE	    3ull
#define AFV_EV_DATA(tag, i) ((tag) << 32 | (uint64_t)(i))

/* Connection ids carry their slot, and a sequence number above it so that
 * an id is never given twice. */
#define AFV_SLOT_BITS 10
#define AFV_SLOT_MASK ((1u << AFV_SLOT_BITS) - 1)

enum afv_state {
	AFV_FREE,
	AFV_HEARTBEAT,	/* the transport's own: the 0xB7 exchange */
	AFV_PENDING,	/* accepted, the host said yes, `connected` not yet */
	AFV_CONNECTING, /* the host's connect, not yet answered */
	AFV_OPEN,
};

struct afv_conn {
	uint64_t id;
	enum afv_state state;
	int fd;
	uint32_t events;  /* epoll events since the last service */
	uint32_t held;	  /* delivered by `data`, not yet credited */
	bool rd_eof;	  /* the enclave's EOF, told as SHUTDOWN SEND */
	bool peer_norcv;  /* the enclave does not receive, told as SHUTDOWN RCV */
	bool host_norcv;  /* the host's SHUTDOWN RCV */
	bool host_nosend; /* the host's SHUTDOWN SEND */
	bool want_write;  /* a short send: `writable` when there is room */
	bool send_failed; /* a send failed: look at what the enclave did */
	bool queued;	  /* on the service list */
	int svc_next;	  /* the service list */
	int free_next;	  /* the free list */
};

struct afv_listener {
	uint32_t port;
	int fd; /* -1: a free entry */
	bool resting;
};

struct afvsock {
	struct afvsock_cfg cfg;
	const struct vsock_host_ops *ops;
	void *ctx;
	pthread_mutex_t mu;
	pthread_t thread;
	bool started, stopping, woken;
	int epfd, evfd;
	struct afv_listener lis[AFVSOCK_MAX_LISTEN];
	uint64_t rest_until; /* resting listeners come back (CLOCK_MONOTONIC ms), 0: none */
	int cons_fd;
	bool cons_up;		/* connected, not only connecting */
	uint64_t cons_retry_at; /* the next try (ms), 0: none due */
	unsigned cons_wait_ms;	/* the wait after the next failure */
	uint64_t seq;
	unsigned nconns;
	int free_head, svc_head, svc_tail;
	struct afv_conn conn[VSOCK_MAX_CONNS];
	uint8_t buf[VSOCK_MAX_PAYLOAD]; /* one read, the thread only */
};

/* afvsock.c */
uint64_t afv_now_ms(void);
void afv_wake(struct afvsock *a);
/* The socket's pending error (SO_ERROR, which clears it), 0 if none. */
int afv_sock_error(int fd);
/* Closes the listener on `port`, if any. */
void afv_listener_drop(struct afvsock *a, uint32_t port);

/* afvsock_conn.c */
void afv_conns_init(struct afvsock *a);
/* Takes the accepted socket `fd` from the enclave on a listener's `port`. */
void afv_conn_accept(struct afvsock *a, uint32_t port, int fd);
/* Runs the service list once: connections queued since the last round. */
void afv_conns_service(struct afvsock *a);
/* An epoll event for slot i. */
void afv_conn_event(struct afvsock *a, uint32_t i, uint32_t events);
void afv_conns_close(struct afvsock *a);
extern const struct pvsock_ops afv_pvsock_ops;

/* afvsock_console.c */
/* Connects (the thread's start, and when a retry is due). */
void afv_console_try(struct afvsock *a);
/* The console socket is ready: connected (or failed), or bytes. */
void afv_console_event(struct afvsock *a);

#endif
