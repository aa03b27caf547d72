/* KVM VM lifecycle: create, map memory, vCPUs, run loops, stop. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/kvm/vm.h"

int vm_ioctl_fail(struct nectl_err *err, const char *what)
{
	return nectl_err_sys(err, NECTL_ERR_FILE, errno, "/dev/kvm: %s", what);
}

static void vm_signal_noop(int sig)
{
	(void)sig;
}

static int vm_open(struct kvm_vm *vm, struct nectl_err *err)
{
	struct sigaction sa = {.sa_handler = vm_signal_noop};

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return vm_ioctl_fail(err, "cannot open");
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return nectl_err_set(err, NECTL_ERR_FILE, "/dev/kvm: unsupported KVM API version");
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vm_ioctl_fail(err, "KVM_CREATE_VM");
	vm->run_size = (size_t)ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	/* SIGUSR1 only interrupts KVM_RUN so a vCPU notices a stop request. */
	sigaction(SIGUSR1, &sa, NULL);
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0)
		return vm_ioctl_fail(err, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){KVM_IDENTITY_MAP_ADDR}) < 0)
		return vm_ioctl_fail(err, "KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vm_ioctl_fail(err, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &(struct kvm_pit_config){.flags = 0}) < 0)
		return vm_ioctl_fail(err, "KVM_CREATE_PIT2");
	return 0;
}

static int vm_map_memory(struct kvm_vm *vm, const struct guestmem *gm, struct nectl_err *err)
{
	for (unsigned i = 0; i < gm->n; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = gm->r[i].gpa,
			.memory_size = gm->r[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)gm->r[i].hva,
		};

		if ((r.userspace_addr | r.memory_size | r.guest_phys_addr) & 0xfff)
			return nectl_err_set(err, NECTL_ERR_FILE,
					     "guest memory region %u is not page-aligned", i);
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return vm_ioctl_fail(err, "KVM_SET_USER_MEMORY_REGION");
	}
	return 0;
}

/* KVM's supported CPUID, with each vCPU's APIC ID where Linux looks for it. */
static int vm_set_cpuid(struct kvm_vm *vm, struct kvm_vcpu *c, struct nectl_err *err)
{
	unsigned max = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + max * sizeof(cpuid->entries[0]));
	int rc = -1;

	if (!cpuid)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	cpuid->nent = max;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		vm_ioctl_fail(err, "KVM_GET_SUPPORTED_CPUID");
		goto out;
	}
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		/* The hypervisor bit tells Linux to look for KVM's paravirt
		 * leaves (kvmclock, which gives it the TSC frequency). */
		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffffu) | (c->id << 24);
			e->ecx |= 1u << 31;
		}
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = c->id;
	}
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		vm_ioctl_fail(err, "KVM_SET_CPUID2");
	else
		rc = 0;
out:
	free(cpuid);
	return rc;
}

/* LINT0 as ExtINT and LINT1 as NMI, as firmware leaves them on a PC. */
static int vm_set_lapic(struct kvm_vcpu *c, struct nectl_err *err)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0, *lvt1;

	if (ioctl(c->fd, KVM_GET_LAPIC, &lapic) < 0)
		return vm_ioctl_fail(err, "KVM_GET_LAPIC");
	lvt0 = (uint32_t *)(void *)(lapic.regs + 0x350);
	lvt1 = (uint32_t *)(void *)(lapic.regs + 0x360);
	*lvt0 = (*lvt0 & ~0x700u) | (7u << 8);
	*lvt1 = (*lvt1 & ~0x700u) | (4u << 8);
	if (ioctl(c->fd, KVM_SET_LAPIC, &lapic) < 0)
		return vm_ioctl_fail(err, "KVM_SET_LAPIC");
	return 0;
}

static int vm_create_vcpu(struct kvm_vm *vm, unsigned id, struct nectl_err *err)
{
	struct kvm_vcpu *c = &vm->cpu[id];

	c->vm = vm;
	c->id = id;
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (c->fd < 0)
		return vm_ioctl_fail(err, "KVM_CREATE_VCPU");
	c->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return vm_ioctl_fail(err, "mmap of kvm_run");
	}
	if (vm_set_cpuid(vm, c, err) < 0 || vm_set_lapic(c, err) < 0)
		return -1;
	return 0;
}

int kvm_vm_create(struct kvm_vm **out, const struct guestmem *gm, unsigned ncpus,
		  const struct kvm_bus *bus, struct nectl_err *err)
{
	struct kvm_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	vm->kvm_fd = vm->vm_fd = -1;
	for (unsigned i = 0; i < KVM_VM_MAX_CPUS; i++) {
		vm->cpu[i].fd = -1;
		vm->cpu[i].host_cpu = -1;
	}
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->bus_lock, NULL);
	pthread_cond_init(&vm->stopped, NULL);
	vm->bus = *bus;
	if (ncpus == 0 || ncpus > KVM_VM_MAX_CPUS) {
		kvm_vm_destroy(vm);
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "%u vCPUs: 1 to %u are supported",
				     ncpus, KVM_VM_MAX_CPUS);
	}
	vm->ncpus = ncpus;
	if (vm_open(vm, err) < 0 || vm_map_memory(vm, gm, err) < 0) {
		kvm_vm_destroy(vm);
		return -1;
	}
	for (unsigned i = 0; i < ncpus; i++) {
		if (vm_create_vcpu(vm, i, err) < 0) {
			kvm_vm_destroy(vm);
			return -1;
		}
	}
	*out = vm;
	return 0;
}

int kvm_vm_ioeventfd(struct kvm_vm *vm, uint64_t gpa, unsigned len, uint64_t value, int fd,
		     struct nectl_err *err)
{
	struct kvm_ioeventfd io = {.datamatch = value,
				   .addr = gpa,
				   .len = len,
				   .fd = fd,
				   .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
		return vm_ioctl_fail(err, "KVM_IOEVENTFD");
	return 0;
}
