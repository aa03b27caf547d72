/* Enclave Image Format: reading (bounds-checked, streaming), writing, CRC32,
 * PCR measurement. Layout facts: reference/aws-nitro-ecosystem.md §3, §4. */
#ifndef NECTL_EIF_H
#define NECTL_EIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nectl/err.h"
#include "nectl/memregion.h"

#define EIF_MAGIC "\x2e\x65\x69\x66"
#define EIF_HEADER_SIZE 548
#define EIF_CRC_OFFSET 544
#define EIF_SECTION_HEADER_SIZE 12
#define EIF_MAX_SECTIONS 32
#define EIF_VERSION_MIN 2
#define EIF_VERSION_CURRENT 4
#define EIF_HASH_SIZE 48
#define EIF_FLAG_ARCH_ARM64 0x1u
#define EIF_DEFAULT_MEM (1ull << 30)
#define EIF_DEFAULT_CPUS 2
/* Sections the reader keeps in memory are capped: everything else streams. */
#define EIF_SIGNATURE_MAX 32768
#define EIF_CMDLINE_MAX 65536
#define EIF_METADATA_MAX (1u << 20)

enum eif_section_type {
	EIF_SECTION_INVALID = 0,
	EIF_SECTION_KERNEL = 1,
	EIF_SECTION_CMDLINE = 2,
	EIF_SECTION_RAMDISK = 3,
	EIF_SECTION_SIGNATURE = 4,
	EIF_SECTION_METADATA = 5,
};

enum eif_arch {
	EIF_ARCH_X86_64 = 0,
	EIF_ARCH_AARCH64 = 1,
};

const char *eif_section_type_name(unsigned type);
const char *eif_arch_name(enum eif_arch arch);
/* Accepts "x86_64"/"amd64" and "aarch64"/"arm64". Returns -1 if unknown. */
int eif_arch_parse(const char *name, enum eif_arch *arch);

/* A random-access byte source: a file, or (for the hypervisor) guest memory. */
struct eif_source {
	int (*read_at)(void *ctx, uint64_t off, void *buf, size_t len);
	void *ctx;
	uint64_t size;
	const char *name; /* used in error messages */
	int fd;		  /* owned when opened by eif_source_open_file */
	struct eif_source_mem {
		const uint8_t *buf;
		size_t len;
	} mem; /* backing store of eif_source_from_memory */
	struct eif_source_regions {
		const struct mem_region *r;
		unsigned n;
		uint64_t offset;
	} regions; /* backing store of eif_source_from_regions */
};

int eif_source_open_file(struct eif_source *src, const char *path, struct nectl_err *err);
void eif_source_close(struct eif_source *src);
void eif_source_from_memory(struct eif_source *src, const void *buf, size_t len,
			    const char *name);
/* An EIF in enclave memory: the regions concatenated in order, from byte
 * `offset` of that to its end (the source's size). The regions (and the
 * array) must outlive the source. */
void eif_source_from_regions(struct eif_source *src, const struct mem_region *r, unsigned n,
			     uint64_t offset, const char *name);

struct eif_progress {
	void (*fn)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
};

struct eif_section {
	uint16_t type;
	uint16_t flags;
	uint64_t offset; /* file offset of the 12-byte section header */
	uint64_t size;	 /* data size, without the section header */
};

struct eif_pcrs {
	uint8_t pcr0[EIF_HASH_SIZE];
	uint8_t pcr1[EIF_HASH_SIZE];
	uint8_t pcr2[EIF_HASH_SIZE];
	uint8_t pcr8[EIF_HASH_SIZE];
	bool has_pcr8;
};

struct eif_image {
	uint16_t version;
	uint16_t flags;
	uint16_t unknown_flags; /* flag bits other than the arch bit */
	enum eif_arch arch;
	uint64_t default_mem;
	uint64_t default_cpus;
	uint64_t file_size;
	unsigned num_sections;
	struct eif_section sections[EIF_MAX_SECTIONS];
	uint32_t crc_stored;
	uint32_t crc_computed;
	struct eif_pcrs pcrs;
	/* The small sections, copied out (NUL-terminated for convenience). */
	char *cmdline;
	size_t cmdline_len;
	uint8_t *metadata;
	size_t metadata_len;
	uint8_t *signature;
	size_t signature_len;
};

/* Validates the header and section table, then streams every section once,
 * computing the CRC and PCR0/1/2 (PCR8 too when signed). Memory use does not
 * depend on section sizes. Structural problems fail with NECTL_ERR_EIF; a CRC
 * mismatch does not fail (compare crc_stored and crc_computed). */
