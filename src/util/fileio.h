/* Output files that appear whole or not at all: written to a temporary file in
 * the destination's directory and renamed into place on commit. */
#ifndef NECTL_UTIL_FILEIO_H
#define NECTL_UTIL_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "nectl/err.h"

struct out_file {
	int fd;
	char *tmp_path;
	char *path;
	uint64_t written;
};

int out_file_open(struct out_file *f, const char *path, struct nectl_err *err);
int out_file_write(struct out_file *f, const void *buf, size_t len, struct nectl_err *err);
int out_file_pwrite(struct out_file *f, const void *buf, size_t len, uint64_t off,
		    struct nectl_err *err);
/* fsync, give the file the mode a plain creat() would have, rename into place. */
int out_file_commit(struct out_file *f, struct nectl_err *err);
/* Removes the temporary file; safe after commit and on a zeroed struct. */
void out_file_abort(struct out_file *f);

/* An unlinked read-write temporary file in $TMPDIR (or /tmp): gone when
 * closed, whatever happens to the process. Returns the fd or -1. */
int file_tmp_anon(struct nectl_err *err);

/* Reads a whole small file (at most max bytes) into a NUL-terminated buffer. */
int file_read_all(const char *path, size_t max, char **out, size_t *len, enum nectl_kind code,
		  struct nectl_err *err);

#endif
