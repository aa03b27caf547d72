/* vCPU threads: boot state, the KVM_RUN loop and its exits, stopping. */
#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/kvm/vm.h"

static void vcpu_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	*s = (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
				  .present = 1, .dpl = 0, .db = code ? 0 : 1, .s = 1,
				  .l = code ? 1 : 0, .g = 1};
}

static int vcpu_load_boot(struct kvm_vcpu *c, const struct x86_boot_regs *r, struct nectl_err *err)
{
	struct kvm_sregs s;
	struct kvm_regs regs = {.rip = r->rip, .rsi = r->rsi, .rsp = r->rsp, .rflags = r->rflags};

	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return vm_ioctl_fail(err, "KVM_GET_SREGS");
	vcpu_segment(&s.cs, r->cs_sel, 11, true);
	vcpu_segment(&s.ds, r->ds_sel, 3, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	/* No TSS in the boot GDT: a busy 64-bit TSS at 0 satisfies VM entry. */
	s.tr = (struct kvm_segment){.limit = 0x67, .type = 11, .present = 1};
	s.ldt = (struct kvm_segment){.unusable = 1};
	s.gdt.base = r->gdt_base;
	s.gdt.limit = r->gdt_limit;
	s.cr0 = r->cr0;
	s.cr3 = r->cr3;
	s.cr4 = r->cr4;
	s.efer = r->efer;
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return vm_ioctl_fail(err, "KVM_SET_SREGS");
	if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
		return vm_ioctl_fail(err, "KVM_SET_REGS");
	return 0;
}

static void vcpu_record_stop(struct kvm_vm *vm, enum kvm_stop why, const char *detail)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->why == KVM_STOP_NONE) {
		vm->why = why;
		snprintf(vm->detail, sizeof(vm->detail), "%s", detail);
	}
	pthread_mutex_unlock(&vm->lock);
}

static void vcpu_io(struct kvm_vcpu *c)
{
	struct kvm_run *run = c->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	struct kvm_vm *vm = c->vm;

	/* String I/O (rep outs/ins) arrives as `count` items in a row. */
	pthread_mutex_lock(&vm->bus_lock);
	for (uint32_t i = 0; i < run->io.count && vm->bus.pio; i++)
		vm->bus.pio(vm->bus.ctx, run->io.port, run->io.direction == KVM_EXIT_IO_OUT,
			    data + (size_t)i * run->io.size, run->io.size);
	pthread_mutex_unlock(&vm->bus_lock);
}

static void vcpu_mmio(struct kvm_vcpu *c)
{
	struct kvm_run *run = c->run;
	struct kvm_vm *vm = c->vm;
	unsigned len = run->mmio.len <= 8 ? run->mmio.len : 8;

	pthread_mutex_lock(&vm->bus_lock);
	if (vm->bus.mmio)
		vm->bus.mmio(vm->bus.ctx, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data,
			     len);
	else if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
	pthread_mutex_unlock(&vm->bus_lock);
}

/* One exit; false when the vCPU must stop. */
static bool vcpu_exit(struct kvm_vcpu *c)
{
	struct kvm_run *run = c->run;
	char detail[256];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_io(c);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_mmio(c);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN: {
		struct kvm_regs regs = {0};
		struct kvm_sregs sregs = {0};

		/* Where it died says which stage of the boot it was (on Intel; AMD's
		 * KVM resets the vCPU before reporting, so there it reads 0xfff0). */
		ioctl(c->fd, KVM_GET_REGS, &regs);
		ioctl(c->fd, KVM_GET_SREGS, &sregs);
		snprintf(detail, sizeof(detail),
			 "vCPU %u: triple fault (KVM's registers after it: rip 0x%llx rsp 0x%llx "
			 "cr0 0x%llx cr3 0x%llx cr4 0x%llx)",
			 c->id, (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
			 (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr3,
			 (unsigned long long)sregs.cr4);
		vcpu_record_stop(c->vm, KVM_STOP_SHUTDOWN, detail);
		return false;
	}
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(detail, sizeof(detail), "vCPU %u: VM entry failed (reason 0x%llx)", c->id,
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_record_stop(c->vm, KVM_STOP_INTERNAL, detail);
		return false;
	case KVM_EXIT_INTERNAL_ERROR: {
		struct kvm_regs regs = {0};

		ioctl(c->fd, KVM_GET_REGS, &regs);
		snprintf(detail, sizeof(detail), "vCPU %u: KVM internal error (suberror %u) at rip 0x%llx",
			 c->id, run->internal.suberror, (unsigned long long)regs.rip);
		vcpu_record_stop(c->vm, KVM_STOP_INTERNAL, detail);
		return false;
	}
	default:
		snprintf(detail, sizeof(detail), "vCPU %u: unexpected exit %u", c->id,
			 run->exit_reason);
		vcpu_record_stop(c->vm, KVM_STOP_INTERNAL, detail);
		return false;
	}
}

static bool vcpu_should_stop(struct kvm_vm *vm)
{
	bool stop;

	pthread_mutex_lock(&vm->lock);
	stop = vm->why != KVM_STOP_NONE;
	pthread_mutex_unlock(&vm->lock);
	return stop;
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vcpu *c = arg;
	struct kvm_vm *vm = c->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (!vcpu_should_stop(vm)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				c->run->immediate_exit = 0;
				continue;
			}
			vcpu_record_stop(vm, KVM_STOP_INTERNAL, "KVM_RUN failed");
			break;
		}
		if (!vcpu_exit(c))
			break;
	}
	pthread_mutex_lock(&vm->lock);
	vm->running--;
	pthread_cond_broadcast(&vm->stopped);
	pthread_mutex_unlock(&vm->lock);
	/* One vCPU stopping stops the machine, as a reset or fault would. */
	kvm_vm_stop(vm, KVM_STOP_INTERNAL);
	return NULL;
}

