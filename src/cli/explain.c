/* `nectl explain` and the one-line meaning of each nitro-cli E-code that
 * error messages and --help refer to. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

/* nitro-cli's error catalogue (reference/aws-nitro-ecosystem.md §1.8), in our words. */
static const char *const explain_text[] = {
	[0] = "Unspecified error: something failed that has no more specific code.",
	[1] = "Missing argument: a mandatory option was not given.",
	[2] = "Conflicting arguments: two options that exclude each other were both given.",
	[3] = "Invalid argument: an option's value is malformed or out of range (a bad number, memory suffix, CID or architecture).",
	[4] = "Socket pair creation failure: the process could not create a socket pair to talk to the enclave process.",
	[5] = "Process spawn failure: the enclave process could not be forked.",
	[6] = "Daemonize process failure: the enclave process could not detach from the terminal.",
	[7] = "Read from disk failure: the sockets directory could not be read.",
	[8] = "Unusable connection: the enclave descriptor is closed or does not exist.",
	[9] = "Socket close error: a socket could not be closed.",
	[10] = "Socket connect timeout error: the vsock connect timeout could not be set.",
	[11] = "Socket error: a socket operation failed, e.g. connecting to an enclave that no longer exists.",
	[12] = "Epoll error: waiting for events failed.",
	[13] = "Inotify error: watching the sockets directory failed.",
	[14] = "Invalid command: the enclave process received a command it does not know.",
	[15] = "Lock acquire failure: an internal lock could not be taken.",
	[16] = "Thread join failure: an internal thread could not be joined.",
	[17] = "Serialization error: JSON or CBOR could not be encoded or decoded, e.g. a malformed --config or --metadata file.",
	[18] = "File permissions error: a file (such as the log file) has the wrong permissions.",
	[19] = "File operation failure: a file could not be opened, read, written or renamed. The message names the file and the operation.",
	[20] = "Invalid CPU configuration: the same CPU ID was given more than once.",
	[21] = "No such CPU available in pool: a requested CPU is not in the enclave CPU pool.",
	[22] = "Insufficient CPUs: more CPUs were requested than the pool holds.",
	[23] = "Malformed CPU ID: the CPU pool file holds something that is not a CPU number.",
	[24] = "CPU error: a CPU range in the pool is malformed (e.g. 0-3-7).",
	[25] = "No such hugepage flag: an internal hugepage size is unknown.",
	[26] = "Insufficient memory requested: the enclave needs at least 4 times the EIF size in memory (rounded up to whole MiB).",
	[27] = "Insufficient memory available: not enough hugepages are reserved for the requested memory.",
	[28] = "Invalid enclave file descriptor: creating the enclave VM failed.",
	[29] = "Ioctl failure: a Nitro Enclaves driver ioctl failed; the message decodes the driver's error.",
	[30] = "Ioctl image load info failure: getting the EIF load offset failed.",
	[31] = "Ioctl set memory region failure: donating a memory region to the enclave failed.",
	[32] = "Ioctl add vCPU failure: donating a vCPU to the enclave failed.",
	[33] = "Ioctl enclave start failure: the enclave could not be started.",
	[34] = "Memory overflow: the EIF does not fit in the enclave's memory regions.",
	[35] = "EIF parsing error: the Enclave Image File is malformed. The message names the file, the section and what is wrong (bad magic, unsupported version, section outside the file, overlapping sections, wrong section counts, malformed signature section).",
	[36] = "Enclave boot failure: the enclave did not send its boot heartbeat in time.",
	[37] = "Enclave event wait error: waiting for enclave events failed.",
	[38] = "Enclave process command not executed: an enclave process refused a command.",
	[39] = "Enclave process connection failure: the CLI could not talk to one or more enclave processes, or an enclave failed to launch.",
	[40] = "Socket path not found: the enclave's control socket does not exist.",
	[41] = "Enclave process send reply failure: an enclave process could not reply.",
	[42] = "Enclave mmap error: mapping enclave memory failed.",
	[43] = "Enclave munmap error: unmapping enclave memory failed.",
	[44] = "Enclave console connection failure: the console could not be attached; the enclave must run with --debug-mode.",
	[45] = "Enclave console read error: reading from the console failed.",
	[46] = "Enclave console write output error: writing console output failed.",
	[47] = "Integer parsing error: a number (e.g. a CID) is out of range.",
	[48] = "EIF building error: the Enclave Image File could not be built.",
	[49] = "Docker image build error: the container image could not be built.",
	[50] = "Docker image pull error: the container image could not be obtained.",
	[51] = "Artifacts path not set: neither NITRO_CLI_ARTIFACTS nor HOME is set.",
	[52] = "Blobs path not set: the directory with the kernel and init blobs is unknown.",
	[53] = "Clock skew error: the system clock went backwards.",
	[54] = "Signal masking error: signals could not be blocked.",
	[55] = "Signal unmasking error: signals could not be unblocked.",
	[56] = "Logger error: the logger could not be set up.",
	[57] = "Hasher error: a measurement could not be computed, e.g. the input is not a PEM certificate.",
	[58] = "Enclave naming error: no enclave, or more than one, has the given name.",
	[59] = "EIF signature checker error: the image's signature does not verify, or its signing certificate is expired or not yet valid.",
	[60] = "EIF signing error: the image could not be signed (unreadable or mismatched certificate and key, unsupported key type).",
};

const char *cli_explain(int code)
{
	if (code < 0 || (size_t)code >= sizeof(explain_text) / sizeof(explain_text[0]))
		return NULL;
	return explain_text[code];
}

/* Accepts "E35", "e35" and "35". */
static int explain_parse(const char *s, int *code)
{
	char *end;
	long v;

	if (*s == 'E' || *s == 'e')
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < 0 || !cli_explain((int)v))
		return -1;
	*code = (int)v;
	return 0;
}

static int explain_run(const struct args *args, struct nectl_err *err)
{
	const char *text;
	int code;

	if (args_require(args, "error-code", &text, err) < 0)
		return -1;
	if (explain_parse(text, &code) < 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "`%s` is not a known error code (E00 to E60)", text);
	fprintf(stderr, "[ E%02d ] %s\n", code, cli_explain(code));
	return 0;
}

static const struct opt_spec explain_opts[] = {{"error-code", true, false, NULL}, {0}};

const struct cli_cmd cli_cmd_explain = {
	.name = "explain",
	.summary = "Describe an error code",
	.help = "Usage: nectl explain --error-code Exx\n"
		"\n"
		"Prints the long description of an error code on stderr. The exit status of\n"
		"a failed nectl command is its error number.\n"
		"\n"
		"Example:\n"
		"  nectl explain --error-code E35\n",
	.opts = explain_opts,
	.run = explain_run,
};
