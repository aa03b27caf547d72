/* Internal to the port forwarder (forward*.c): its state, shared by the
 * setup (forward.c), the connections (forward_conn.c), the thread and the
 * device ops (forward_loop.c) and the rule syntax (forward_rule.c).
 *
 * All of it is guarded by the pvsock's lock (the VM's bus lock when
 * emulated): the transport's ops run under it (vCPU threads, the AF_VSOCK
 * transport's thread, or the forwarder's thread when a pvsock call calls
 * back), and the thread takes it around each batch of work. */
#ifndef NECTL_ENCLAVE_FORWARD_INT_H
#define NECTL_ENCLAVE_FORWARD_INT_H

#include <netdb.h>
#include <pthread.h>
#include <sys/types.h>

#include "enclave/forward.h"
#include "nectl/pvsock.h"

#define FWD_HASH_SIZE  1024
#define FWD_FIRST_PORT 1024u /* host ports for connections into the enclave */

/* epoll data: what an event is for, and its index. */
#define FWD_TAG_WAKE	    0ull
#define FWD_TAG_LISTENER    1ull
#define FWD_TAG_CONN	    2ull
#define FWD_EV_DATA(tag, i) ((tag) << 32 | (uint64_t)(i))

enum fwd_conn_state {
	FWD_C_FREE,
	FWD_C_DIAL,	  /* to host: accepted from the guest, no socket yet */
	FWD_C_CONNECTING, /* to host: non-blocking connect in progress */
	FWD_C_OFFERED,	  /* into: REQUEST sent, waiting for `connected` */
	FWD_C_OPEN,
};

struct fwd_conn {
	uint64_t id;
	enum fwd_conn_state state;
	int fd;
	struct fwd_entry *entry;
	const struct addrinfo *ai; /* to host over TCP: the address being tried */
	bool dialled;		   /* to host: the first address was tried */
	struct fwd_conn *hnext;	   /* hash chain, or the free list */
	struct fwd_conn *dnext;	   /* dirty list */
	bool dirty;
	uint32_t events; /* registered with epoll; 0 = not registered */
	/* guest -> socket: a ring of in_cap bytes (up to VSOCK_CONN_BUF, grown
	 * as needed), allocated while not empty */
	uint8_t *in;
	uint32_t in_head, in_len, in_cap;
	/* socket -> guest: what the device did not take of one read */
	uint8_t *out;
	uint32_t out_off, out_len, out_cap;
	bool dev_full;	  /* pvsock_send fell short: wait for `writable` */
	bool guest_eof;	  /* the guest's SHUTDOWN SEND */
	bool guest_norcv; /* the guest's SHUTDOWN RCV */
	bool sock_eof;
	bool wr_done; /* guest -> socket finished (SHUT_WR) */
	bool rd_done; /* socket -> guest finished */
	bool dead;    /* `closed`: the id is gone */
	bool broken;  /* an op could not keep the guest's bytes */
};

struct fwd_entry {
	struct fwd_rule rule;
	struct addrinfo *ai; /* to host over TCP: resolved once, at create */
	int lfd;	     /* into the enclave: the listener */
	bool paused;	     /* out of file descriptors: not polled */
	bool rest_said;	     /* ... and said so in the log */
	unsigned nconns;     /* connections of this rule now */
	bool unlink;	     /* a Unix listener we created */
	dev_t st_dev;
	ino_t st_ino;
};

/* Bytes read from host sockets that the guest has no credit for yet: the
 * forwarder reads more than FWD_OUT_SHARE per connection only while all of
 * them hold less than FWD_OUT_POOL, so a guest that gives no credit on many
 * connections costs the host little (docs/hypervisor.md). */
#define FWD_OUT_POOL  (1u << 20)
#define FWD_OUT_SHARE (4u << 10)

struct forwarder {
	struct fwd_entry *ent;
	size_t n;
	int epfd, evfd;
	bool woken, stopping, started, any_paused;
	uint64_t rest_until; /* paused listeners are polled again (CLOCK_MONOTONIC ms) */
	unsigned max_conns, max_total;
	void (*note)(void *ctx, const char *line);
	void *note_ctx;
	bool busy; /* the thread holds the lock and will look at the dirty list */
	pthread_t thread;
	struct pvsock pv; /* the enclave's vsock, and its lock */
	void (*heartbeat)(void *ctx);
	void *hb_ctx;
	uint32_t next_port;
	struct fwd_stats st;
	uint64_t out_held; /* socket -> guest bytes the device did not take */
	struct fwd_conn *hash[FWD_HASH_SIZE];
	struct fwd_conn *free_list, *dirty;
	struct fwd_conn conn[VSOCK_MAX_CONNS];
	uint8_t scratch[VSOCK_MAX_PAYLOAD]; /* one socket read, thread only */
};

/* forward_rule.c */
const char *fwd_rule_option(enum fwd_dir dir);
/* Duplicate to-host ports or into-enclave listen addresses. */
int fwd_rules_check(const struct fwd_rule *rules, size_t n, struct nectl_err *err);

/* forward_conn.c */
struct fwd_conn *fwd_conn_find(struct forwarder *f, uint64_t id);
/* A free connection for `e`, or NULL at the rule's or the enclave's cap. */
struct fwd_conn *fwd_conn_new(struct forwarder *f, struct fwd_entry *e);
/* Makes it reachable by c->id, for the ops. */
void fwd_conn_add(struct forwarder *f, struct fwd_conn *c);
void fwd_conn_forget(struct forwarder *f, struct fwd_conn *c);
/* Has the thread service it soon (the dirty list), waking it if need be. */
void fwd_conn_touch(struct forwarder *f, struct fwd_conn *c);
void fwd_conn_release(struct forwarder *f, struct fwd_conn *c);
/* Makes the guest -> socket ring hold `need` bytes; -1 when out of memory. */
int fwd_conn_in_room(struct forwarder *f, struct fwd_conn *c, uint32_t need);
/* Does whatever the connection can do now without blocking. */
void fwd_conn_service(struct forwarder *f, struct fwd_conn *c);
void fwd_wake(struct forwarder *f);

/* forward_loop.c */
void *fwd_thread_main(void *arg);
void fwd_listeners_resume(struct forwarder *f);

#endif
