/* The measuring pipeline: every section byte feeds the CRC and the PCR0 and
 * PCR1/PCR2 SHA-384 streams, on two threads over shared chunk buffers. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "eif/hasher.h"

#define HASHER_SLOTS 4

struct hasher_slot {
	uint8_t *buf;
	size_t len;
	enum hasher_part part;
	bool crc_by_a;
	uLong crc;
	unsigned pending; /* workers yet to finish this slot */
};

struct hasher {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread_a, thread_b;
	struct hasher_slot slots[HASHER_SLOTS];
	uint64_t submitted; /* slots handed out, in order */
	uint64_t done_a, done_b;
	uint64_t combined;
	bool stop, started_a, started_b;
	bool measured; /* PCRs finalized: later chunks are CRC-only */
	int load;	    /* work given to A minus work given to B, in chunks */
	EVP_MD_CTX *all;    /* worker A */
	EVP_MD_CTX *boot;   /* worker B */
	EVP_MD_CTX *app;    /* worker B */
	uLong crc;
	uint64_t crc_len;
};

static void hasher_work(struct hasher_slot *s, bool is_a, struct hasher *h)
{
	if (is_a && s->part != HASHER_NONE)
		EVP_DigestUpdate(h->all, s->buf, s->len);
	if (!is_a && s->part != HASHER_NONE)
		EVP_DigestUpdate(s->part == HASHER_BOOT ? h->boot : h->app, s->buf, s->len);
	if (s->crc_by_a == is_a)
		s->crc = crc32(0L, s->buf, (uInt)s->len);
}

static void *hasher_worker(void *arg, bool is_a)
{
	struct hasher *h = arg;
	uint64_t *done = is_a ? &h->done_a : &h->done_b;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct hasher_slot *s;

		while (*done == h->submitted && !h->stop)
			pthread_cond_wait(&h->cond, &h->lock);
		if (*done == h->submitted)
			break;
		s = &h->slots[*done % HASHER_SLOTS];
		pthread_mutex_unlock(&h->lock);
		hasher_work(s, is_a, h);
		pthread_mutex_lock(&h->lock);
		s->pending--;
		(*done)++;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void *hasher_worker_a(void *arg)
{
	return hasher_worker(arg, true);
}

static void *hasher_worker_b(void *arg)
{
	return hasher_worker(arg, false);
}

static void hasher_free(struct hasher *h)
{
	for (int i = 0; i < HASHER_SLOTS; i++)
		free(h->slots[i].buf);
	EVP_MD_CTX_free(h->all);
	EVP_MD_CTX_free(h->boot);
	EVP_MD_CTX_free(h->app);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}

/* Workers drain what was submitted, then exit. */
static void hasher_join(struct hasher *h)
{
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->started_a)
		pthread_join(h->thread_a, NULL);
	if (h->started_b)
		pthread_join(h->thread_b, NULL);
}

int hasher_start(struct hasher **out, struct nectl_err *err)
{
	struct hasher *h = calloc(1, sizeof(*h));
	bool ok = true;

	if (!h)
		return nectl_err_set(err, NECTL_ERR_EIF, "out of memory");
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	for (int i = 0; i < HASHER_SLOTS; i++)
		ok &= (h->slots[i].buf = malloc(HASHER_CHUNK)) != NULL;
	h->all = EVP_MD_CTX_new();
	h->boot = EVP_MD_CTX_new();
	h->app = EVP_MD_CTX_new();
	ok = ok && h->all && h->boot && h->app && EVP_DigestInit_ex(h->all, EVP_sha384(), NULL) &&
	     EVP_DigestInit_ex(h->boot, EVP_sha384(), NULL) &&
	     EVP_DigestInit_ex(h->app, EVP_sha384(), NULL);
	if (!ok) {
		hasher_free(h);
		return nectl_err_set(err, NECTL_ERR_EIF, "out of memory");
	}
	h->started_a = pthread_create(&h->thread_a, NULL, hasher_worker_a, h) == 0;
	h->started_b = h->started_a && pthread_create(&h->thread_b, NULL, hasher_worker_b, h) == 0;
	if (!h->started_b) {
		hasher_join(h);
		hasher_free(h);
		return nectl_err_set(err, NECTL_ERR_EIF, "cannot start a hashing thread");
	}
	*out = h;
	return 0;
}

/* Folds the oldest finished slot's CRC into the running CRC, in order. */
static void hasher_combine_oldest(struct hasher *h)
{
	struct hasher_slot *s = &h->slots[h->combined % HASHER_SLOTS];

	h->crc = crc32_combine(h->crc, s->crc, (z_off_t)s->len);
	h->crc_len += s->len;
	h->combined++;
}

uint8_t *hasher_buffer(struct hasher *h)
{
	struct hasher_slot *s = &h->slots[h->submitted % HASHER_SLOTS];

	pthread_mutex_lock(&h->lock);
	while (s->pending > 0)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	if (h->submitted - h->combined == HASHER_SLOTS)
		hasher_combine_oldest(h);
	return s->buf;
}

void hasher_submit(struct hasher *h, size_t len, enum hasher_part part)
{
	struct hasher_slot *s = &h->slots[h->submitted % HASHER_SLOTS];

	s->len = len;
	s->part = h->measured ? HASHER_NONE : part;
	/* B has nothing to hash for unmeasured chunks; otherwise balance. */
	s->crc_by_a = s->part != HASHER_NONE && h->load < 0;
	h->load += s->part == HASHER_NONE ? 0 : (s->crc_by_a ? 1 : -1);
	pthread_mutex_lock(&h->lock);
	s->pending = 2;
	h->submitted++;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static int hasher_digest(EVP_MD_CTX *ctx, uint8_t pcr[EIF_HASH_SIZE], struct nectl_err *err)
{
	uint8_t digest[EIF_HASH_SIZE];

	if (!EVP_DigestFinal_ex(ctx, digest, NULL))
		return nectl_err_ssl(err, NECTL_ERR_HASH, "SHA-384 failed");
	return eif_pcr_from_digest(pcr, digest, err);
}

int hasher_pcrs(struct hasher *h, struct eif_pcrs *pcrs, struct nectl_err *err)
{
	pthread_mutex_lock(&h->lock);
	while (h->done_a < h->submitted || h->done_b < h->submitted)
		pthread_cond_wait(&h->cond, &h->lock);
	h->measured = true;
	pthread_mutex_unlock(&h->lock);
	if (hasher_digest(h->all, pcrs->pcr0, err) < 0 ||
	    hasher_digest(h->boot, pcrs->pcr1, err) < 0 ||
	    hasher_digest(h->app, pcrs->pcr2, err) < 0)
		return -1;
	return 0;
}

void hasher_finish(struct hasher *h, uint32_t *crc, uint64_t *len)
{
	hasher_join(h);
	while (h->combined < h->submitted)
		hasher_combine_oldest(h);
	*crc = (uint32_t)h->crc;
	*len = h->crc_len;
	hasher_free(h);
}

void hasher_abort(struct hasher *h)
{
	hasher_join(h);
	hasher_free(h);
}