/* Best effort, like taskset: the guest runs either way. */
static void vcpu_pin(struct kvm_vcpu *c)
{
	cpu_set_t set;

	if (c->host_cpu < 0 || c->host_cpu >= CPU_SETSIZE)
		return;
	CPU_ZERO(&set);
	CPU_SET(c->host_cpu, &set);
	pthread_setaffinity_np(c->thread, sizeof(set), &set);
}

int kvm_vm_start(struct kvm_vm *vm, const struct x86_boot_regs *regs, struct nectl_err *err)
{
	sigset_t set, old;

	if (vcpu_load_boot(&vm->cpu[0], regs, err) < 0)
		return -1;
	/* Threads start with SIGUSR1 blocked and unblock it inside their loop. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct kvm_vcpu *c = &vm->cpu[i];

		pthread_mutex_lock(&vm->lock);
		vm->running++;
		pthread_mutex_unlock(&vm->lock);
		if (pthread_create(&c->thread, NULL, vcpu_thread, c) != 0) {
			pthread_mutex_lock(&vm->lock);
			vm->running--;
			pthread_mutex_unlock(&vm->lock);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			kvm_vm_stop(vm, KVM_STOP_INTERNAL);
			return nectl_err_set(err, NECTL_ERR_FILE, "cannot start vCPU thread %u", i);
		}
		c->started = true;
		vcpu_pin(c);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

void kvm_vm_bus_lock(struct kvm_vm *vm)
{
	pthread_mutex_lock(&vm->bus_lock);
}

void kvm_vm_bus_unlock(struct kvm_vm *vm)
{
	pthread_mutex_unlock(&vm->bus_lock);
}

int kvm_vm_pin(struct kvm_vm *vm, const int *host_cpus, unsigned n)
{
	if (n != vm->ncpus)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		vm->cpu[i].host_cpu = host_cpus[i];
	return 0;
}

void kvm_vm_stop(struct kvm_vm *vm, enum kvm_stop why)
{
	vcpu_record_stop(vm, why, why == KVM_STOP_REQUESTED ? "stop requested" : "");
	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->stopped);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct kvm_vcpu *c = &vm->cpu[i];

		if (!c->started || pthread_equal(c->thread, pthread_self()))
			continue;
		/* immediate_exit covers a vCPU between its check and KVM_RUN. */
		c->run->immediate_exit = 1;
		pthread_kill(c->thread, SIGUSR1);
	}
}

enum kvm_stop kvm_vm_wait(struct kvm_vm *vm, char *detail, size_t len)
{
	enum kvm_stop why;

	pthread_mutex_lock(&vm->lock);
	/* Until every vCPU is out of KVM_RUN and off the bus too: after this,
	 * no device callback runs and the caller may free what they call. */
	while (vm->why == KVM_STOP_NONE || vm->running > 0)
		pthread_cond_wait(&vm->stopped, &vm->lock);
	why = vm->why;
	if (detail && len)
		snprintf(detail, len, "%s", vm->detail);
	pthread_mutex_unlock(&vm->lock);
	return why;
}

int kvm_vm_irq(struct kvm_vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq);
}

void kvm_vm_destroy(struct kvm_vm *vm)
{
	if (!vm)
		return;
	kvm_vm_stop(vm, KVM_STOP_REQUESTED);
	/* Every thread first: a stopping vCPU touches the others' kvm_run. */
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->cpu[i].started)
			pthread_join(vm->cpu[i].thread, NULL);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct kvm_vcpu *c = &vm->cpu[i];

		if (c->run)
			munmap(c->run, vm->run_size);
		if (c->fd >= 0)
			close(c->fd);
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->bus_lock);
	pthread_cond_destroy(&vm->stopped);
	free(vm);
}
