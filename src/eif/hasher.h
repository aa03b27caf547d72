/* The measurement pipeline shared by the EIF reader and writer. Every measured
 * byte feeds two SHA-384 streams (PCR0 and one of PCR1/PCR2) and every byte the
 * CRC, so one thread would hash each byte twice. Two worker threads split the
 * work instead: A hashes the PCR0 stream, B the PCR1/PCR2 streams, and the CRC
 * of each chunk goes to whichever is less loaded. Chunks are combined in order
 * with crc32_combine. Memory is a fixed ring of chunk buffers. */
#ifndef NECTL_EIF_HASHER_H
#define NECTL_EIF_HASHER_H

#include <stddef.h>
#include <stdint.h>

#include "nectl/eif.h"

#define HASHER_CHUNK (1u << 20)

enum hasher_part {
	HASHER_NONE, /* CRC only: headers, metadata, signature */
	HASHER_BOOT, /* PCR0 and PCR1: kernel, cmdline, first ramdisk */
	HASHER_APP,  /* PCR0 and PCR2: later ramdisks */
};

struct hasher;

int hasher_start(struct hasher **out, struct nectl_err *err);
/* A free buffer of HASHER_CHUNK bytes to fill, waiting for one if needed. */
uint8_t *hasher_buffer(struct hasher *h);
/* Hands the buffer last returned by hasher_buffer to the workers. The caller
 * may keep reading it (e.g. to write it out) until its next hasher_buffer. */
void hasher_submit(struct hasher *h, size_t len, enum hasher_part part);
/* Waits for the work submitted so far and finalizes PCR0/1/2 (PCR8 untouched).
 * Later chunks only feed the CRC: the signature, which covers PCR0, comes last. */
int hasher_pcrs(struct hasher *h, struct eif_pcrs *pcrs, struct nectl_err *err);
/* Waits for the workers; the CRC and length of everything submitted. Frees h. */
void hasher_finish(struct hasher *h, uint32_t *crc, uint64_t *len);
/* Stops the workers and frees h without results. */
void hasher_abort(struct hasher *h);

#endif
