/* EIF writer, reader and measurements against the published synthetic vector
 * (reference/aws-nitro-ecosystem.md §4.2) and round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "nectl/eif.h"

#define VECTOR_METADATA                                                                        \
	"{\"ImageName\":\"t\",\"ImageVersion\":\"1\",\"BuildMetadata\":{\"BuildTime\":\"2024-01-" \
	"01T00:00:00+00:00\",\"BuildTool\":\"x\",\"BuildToolVersion\":\"0\",\"OperatingSystem\":" \
	"\"Linux\",\"KernelVersion\":\"6.6\"},\"DockerInfo\":null,\"CustomMetadata\":null}"

static char tmpdir[] = "/tmp/nectl-test-eif-XXXXXX";

static char *tmp_path(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void assert_hex(const uint8_t *bytes, size_t len, const char *expected)
{
	char hex[256];

	eif_hex(bytes, len, hex);
	assert_string_equal(hex, expected);
}

static void build_vector(const char *out, struct eif_pcrs *pcrs)
{
	struct eif_input ramdisks[2] = {{.data = "BOOTSTRAP", .len = 9}, {.data = "APP", .len = 3}};
	struct eif_build_spec spec = {
		.kernel = {.data = "KERNEL", .len = 6},
		.cmdline = "console=ttyS0",
		.ramdisks = ramdisks,
		.num_ramdisks = 2,
		.metadata = VECTOR_METADATA,
		.metadata_len = strlen(VECTOR_METADATA),
		.output_path = out,
	};
	struct nectl_err err = {0};

	assert_int_equal(eif_build(&spec, pcrs, &err), 0);
}

static void test_metadata_vector(void **state)
{
	struct eif_metadata_fields f = {
		.image_name = "t",
		.image_version = "1",
		.build_time = "2024-01-01T00:00:00+00:00",
		.build_tool = "x",
		.build_tool_version = "0",
		.operating_system = "Linux",
		.kernel_version = "6.6",
	};
	struct nectl_err err = {0};
	char *json;
	size_t len;

	assert_int_equal(eif_metadata_build(&f, &json, &len, &err), 0);
	assert_int_equal(len, 221);
	assert_string_equal(json, VECTOR_METADATA);
	free(json);
}

/* Found with fuzz/fuzz_eif_metadata: custom JSON nested as deep as jansson
 * parses (2048) is one level too deep once inside the metadata object, so
 * describe-eif could not read the image build-eif had just written. */
static void test_metadata_build_refuses_what_describe_cannot_read(void **state)
{
	char custom[2 * 2048 + 1];
	struct eif_metadata_fields f = {.image_name = "t", .custom_json = custom};
	struct eif_image img = {0};
	struct nectl_err err = {0};
	json_t *out;
	char *json = NULL;
	size_t len;

	(void)state;
	for (int depth = 2047; depth <= 2048; depth++) {
		memset(custom, '[', (size_t)depth);
		memset(custom + depth, ']', (size_t)depth);
		custom[2 * depth] = '\0';
		memset(&err, 0, sizeof(err));
		if (eif_metadata_build(&f, &json, &len, &err) < 0) {
			assert_int_equal(err.kind, NECTL_ERR_SERDE);
			assert_non_null(strstr(err.msg, "nested too deeply"));
			continue;
		}
		img.metadata = (uint8_t *)json;
		img.metadata_len = len;
		out = json_object();
		if (eif_metadata_describe(&img, out, &err) < 0)
			fail_msg("depth %d: built, but describe says `%s`", depth, err.msg);
		json_decref(out);
		free(json);
	}
}

