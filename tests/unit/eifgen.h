/* eifgen.h: EIF images made to order for tests and fuzz seeds. A description
 * (header fields plus a list of sections) is laid out contiguously, in list
 * order, with a correct CRC (reference/aws-nitro-ecosystem.md §3.1-3.4); the
 * override fields then break exactly what a test wants broken. */
#ifndef NECTL_TESTS_EIFGEN_H
#define NECTL_TESTS_EIFGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/eif.h"

/* The synthetic EIF of reference/aws-nitro-ecosystem.md §4.2, which
 * eifgen_init_reference() describes, and its published properties. */
#define EIFGEN_REF_METADATA_JSON                                                                   \
	"{\"ImageName\":\"t\",\"ImageVersion\":\"1\",\"BuildMetadata\":{\"BuildTime\":"            \
	"\"2024-01-01T00:00:00+00:00\",\"BuildTool\":\"x\",\"BuildToolVersion\":\"0\","            \
	"\"OperatingSystem\":\"Linux\",\"KernelVersion\":\"6.6\"},\"DockerInfo\":null,"            \
	"\"CustomMetadata\":null}"
#define EIFGEN_REF_SIZE 860u
#define EIFGEN_REF_CRC	0x0ff53cc0u
#define EIFGEN_REF_PCR0                                                                            \
	"2f87f4fb26f464489990324c4380bb8a417a10c26c9dbc8fa5d40a7f5edd40e5"                         \
	"cbd21b2fe6e25895cf02d7386d066322"
#define EIFGEN_REF_PCR1                                                                            \
	"5122984fab34cab3c95b0185fb5c5a444d6c1eb56941a213932a28b40d106257"                         \
	"e733aa95a62e81653fe4cdb6d6a079c2"
#define EIFGEN_REF_PCR2                                                                            \
	"242e5ccf0b52a4b54de34b61970d957e6e4ee156b67a78ce2fed248960ff14f0"                         \
	"5456f94877f4652f10e9506aff4c9de6"

/* Indices of the sections in the reference description. */
enum eifgen_ref_index {
	EIFGEN_REF_KERNEL,
	EIFGEN_REF_CMDLINE,
	EIFGEN_REF_METADATA,
	EIFGEN_REF_RAMDISK0,
	EIFGEN_REF_RAMDISK1,
};

struct eifgen_section {
	uint16_t type;
	uint16_t flags;	     /* written into the section header */
	const uint8_t *data; /* NULL: len zero bytes (a hole in eifgen_write_file) */
	uint64_t len;
	uint64_t gap; /* bytes of zeros before this section's header */
	/* Lies told by the header table (offset, size) and by the section
	 * header (sh_size); the bytes are still laid out from data and len. */
	bool set_offset, set_size, set_sh_size;
	uint64_t offset, size, sh_size;
};

struct eifgen {
	uint8_t magic[4];
	uint16_t version;
	uint16_t flags;
	uint64_t default_mem;
	uint64_t default_cpus;
	bool set_num_sections; /* store num_sections instead of count */
	uint16_t num_sections;
	bool bad_crc;  /* store the right CRC with bit 0 flipped */
	bool truncate; /* cut the output to truncate_to bytes */
	uint64_t truncate_to;
	unsigned count;
	struct eifgen_section sec[EIF_MAX_SECTIONS];
};

/* An empty version-4 x86_64 description with nitro-cli's header defaults. */
void eifgen_init(struct eifgen *g);
/* The §4.2 synthetic image: kernel, cmdline, metadata, ramdisk0, ramdisk1. */
void eifgen_init_reference(struct eifgen *g);

/* Appends a section and returns it for further tweaks. data is borrowed: it
 * must outlive every eifgen_build/eifgen_write_file call. Aborts when the
 * description already holds EIF_MAX_SECTIONS sections. */
struct eifgen_section *eifgen_add(struct eifgen *g, uint16_t type, const void *data, uint64_t len);
struct eifgen_section *eifgen_add_str(struct eifgen *g, uint16_t type, const char *text);
/* As eifgen_add, but the new section becomes index at (later ones move up). */
struct eifgen_section *eifgen_insert(struct eifgen *g, unsigned at, uint16_t type, const void *data,
				     uint64_t len);
void eifgen_remove(struct eifgen *g, unsigned at);

/* Where section i's 12-byte header and its data land in the output. */
uint64_t eifgen_section_offset(const struct eifgen *g, unsigned i);
uint64_t eifgen_data_offset(const struct eifgen *g, unsigned i);
/* Length of the untruncated output. */
uint64_t eifgen_size(const struct eifgen *g);

/* The image in a malloc'd buffer (caller frees); aborts on out of memory. */
uint8_t *eifgen_build(const struct eifgen *g, size_t *len);
/* The image written to path, sections with data == NULL as holes, so a large
 * zero section costs neither memory nor disk. 0, or -1 with errno set. */
int eifgen_write_file(const struct eifgen *g, const char *path);

/* A signature section shaped as serde_cbor writes it (§3.7):
 * [{cert_key: [cert bytes], sig_key: [cose bytes]}], keys as given so tests
 * can misname them. Malloc'd (caller frees); aborts on out of memory. */
uint8_t *eifgen_signature_section(const char *cert_key, const void *cert, size_t cert_len,
				  const char *sig_key, const void *cose, size_t cose_len,
				  size_t *len);

/* A P-384 key and a self-signed certificate for it, valid 2024-01-01 to
 * 2124-01-01, written as PEM. Randomness comes from OpenSSL's RAND, so the
 * output is reproducible only if the caller made RAND so. 0, or -1. */
int eifgen_write_signer(const char *cert_path, const char *key_path);

#endif
