/* The command-line front end: the only part of nectl that prints or exits. */
#ifndef NECTL_CLI_H
#define NECTL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nectl/eif.h"
#include "nectl/err.h"
#include "nectl/kernel_check.h"

#define ARGS_MAX 128

struct opt_spec {
	const char *name; /* without the leading "--" */
	bool takes_value;
	bool repeatable;
	const char *alias; /* another spelling, e.g. kernel_config for kernel-config */
};

struct args {
	struct {
		const char *name;
		const char *value;
	} v[ARGS_MAX];
	size_t n;
};

struct cli_cmd {
	const char *name;
	const char *summary;
	const char *help; /* full usage text, with an example */
	const struct opt_spec *opts;
	int (*run)(const struct args *args, struct nectl_err *err);
};

int args_parse(int argc, char **argv, const struct opt_spec *specs, struct args *out,
	       struct nectl_err *err);
const char *args_get(const struct args *a, const char *name);
bool args_has(const struct args *a, const char *name);
size_t args_all(const struct args *a, const char *name, const char **out, size_t max);
/* E01 naming the option when it is absent. */
int args_require(const struct args *a, const char *name, const char **value,
		 struct nectl_err *err);
/* E02 when both are present. */
int args_conflict(const struct args *a, const char *x, const char *y, struct nectl_err *err);

/* --cmd/--entrypoint: a JSON array of strings or shell-like words. */
char **argv_split(const char *text, const char *opt, struct nectl_err *err);
void argv_free(char **v);

/* The build time: RFC 3339 text in out, seconds in *epoch (may be NULL). */
int cli_build_time(const char *opt, char out[64], int64_t *epoch, struct nectl_err *err);

/* JSON to stdout, pretty-printed like nitro-cli (2-space indent). Steals j. */
int cli_print_json(json_t *j, struct nectl_err *err);
/* "[ Exx ] message" on stderr. */
void cli_print_error(const struct nectl_err *err);
/* errmap.c: nitro-cli's E-code (and exit status) for an error. */
int cli_err_code(const struct nectl_err *err);
const char *cli_explain(int code);
/* nitro-cli's "Measurements" object. */
json_t *cli_measurements_json(const struct eif_pcrs *pcrs);
/* Warnings on stderr for a kernel that is not Nitro-ready (none when it is). */
void cli_kernel_warn(const char *kernel, const char *config, const struct kernel_check *c);
/* describe-eif's "Kernel": Release, Config, NitroReady (null: unknown), Problems. */
json_t *cli_kernel_json(const struct kernel_check_eif *k);

/* Progress on a terminal (stderr), nothing otherwise. */
struct cli_progress {
	struct eif_progress p;
	const char *label;
	double start;
	double last;
	bool active;
	/* Optional item counts shown beside the bytes (e.g. files archived). */
	const uint64_t *items_done;
	const uint64_t *items_total;
	const char *items_name;
};
void cli_progress_init(struct cli_progress *cp, const char *label);
void cli_progress_done(struct cli_progress *cp);

extern const struct cli_cmd cli_cmd_describe_eif;
extern const struct cli_cmd cli_cmd_pcr;
/* A debug-mode enclave's console to stdout (nitro-cli's banner first) until
 * it ends or timeout_s (0: no timeout) passes. */
int cli_console_stream(const json_t *record, uint64_t timeout_s, struct nectl_err *err);
extern const struct cli_cmd cli_cmd_run_enclave;
extern const struct cli_cmd cli_cmd_describe_enclaves;
extern const struct cli_cmd cli_cmd_terminate_enclave;
extern const struct cli_cmd cli_cmd_console;
extern const struct cli_cmd cli_cmd_sign_eif;
extern const struct cli_cmd cli_cmd_build_eif;
extern const struct cli_cmd cli_cmd_explain;
extern const struct cli_cmd cli_cmd_kernel_fetch;
extern const struct cli_cmd cli_cmd_kernel_build;
extern const struct cli_cmd cli_cmd_extract_eif;
extern const struct cli_cmd cli_cmd_build_enclave;
extern const struct cli_cmd cli_cmd_ca_init;
extern const struct cli_cmd cli_cmd_ca_show;
extern const struct cli_cmd cli_cmd_ca_export;
extern const struct cli_cmd cli_cmd_verify_attestation;

#endif