static void test_vector_bytes(void **state)
{
	static const uint8_t head[32] = {0x2e, 0x65, 0x69, 0x66, 0x00, 0x04, 0x00, 0x00,
					 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00,
					 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
					 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00};
	uint8_t sha[32];
	struct eif_pcrs pcrs;
	size_t len;
	uint8_t *bytes;

	build_vector(tmp_path("vector.eif"), &pcrs);
	bytes = slurp(tmp_path("vector.eif"), &len);
	assert_int_equal(len, 860);
	assert_memory_equal(bytes, head, sizeof(head));
	assert_int_equal(bytes[544] << 24 | bytes[545] << 16 | bytes[546] << 8 | bytes[547],
			 0x0ff53cc0);
	EVP_Digest(bytes, len, sha, NULL, EVP_sha256(), NULL);
	assert_hex(sha, 32, "5e724ec81332932f149044bfa27c46ab1dae09f629c484c0745dc679a9c0058e");
	assert_hex(pcrs.pcr0, 48,
		   "2f87f4fb26f464489990324c4380bb8a417a10c26c9dbc8fa5d40a7f5edd40e5cbd21b2fe6e25895cf02d7386d066322");
	assert_hex(pcrs.pcr1, 48,
		   "5122984fab34cab3c95b0185fb5c5a444d6c1eb56941a213932a28b40d106257e733aa95a62e81653fe4cdb6d6a079c2");
	assert_hex(pcrs.pcr2, 48,
		   "242e5ccf0b52a4b54de34b61970d957e6e4ee156b67a78ce2fed248960ff14f05456f94877f4652f10e9506aff4c9de6");
	assert_false(pcrs.has_pcr8);
	free(bytes);
}

