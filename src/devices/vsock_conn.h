/* Internal to the vsock device: the parsed packet header, the connection
 * table (vsock_conn.c) and the queue side (vsock.c) each file needs of the
 * other. */
#ifndef NECTL_VSOCK_CONN_H
#define NECTL_VSOCK_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "nectl/vsock.h"

#define VSOCK_HDR_SIZE	  44
#define VSOCK_TYPE_STREAM 1
#define VSOCK_RST_QUEUE	  256 /* connectionless RSTs waiting for rx buffers */
/* Rx chains filled per kick or host call: twice the largest ring, so a
 * driver that posts a full ring and kicks is served at once, while one
 * that keeps posting tiny buffers gives the caller (and the bus lock) back
 * after this many. The rest waits for the next kick or host call. */
#define VSOCK_RX_BUDGET (2 * VIRTQ_MAX_SIZE)
/* The connection map: chains of slots hashed by port pair, twice as many
 * buckets as connections so chains stay short. */
#define VSOCK_HASH_BITS 11
#define VSOCK_HASH_SIZE (1u << VSOCK_HASH_BITS)

enum vsock_op {
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

/* A packet header in host byte order. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

enum vsock_state {
	CONN_FREE,
	CONN_GUEST_INIT, /* guest REQUEST taken, the host has not accepted yet */
	CONN_HOST_INIT,	 /* our REQUEST queued or sent, waiting for RESPONSE */
	CONN_ESTABLISHED,
	CONN_CLOSING, /* the host let go; waiting for the guest's RST */
};

/* Control packets a connection owes the guest, sent before or after its
 * data as vsock_conn_next_packet decides. */
#define PEND_REQUEST  1u
#define PEND_RESPONSE 2u
#define PEND_SHUTDOWN 4u
#define PEND_CREDIT   8u

struct vsock_conn {
	uint64_t id; /* 0 when free */
	enum vsock_state state;
	uint32_t host_port, guest_port;
	bool heartbeat; /* port 9000, served by the device */
	bool heartbeat_told;
	bool host_attached; /* the host gets callbacks for it */
	bool want_write;    /* a send was cut short; call writable on room */
	uint32_t pending;   /* PEND_* */
	uint32_t shut_send; /* SHUTDOWN flags to send */
	uint32_t peer_shut; /* SHUTDOWN flags the guest sent */
	uint32_t local_shut;
	/* To the guest: its window, and what we delivered into it. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* From the guest: what it sent, what the host consumed, and the
	 * fwd_cnt and buf_alloc it last saw from us (its credit; buf_alloc is
	 * never lowered, as Linux's credit arithmetic would wrap). */
	uint32_t rx_cnt, fwd_cnt, fwd_sent, rx_win;
	/* Bytes queued for the guest: a ring of buf_cap, a power of two that
	 * grows with need up to VSOCK_CONN_BUF, freed when empty. */
	uint8_t *buf;
	uint32_t buf_head, buf_len, buf_cap;
	/* What this connection counts toward the device's memory, and of that
	 * what it takes from the pool, as last accounted. */
	uint32_t mem, charged;
	int rx_prev, rx_next; /* the list of connections with packets to send */
	bool in_rxq;
	int hnext; /* next slot in its hash chain, or in the free list */
};

struct vsock_dev {
	struct virtio_mmio mmio;
	const struct guestmem *gm;
	uint64_t guest_cid;
	const struct vsock_host_ops *ops;
	void *ctx;
	struct vsock_conn conn[VSOCK_MAX_CONNS];
	unsigned nconns, nclosing;
	int hash[VSOCK_HASH_SIZE]; /* first slot of each chain, -1 if none */
	uint64_t hash_key[2];	   /* random, so a guest cannot pick colliding ports */
	int free_head;		   /* first free slot, -1 if none */
	size_t mem, pool_used;	   /* sums of the connections' mem and charged */
	uint64_t generation;
	int rxq_head, rxq_tail;
	struct vsock_hdr rst[VSOCK_RST_QUEUE];
	unsigned rst_head, rst_n;
	unsigned depth; /* nesting of tx processing and host calls */
	bool rx_wanted; /* deliver to the guest once depth drops to 0 */
	uint64_t heartbeat_ns;
	uint8_t pkt[VSOCK_MAX_PAYLOAD]; /* one payload copied out of the guest */
};

/* vsock.c */
void vsock_queue_rst(struct vsock_dev *dev, uint64_t src_cid, uint32_t src_port, uint32_t dst_port);
void vsock_kick_rx(struct vsock_dev *dev);
void vsock_enter(struct vsock_dev *dev);
void vsock_leave(struct vsock_dev *dev);

/* vsock_conn.c */
/* Sets up the empty table of a zeroed device. */
void vsock_conn_init(struct vsock_dev *dev);
void vsock_conn_reset_all(struct vsock_dev *dev, bool tell_host);
/* A guest packet to CID 3, already checked for CIDs, type and length. */
void vsock_conn_recv(struct vsock_dev *dev, const struct vsock_hdr *h, const uint8_t *payload);
/* The connection whose packet goes out next, or NULL. */
struct vsock_conn *vsock_conn_next(struct vsock_dev *dev);
/* Fills `h` with the next packet of `c` and returns how many of its queued
 * bytes (at most `room`) follow it as payload; vsock_conn_sent accounts
 * for them once they are in the guest's buffer. */
uint32_t vsock_conn_build(struct vsock_dev *dev, struct vsock_conn *c, struct vsock_hdr *h,
			  uint32_t room);
void vsock_conn_sent(struct vsock_dev *dev, struct vsock_conn *c, const struct vsock_hdr *h,
		     uint32_t n);
/* The queued bytes of `c` from `off` on, as far as the ring runs without
 * wrapping; `*len` (at most the bytes wanted) says how many. */
const uint8_t *vsock_conn_queued(const struct vsock_conn *c, uint32_t off, uint32_t *len);

#endif
