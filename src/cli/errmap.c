/* The one place where nectl's error kinds become nitro-cli's E-codes (and so
 * exit statuses): scripts written for nitro-cli test those numbers. The
 * libraries name what went wrong; this table says what nitro-cli calls it
 * (../shared/reference/aws-nitro-ecosystem.md, the E-code table). */
#include "cli/cli.h"

static const unsigned char errmap_codes[NECTL_ERR_KINDS] = {
    [NECTL_OK] = 0,
    [NECTL_ERR_MISSING_ARG] = 1,     /* MissingArgument */
    [NECTL_ERR_CONFLICT_ARG] = 2,    /* ConflictingArgument */
    [NECTL_ERR_INVALID_ARG] = 3,     /* InvalidArgument */
    [NECTL_ERR_IPC] = 4,	     /* SocketPairCreationFailure */
    [NECTL_ERR_SPAWN] = 5,	     /* ProcessSpawnFailure */
    [NECTL_ERR_RUNDIR] = 7,	     /* ReadFromDiskFailure */
    [NECTL_ERR_SOCKET] = 11,	     /* SocketError */
    [NECTL_ERR_EVENT] = 12,	     /* EpollError */
    [NECTL_ERR_REQUEST] = 14,	     /* InvalidCommand */
    [NECTL_ERR_LOCK] = 15,	     /* LockAcquireFailure */
    [NECTL_ERR_THREAD] = 16,	     /* ThreadJoinFailure */
    [NECTL_ERR_SERDE] = 17,	     /* SerdeError */
    [NECTL_ERR_FILE] = 19,	     /* FileOperationFailure */
    [NECTL_ERR_CPU_CONFIG] = 20,     /* InvalidCpuConfiguration */
    [NECTL_ERR_CPU_POOL] = 21,	     /* NoSuchCpuAvailableInPool */
    [NECTL_ERR_CPU_COUNT] = 22,	     /* InsufficientCpus */
    [NECTL_ERR_CPU_ID] = 23,	     /* MalformedCpuId */
    [NECTL_ERR_CPU_RANGE] = 24,	     /* CpuError */
    [NECTL_ERR_MEM_REQUEST] = 26,    /* InsufficientMemoryRequested */
    [NECTL_ERR_MEM_AVAILABLE] = 27,  /* InsufficientMemoryAvailable */
    [NECTL_ERR_MEM_OVERFLOW] = 34,   /* MemoryOverflow */
    [NECTL_ERR_ENCLAVE_FD] = 28,     /* InvalidEnclaveFd */
    [NECTL_ERR_IOCTL] = 29,	     /* IoctlFailure */
    [NECTL_ERR_EIF] = 35,	     /* EifParsingError */
    [NECTL_ERR_BOOT] = 36,	     /* EnclaveBootFailure */
    [NECTL_ERR_REFUSED] = 38,	     /* EnclaveProcessCommandNotExecuted */
    [NECTL_ERR_PROCESS] = 39,	     /* EnclaveProcessConnectionFailure */
    [NECTL_ERR_CONSOLE] = 44,	     /* EnclaveConsoleConnectionFailure */
    [NECTL_ERR_CONSOLE_OUTPUT] = 46, /* EnclaveConsoleWriteOutputError */
    [NECTL_ERR_BUILD] = 48,	     /* EifBuildingError */
    [NECTL_ERR_DOCKER_BUILD] = 49,   /* DockerImageBuildError */
    [NECTL_ERR_DOCKER_PULL] = 50,    /* DockerImagePullError */
    [NECTL_ERR_HASH] = 57,	     /* HasherError */
    [NECTL_ERR_NAMING] = 58,	     /* EnclaveNamingError */
    [NECTL_ERR_SIGCHECK] = 59,	     /* EIFSignatureCheckerError */
    [NECTL_ERR_SIGN] = 60,	     /* EIFSigningError */
};

int cli_err_code(const struct nectl_err *err)
{
	/* An error without a kind would exit 0: nitro-cli's E00 does, which
	 * no script should mistake for success here. */
	if (err->kind <= NECTL_OK || err->kind >= NECTL_ERR_KINDS)
		return 39;
	return errmap_codes[err->kind];
}