int eif_read(const struct eif_source *src, struct eif_image *img,
	     const struct eif_progress *progress, struct nectl_err *err);
int eif_read_file(const char *path, struct eif_image *img,
		  const struct eif_progress *progress, struct nectl_err *err);
void eif_image_free(struct eif_image *img);
/* Index of the first section of `type`, or -1. */
int eif_image_find(const struct eif_image *img, unsigned type);

/* Writes the data of the index-th section of type (index -1: all of them,
 * concatenated in table order) to path, atomically. */
int eif_extract(const struct eif_source *src, const struct eif_image *img, unsigned type,
		int index, const char *path, struct nectl_err *err);

/* PCR helpers (SHA-384, extend from 48 zero bytes). They fail (NECTL_ERR_HASH,
 * pcr unchanged) only when SHA-384 cannot be had: no memory, no provider. */
int eif_pcr_extend(uint8_t pcr[EIF_HASH_SIZE], const void *data, size_t len,
		   struct nectl_err *err);
/* PCR of content whose SHA-384 is `digest`: SHA384(0^48 || digest). */
int eif_pcr_from_digest(uint8_t pcr[EIF_HASH_SIZE], const uint8_t digest[EIF_HASH_SIZE],
			struct nectl_err *err);
int eif_pcr_file(const char *path, uint8_t pcr[EIF_HASH_SIZE], struct nectl_err *err);
void eif_hex(const uint8_t *bytes, size_t len, char *out /* 2*len+1 */);

typedef int (*eif_emit_fn)(void *ctx, const void *buf, size_t len, struct nectl_err *err);

/* One section's input: a file, bytes in memory, or a producer that emits
 * exactly len bytes (e.g. a cpio archive written on the fly). */
struct eif_input {
	const char *path;
	const void *data;
	size_t len;
	int (*produce)(void *ctx, eif_emit_fn emit, void *emit_ctx, struct nectl_err *err);
	void *produce_ctx;
};

struct eif_metadata_fields {
	const char *image_name;
	const char *image_version;
	const char *build_time;
	const char *build_tool;
	const char *build_tool_version;
	const char *operating_system;
	const char *kernel_version;
	const char *docker_info_json; /* NULL: null */
	const char *custom_json;      /* NULL: null */
};

/* Compact JSON in nitro-cli's key order. Caller frees *out. */
int eif_metadata_build(const struct eif_metadata_fields *f, char **out, size_t *len,
		       struct nectl_err *err);
/* describe-eif's ImageName, ImageVersion and Metadata, from the image's
 * metadata section, set into out. */
int eif_metadata_describe(const struct eif_image *img, json_t *out, struct nectl_err *err);
/* nitro-cli's "Measurements" object (new reference). */
json_t *eif_measurements_json(const struct eif_pcrs *pcrs);
/* RFC 3339 UTC ("2024-01-01T00:00:00+00:00") of a Unix time. */
void eif_format_time(int64_t t, char out[32]);
/* From a kernel .config: OS ("Linux") and version ("6.6.79") as nitro-cli derives
 * them from the config's third line; "Unknown" when absent. */
int eif_kernel_config_info(const char *path, char os[64], char version[64],
			   struct nectl_err *err);

/* 1 and *arch set when the file is a recognisable x86 bzImage or arm64 Image,
 * 0 when it is neither, -1 on I/O errors. */
int eif_kernel_detect_arch(const char *path, enum eif_arch *arch, struct nectl_err *err);

/* The release ("6.12.95+deb12-cloud-amd64") an x86 bzImage names in its setup
 * header, from the first len bytes of the image; false when there is none. */
bool eif_kernel_release(const uint8_t *k, size_t len, char *out, size_t out_len);

struct eif_signer;

struct eif_build_spec {
	struct eif_input kernel;
	const char *cmdline;
	const struct eif_input *ramdisks;
	size_t num_ramdisks;
	const char *metadata; /* JSON bytes; required (v4) */
	size_t metadata_len;
	enum eif_arch arch;
	const struct eif_signer *signer; /* NULL: unsigned */
	const char *output_path;
	const struct eif_progress *progress;
};

/* Streams the inputs once into a temporary file beside output_path and renames
 * it into place: on failure nothing is left behind. */
int eif_build(const struct eif_build_spec *spec, struct eif_pcrs *pcrs, struct nectl_err *err);

/* Adds or replaces the signature of the EIF at path, atomically. */
int eif_sign_file(const char *path, const struct eif_signer *signer, struct eif_pcrs *pcrs,
		  const struct eif_progress *progress, struct nectl_err *err);

#endif
