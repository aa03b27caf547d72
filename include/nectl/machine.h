/* An emulated enclave's machine: enclave memory with the EIF written at the
 * NE driver's load offset, the kernel booted from the EIF found there (parsed
 * again, never trusted), the UART console, the i8042 reset, on nectl's KVM
 * accelerator. */
#ifndef NECTL_MACHINE_H
#define NECTL_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/err.h"
#include "nectl/kvm.h"

/* Where the NE driver (and so nectl) writes the EIF in enclave memory. */
#define MACHINE_EIF_OFFSET (8ull << 20)

struct machine_spec {
	const char *eif_path;
	uint64_t mem_mib;
	unsigned ncpus;
	uint64_t cid; /* the enclave's vsock CID (>= 4) */
	void (*console)(void *ctx, const uint8_t *buf, size_t len); /* must not block */
	void (*heartbeat)(void *ctx); /* the guest's boot heartbeat was answered */
	void *ctx;
};

enum machine_exit {
	MACHINE_EXIT_RESET,	/* the guest rebooted (reboot=k): an enclave's normal end */
	MACHINE_EXIT_STOPPED,	/* the host stopped it */
	MACHINE_EXIT_TRIPLE_FAULT,
	MACHINE_EXIT_KVM_ERROR,
};

struct machine;

int machine_create(struct machine **out, const struct machine_spec *spec, struct nectl_err *err);
/* "hugepages" or "anonymous memory": what backs the enclave's memory. */
const char *machine_memory_kind(const struct machine *m);
/* Boots and waits until the machine stops; detail says more for errors. */
int machine_run(struct machine *m, enum machine_exit *why, char *detail, size_t len,
		struct nectl_err *err);
/* Safe from any thread. */
void machine_stop(struct machine *m);
void machine_destroy(struct machine *m);

#endif
