/* The software Nitro hypervisor's core: a KVM VM over nectl's guest memory,
 * its vCPU threads and their exits. Device models stay behind the bus
 * callbacks; nothing here parses what the guest sends. */
#ifndef NECTL_KVM_H
#define NECTL_KVM_H

#include <stdbool.h>
#include <stdint.h>

#include "nectl/err.h"
#include "nectl/guestmem.h"
#include "nectl/x86boot.h"

#define KVM_VM_MAX_CPUS 64

/* Port and MMIO accesses the kernel did not handle. Called from vCPU threads,
 * one at a time (the VM serializes them). data holds len bytes (1, 2, 4 or 8):
 * filled by the callback on reads, the guest's value on writes. */
struct kvm_bus {
	void (*pio)(void *ctx, uint16_t port, bool is_write, uint8_t *data, unsigned len);
	void (*mmio)(void *ctx, uint64_t gpa, bool is_write, uint8_t *data, unsigned len);
	void *ctx;
};

enum kvm_stop {
	KVM_STOP_NONE,
	KVM_STOP_REQUESTED, /* kvm_vm_stop: the guest reset, powered off, or the host asked */
	KVM_STOP_SHUTDOWN,  /* triple fault */
	KVM_STOP_INTERNAL,  /* KVM internal error or failed VM entry */
};

struct kvm_vm;

/* Opens /dev/kvm (NECTL_ERR_FILE when absent or unusable), creates the VM with
 * the in-kernel irqchip and PIT, maps every guest memory region and creates
 * ncpus vCPUs with KVM's supported CPUID. */
int kvm_vm_create(struct kvm_vm **out, const struct guestmem *gm, unsigned ncpus,
		  const struct kvm_bus *bus, struct nectl_err *err);
/* Loads the boot state into vCPU 0 (the others wait for INIT/SIPI as on real
 * hardware) and starts one thread per vCPU. */
int kvm_vm_start(struct kvm_vm *vm, const struct x86_boot_regs *regs, struct nectl_err *err);
/* Raises or lowers an IOAPIC input (GSI). */
int kvm_vm_irq(struct kvm_vm *vm, unsigned gsi, int level);
/* Asks every vCPU to stop (safe from any thread, including bus callbacks). */
void kvm_vm_stop(struct kvm_vm *vm, enum kvm_stop why);
/* Waits until the VM stops and every vCPU thread has left its loop; why it
 * stopped, with KVM's detail for errors. */
enum kvm_stop kvm_vm_wait(struct kvm_vm *vm, char *detail, size_t len);
void kvm_vm_destroy(struct kvm_vm *vm);
/* The lock every device access runs under (vCPU exits take it): host threads
 * that drive a device take it too. Not recursive. */
void kvm_vm_bus_lock(struct kvm_vm *vm);
void kvm_vm_bus_unlock(struct kvm_vm *vm);
/* A guest write of `value` (len bytes) at gpa signals eventfd fd inside the
 * kernel instead of exiting to the bus: the vCPU goes straight back to the
 * guest and another thread does the work. */
int kvm_vm_ioeventfd(struct kvm_vm *vm, uint64_t gpa, unsigned len, uint64_t value, int fd,
		     struct nectl_err *err);
/* Before kvm_vm_start: vCPU i runs on host CPU host_cpus[i] (-1: anywhere).
 * -EINVAL unless n is the VM's vCPU count. */
int kvm_vm_pin(struct kvm_vm *vm, const int *host_cpus, unsigned n);

#endif
