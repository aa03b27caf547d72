/* nectl's entry point: finds the subcommand (one or two words), handles
 * --help, runs it, and turns its error into `[ Exx ] message` and the exit
 * status. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_cmd *const main_cmds[] = {
	&cli_cmd_build_enclave, &cli_cmd_build_eif, &cli_cmd_describe_eif, &cli_cmd_sign_eif, &cli_cmd_extract_eif,
	&cli_cmd_pcr,	    &cli_cmd_explain,	   &cli_cmd_kernel_fetch, &cli_cmd_kernel_build,
	&cli_cmd_run_enclave, &cli_cmd_describe_enclaves, &cli_cmd_terminate_enclave, &cli_cmd_console,
	&cli_cmd_ca_init, &cli_cmd_ca_show, &cli_cmd_ca_export, &cli_cmd_verify_attestation,
};

#define MAIN_NCMDS (sizeof(main_cmds) / sizeof(main_cmds[0]))

static void main_usage(FILE *fp)
{
	fprintf(fp, "nectl %s: build, measure, sign, describe and run AWS Nitro Enclave images\n"
		    "\n"
		    "Usage: nectl <command> [options]\n"
		    "       nectl <command> --help\n"
		    "       nectl --version\n"
		    "\n"
		    "Commands:\n",
		NECTL_VERSION);
	for (size_t i = 0; i < MAIN_NCMDS; i++)
		fprintf(fp, "  %-18s %s\n", main_cmds[i]->name, main_cmds[i]->summary);
	fprintf(fp, "\n"
		    "JSON results go to stdout; progress and errors go to stderr. A failed command\n"
		    "prints \"[ Exx ] message\" and exits with status xx (see nectl explain).\n"
		    "\n"
		    "Example:\n"
		    "  nectl build-eif --kernel bzImage --cmdline 'console=ttyS0' \\\n"
		    "      --ramdisk init.cpio --ramdisk app.cpio --output app.eif\n"
		    "  nectl describe-eif --eif-path app.eif\n");
}

/* Command names are one word ("pcr") or two ("kernel fetch"); returns how
 * many arguments the name took, 0 when it does not match. */
static int main_match(const char *name, int argc, char **argv)
{
	const char *space = strchr(name, ' ');

	if (!space)
		return strcmp(name, argv[0]) == 0 ? 1 : 0;
	if (argc < 2 || strncmp(name, argv[0], (size_t)(space - name)) != 0 ||
	    argv[0][space - name] != '\0')
		return 0;
	return strcmp(space + 1, argv[1]) == 0 ? 2 : 0;
}

static bool main_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static int main_run_cmd(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct nectl_err err = {0};
	struct args args;

	if (main_wants_help(argc, argv)) {
		fputs(cmd->help, stdout);
		return 0;
	}
	if (args_parse(argc, argv, cmd->opts, &args, &err) < 0 || cmd->run(&args, &err) < 0) {
		cli_print_error(&err);
		return cli_err_code(&err);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return NECTL_ERR_MISSING_ARG;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("nectl %s\n", NECTL_VERSION);
		return 0;
	}
	for (size_t i = 0; i < MAIN_NCMDS; i++) {
		int words = main_match(main_cmds[i]->name, argc - 1, argv + 1);

		if (words)
			return main_run_cmd(main_cmds[i], argc - 1 - words, argv + 1 + words);
	}
	fprintf(stderr, "[ E%02d ] unknown command '%s' (see nectl --help)\n",
		NECTL_ERR_INVALID_ARG, argv[1]);
	return NECTL_ERR_INVALID_ARG;
}
