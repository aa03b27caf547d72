/*
 * kvmcheck - prove that /dev/kvm really executes guest code.
 *
 * Opening /dev/kvm proves little: nested SVM under an emulator can load the
 * modules and still fail at VMRUN.  So create a VM with one memory slot,
 * put a few bytes of real-mode code in it that write "OK" to port 0x3f8 and
 * halt, and run the vCPU until it halts.  Prints "kvmcheck: ok" and exits 0
 * only if both bytes arrived and the vCPU halted.
 *
 * Built static so it runs in the shell VM's busybox-only initramfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUEST_MEM	0x1000
#define GUEST_BASE	0x1000

static int fail(const char *what)
{
	fprintf(stderr, "kvmcheck: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(void)
{
	/* mov $0x3f8,%dx; mov $'O',%al; out %al,(%dx); mov $'K',%al;
	 * out %al,(%dx); mov $'\n',%al; out %al,(%dx); hlt */
	static const uint8_t code[] = {
		0xba, 0xf8, 0x03,
		0xb0, 'O', 0xee,
		0xb0, 'K', 0xee,
		0xb0, '\n', 0xee,
		0xf4,
	};
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	char out[16];
	size_t nout = 0;
	int kvm, vm, vcpu, mmap_size, api;
	uint8_t *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("open /dev/kvm");
	api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "kvmcheck: KVM API version %d, want %d\n",
			api, KVM_API_VERSION);
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");

	mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap guest memory");
	memcpy(mem, code, sizeof(code));

	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = GUEST_BASE;
	region.memory_size = GUEST_MEM;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(*run))
		return fail("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   vcpu, 0);
	if (run == MAP_FAILED)
		return fail("mmap kvm_run");

	/* Real mode, CS base 0 so that CS:IP = 0:GUEST_BASE. */
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return fail("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return fail("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_BASE;
	regs.rflags = 0x2;	/* bit 1 is reserved and must be set */
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return fail("KVM_SET_REGS");

	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			return fail("KVM_RUN");
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.direction == KVM_EXIT_IO_OUT &&
			    run->io.port == 0x3f8 && run->io.size == 1) {
				char c = *((char *)run + run->io.data_offset);

				putchar(c);
				fflush(stdout);
				if (nout < sizeof(out))
					out[nout++] = c;
				break;
			}
			fprintf(stderr, "kvmcheck: unexpected io port 0x%x\n",
				run->io.port);
			return 1;
		case KVM_EXIT_HLT:
			if (nout != 3 || memcmp(out, "OK\n", 3) != 0) {
				fprintf(stderr,
					"kvmcheck: guest halted after %zu bytes, want \"OK\\n\"\n",
					nout);
				return 1;
			}
			printf("kvmcheck: ok\n");
			return 0;
		case KVM_EXIT_FAIL_ENTRY:
			fprintf(stderr,
				"kvmcheck: entry failed, reason 0x%llx\n",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			return 1;
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "kvmcheck: internal error, suberror %u\n",
				run->internal.suberror);
			return 1;
		default:
			fprintf(stderr, "kvmcheck: unexpected exit reason %u\n",
				run->exit_reason);
			return 1;
		}
	}
}