static void test_vector_read(void **state)
{
	static const uint64_t offsets[] = {548, 566, 591, 824, 845};
	static const uint64_t sizes[] = {6, 13, 221, 9, 3};
	static const unsigned types[] = {1, 2, 5, 3, 3};
	struct eif_pcrs built;
	struct eif_image img;
	struct nectl_err err = {0};

	build_vector(tmp_path("vector2.eif"), &built);
	assert_int_equal(eif_read_file(tmp_path("vector2.eif"), &img, NULL, &err), 0);
	assert_int_equal(img.version, 4);
	assert_int_equal(img.arch, EIF_ARCH_X86_64);
	assert_int_equal(img.num_sections, 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(img.sections[i].offset, offsets[i]);
		assert_int_equal(img.sections[i].size, sizes[i]);
		assert_int_equal(img.sections[i].type, types[i]);
	}
	assert_int_equal(img.crc_stored, 0x0ff53cc0);
	assert_int_equal(img.crc_computed, 0x0ff53cc0);
	assert_memory_equal(img.pcrs.pcr0, built.pcr0, 48);
	assert_memory_equal(img.pcrs.pcr1, built.pcr1, 48);
	assert_memory_equal(img.pcrs.pcr2, built.pcr2, 48);
	assert_string_equal(img.cmdline, "console=ttyS0");
	assert_int_equal(img.metadata_len, 221);
	assert_null(img.signature);
	eif_image_free(&img);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

/* File inputs (streamed in chunks) and memory inputs give the same image. */
static void test_roundtrip_files(void **state)
{
	size_t big = (3u << 20) + 12345, len_a, len_b;
	uint8_t *data = malloc(big), *a, *b;
	struct eif_input rd_mem[3], rd_file[3];
	struct eif_pcrs pm, pf;
	struct eif_image img;
	struct nectl_err err = {0};
	const char *meta = "{}";

	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	write_file(tmp_path("kernel"), data, 1000);
	write_file(tmp_path("rd0"), data + 7, big - 7);
	write_file(tmp_path("rd1"), data, 0);
	write_file(tmp_path("rd2"), data + 3, 70000);
	rd_mem[0] = (struct eif_input){.data = data + 7, .len = big - 7};
	rd_mem[1] = (struct eif_input){.data = "", .len = 0};
	rd_mem[2] = (struct eif_input){.data = data + 3, .len = 70000};
	rd_file[0] = (struct eif_input){.path = strdup(tmp_path("rd0"))};
	rd_file[1] = (struct eif_input){.path = strdup(tmp_path("rd1"))};
	rd_file[2] = (struct eif_input){.path = strdup(tmp_path("rd2"))};
	struct eif_build_spec spec = {.kernel = {.data = data, .len = 1000},
				      .cmdline = "a b c",
				      .ramdisks = rd_mem,
				      .num_ramdisks = 3,
				      .metadata = meta,
				      .metadata_len = 2,
				      .arch = EIF_ARCH_AARCH64,
				      .output_path = tmp_path("mem.eif")};
	assert_int_equal(eif_build(&spec, &pm, &err), 0);
	spec.kernel = (struct eif_input){.path = strdup(tmp_path("kernel"))};
	spec.ramdisks = rd_file;
	spec.output_path = tmp_path("file.eif");
	assert_int_equal(eif_build(&spec, &pf, &err), 0);
	a = slurp(tmp_path("mem.eif"), &len_a);
	b = slurp(tmp_path("file.eif"), &len_b);
	assert_int_equal(len_a, len_b);
	assert_memory_equal(a, b, len_a);
	assert_memory_equal(pm.pcr0, pf.pcr0, 48);
	assert_int_equal(eif_read_file(tmp_path("file.eif"), &img, NULL, &err), 0);
	assert_int_equal(img.arch, EIF_ARCH_AARCH64);
	assert_int_equal(img.num_sections, 6);
	assert_int_equal(img.crc_stored, img.crc_computed);
	assert_memory_equal(img.pcrs.pcr0, pf.pcr0, 48);
	assert_memory_equal(img.pcrs.pcr1, pf.pcr1, 48);
	assert_memory_equal(img.pcrs.pcr2, pf.pcr2, 48);
	eif_image_free(&img);
	free((void *)spec.kernel.path);
	for (int i = 0; i < 3; i++)
		free((void *)rd_file[i].path);
	free(a);
	free(b);
	free(data);
}

struct piecewise {
	const uint8_t *data;
	size_t len, piece;
};

static int produce_piecewise(void *ctx, eif_emit_fn emit, void *ectx, struct nectl_err *err)
{
	const struct piecewise *pw = ctx;

	for (size_t off = 0; off < pw->len; off += pw->piece) {
		size_t n = pw->len - off < pw->piece ? pw->len - off : pw->piece;

		if (emit(ectx, pw->data + off, n, err) < 0)
			return -1;
	}
	return 0;
}

/* A producer emitting odd-sized pieces across chunk boundaries gives the same
 * image as the same bytes in memory; a producer that lies about its length
 * fails the build and leaves nothing behind. */
static void test_producer_input(void **state)
{
	size_t big = (3u << 20) + 999, la, lb;
	uint8_t *data = malloc(big), *a, *b;
	struct piecewise pw = {.data = data, .len = big, .piece = 7777};
	struct eif_input rd_mem[2] = {{.data = "boot", .len = 4}, {.data = data, .len = big}};
	struct eif_input rd_prod[2] = {{.data = "boot", .len = 4},
				       {.len = big, .produce = produce_piecewise, .produce_ctx = &pw}};
	struct eif_build_spec spec = {.kernel = {.data = "K", .len = 1},
				      .cmdline = "x",
				      .ramdisks = rd_mem,
				      .num_ramdisks = 2,
				      .metadata = "{}",
				      .metadata_len = 2,
				      .output_path = tmp_path("pm.eif")};
	struct eif_pcrs pm, pp;
	struct nectl_err err = {0};
	struct stat st;

	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 11));
	assert_int_equal(eif_build(&spec, &pm, &err), 0);
	spec.ramdisks = rd_prod;
	spec.output_path = tmp_path("pp.eif");
	assert_int_equal(eif_build(&spec, &pp, &err), 0);
	a = slurp(tmp_path("pm.eif"), &la);
	b = slurp(tmp_path("pp.eif"), &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	assert_memory_equal(pm.pcr2, pp.pcr2, 48);
	rd_prod[1].len = big + 1;
	spec.output_path = tmp_path("pbad.eif");
	assert_int_equal(eif_build(&spec, &pp, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_BUILD);
	assert_non_null(strstr(err.msg, "announced"));
	assert_int_not_equal(stat(tmp_path("pbad.eif"), &st), 0);
	free(a);
	free(b);
	free(data);
}

/* PCR2 of a single-ramdisk image is the PCR of empty input (reference §4.2). */
static void test_pcr_empty(void **state)
{
	uint8_t pcr[48];
	struct nectl_err err = {0};

	write_file(tmp_path("empty"), "", 0);
	assert_int_equal(eif_pcr_file(tmp_path("empty"), pcr, &err), 0);
	assert_hex(pcr, 48,
		   "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a");
}

/* The published PCR3/PCR4 vectors exercise the extend primitive itself. */
static void test_pcr_extend_vectors(void **state)
{
	const char *arn = "arn:aws:iam::123456789012:role/Webserver";
	const char *id = "i-1234567890abcdef0";
	uint8_t pcr[48] = {0};

	assert_int_equal(eif_pcr_extend(pcr, arn, strlen(arn), NULL), 0);
	assert_hex(pcr, 48,
		   "78fce75db17cd4e0a3fb8dad3ad128ca5e77edbb2b2c7f75329dccd99aa5f6ef4fc1f1a452e315b9e98f9e312e6921e6");
	memset(pcr, 0, sizeof(pcr));
	assert_int_equal(eif_pcr_extend(pcr, id, strlen(id), NULL), 0);
	assert_hex(pcr, 48,
		   "08f996b5d43e047a9eb51e7f548bfee7e164fd7dc8f65541f2ac09d6545ac812719327281c401a67a10fcba87ae79ce0");
}

/* A failed build leaves neither the output nor a temporary file behind. */
/* A library never aborts: with no SHA-384 to be had (here, a default library
 * context holding only the null provider), extending fails with an error. In a
 * child, so that the old abort() is a failed test rather than a dead runner. */
static void test_pcr_extend_without_sha384_returns_error(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
		struct nectl_err err = {0};
		uint8_t pcr[48] = {0}, zero[48] = {0};

		if (!ctx || !OSSL_PROVIDER_load(ctx, "null"))
			_exit(100);
		OSSL_LIB_CTX_set0_default(ctx);
		if (eif_pcr_extend(pcr, "x", 1, &err) != -1 || err.kind != NECTL_ERR_HASH ||
		    !strstr(err.msg, "SHA-384") || memcmp(pcr, zero, 48) != 0)
			_exit(1);
		memset(&err, 0, sizeof(err));
		if (eif_pcr_from_digest(pcr, zero, &err) != -1 || err.kind != NECTL_ERR_HASH)
			_exit(2);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		fail_msg("eif_pcr_extend killed the process (signal %d)", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_build_failure_atomic(void **state)
{
	struct eif_input rd = {.path = "/nonexistent/ramdisk"};
	struct eif_build_spec spec = {.kernel = {.data = "K", .len = 1},
				      .cmdline = "",
				      .ramdisks = &rd,
				      .num_ramdisks = 1,
				      .metadata = "{}",
				      .metadata_len = 2,
				      .output_path = tmp_path("fail.eif")};
	struct eif_pcrs pcrs;
	struct nectl_err err = {0};
	struct stat st;
	char cmd[600];

	write_file(tmp_path("fail.eif"), "OLD", 3);
	assert_int_equal(eif_build(&spec, &pcrs, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	assert_non_null(strstr(err.msg, "/nonexistent/ramdisk"));
	assert_int_equal(stat(tmp_path("fail.eif"), &st), 0);
	assert_int_equal(st.st_size, 3);
	snprintf(cmd, sizeof(cmd), "ls %s | grep -q tmp", tmpdir);
	assert_int_not_equal(system(cmd), 0);
}

static void test_kernel_config(void **state)
{
	char os[64], ver[64];
	struct nectl_err err = {0};
	const char *cfg = "#\n# Automatically generated file; DO NOT EDIT.\n"
			  "# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration\n#\n";

	write_file(tmp_path("config"), cfg, strlen(cfg));
	assert_int_equal(eif_kernel_config_info(tmp_path("config"), os, ver, &err), 0);
	assert_string_equal(os, "Linux");
	assert_string_equal(ver, "4.14.256");
}

static void test_format_time(void **state)
{
	char out[32];

	eif_format_time(1704067200, out);
	assert_string_equal(out, "2024-01-01T00:00:00+00:00");
}

static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metadata_vector),
		cmocka_unit_test(test_metadata_build_refuses_what_describe_cannot_read),
		cmocka_unit_test(test_vector_bytes),
		cmocka_unit_test(test_vector_read),
		cmocka_unit_test(test_roundtrip_files),
		cmocka_unit_test(test_producer_input),
		cmocka_unit_test(test_pcr_empty),
		cmocka_unit_test(test_pcr_extend_vectors),
		cmocka_unit_test(test_pcr_extend_without_sha384_returns_error),
		cmocka_unit_test(test_build_failure_atomic),
		cmocka_unit_test(test_kernel_config),
		cmocka_unit_test(test_format_time),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
