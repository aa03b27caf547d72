/* Shared by the VM (vm.c) and vCPU (vcpu.c) halves of the KVM accelerator. */
#ifndef NECTL_ACCEL_KVM_VM_H
#define NECTL_ACCEL_KVM_VM_H

#include <linux/kvm.h>
#include <pthread.h>

#include "nectl/kvm.h"

/* Unused guest-physical pages below 4 GiB that Intel's VMX needs for itself. */
#define KVM_TSS_ADDR 0xfffbd000ul
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

struct kvm_vcpu {
	struct kvm_vm *vm;
	int fd;
	unsigned id;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	int host_cpu; /* pinned to this host CPU, or -1 */
};

struct kvm_vm {
	int kvm_fd, vm_fd;
	size_t run_size;
	unsigned ncpus;
	struct kvm_vcpu cpu[KVM_VM_MAX_CPUS];
	struct kvm_bus bus;
	pthread_mutex_t bus_lock; /* one device access at a time */
	pthread_mutex_t lock;	  /* the stop state below */
	pthread_cond_t stopped;
	enum kvm_stop why;
	char detail[256];
	unsigned running;
};

int vm_ioctl_fail(struct nectl_err *err, const char *what);

#endif
