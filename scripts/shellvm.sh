#!/bin/bash
# shellvm.sh - run a command inside a throwaway "shell VM" whose /dev/kvm works.
#
# This host's KVM is nested and cannot boot Linux, but QEMU's TCG emulates
# AMD SVM, so a Linux VM under TCG gets a working /dev/kvm.  We boot Debian's
# cloud kernel with a busybox initramfs that loads irqbypass/kvm/kvm-amd,
# run COMMAND, and carry its output and exit status back over the serial
# console between per-run markers.  See docs/shellvm.md.
#
# Usage: scripts/shellvm.sh [--mem 4G] [--cpus 2] [--timeout S] [--cpu MODEL]
#            [--file HOSTPATH[:GUESTPATH]]... [--module REL]... -- COMMAND [ARG]...
#
# --module REL loads one more of the kernel's modules (REL under its
# kernel/ directory, without .ko: net/vmw_vsock/vsock), after KVM's, in the
# order given.
#
# Exit status: COMMAND's status; 124 if COMMAND ran but did not finish within
# the timeout, or the VM stalled after its OOM killer ran; 125 if the VM
# failed (before or while running COMMAND, or stalled: see below).
#
# Liveness: the VM's init writes a line to its second serial port every 5 s,
# with the kernel's own messages (every level) on the same port. A VM whose
# ticks stop for SHELLVM_STALL_TIMEOUT seconds (default 120) while COMMAND
# runs has stalled (its kernel no longer schedules a shell loop): it is
# stopped and reported as dead (125) with the kernel's last lines, unless
# those show the OOM killer, which a command can cause (then 124).
#
# Environment: SHELLVM_KERNEL, SHELLVM_MODULES_DIR (kernel and its modules;
# default: from `build/nectl kernel fetch` or /var/cache/nectl/kernels),
# SHELLVM_BUSYBOX (default /bin/busybox, must be static), SHELLVM_CACHE
# (initramfs cache dir), SHELLVM_VERBOSE=1 (echo the whole serial log to
# stderr), SHELLVM_PIDFILE (QEMU's PID is written there, for tests),
# QEMU (default qemu-system-x86_64).
set -u

prog=shellvm
mem=4G
cpus=2
timeout=600
# The guest must see SVM for kvm-amd.  CX16 must be hidden: TCG sometimes
# double-faults on the kernel's "cmpxchg16b %gs:" (SLUB's fast path), half of
# all boots with plain EPYC; with -cx16 the kernel emulates it and every boot
# we measured succeeded.  Numbers in docs/shellvm.md.
cpu=${SHELLVM_CPU:-EPYC,-cx16}
# SHELLVM_ACCEL lets one try e.g. tcg,thread=single; see docs/shellvm.md.
accel=${SHELLVM_ACCEL:-tcg}
# TCG's TSC calibration can hang without this hint; any plausible value works.
tsc_khz=2000000
retries=${SHELLVM_RETRIES:-2}
# Seconds allowed from power-on to COMMAND start before we call it a hang.
boot_timeout=${SHELLVM_BOOT_TIMEOUT:-60}
stall_timeout=${SHELLVM_STALL_TIMEOUT:-120}
files=()
extra=()

die() { echo "$prog: $*" >&2; exit 125; }
usage() {
	sed -n '10,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "${1:-125}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--mem) mem=${2:?}; shift 2 ;;
	--cpus) cpus=${2:?}; shift 2 ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	--cpu) cpu=${2:?}; shift 2 ;;
	--file) files+=("${2:?}"); shift 2 ;;
	--module) extra+=("${2:?}"); shift 2 ;;
	--) shift; break ;;
	-h|--help) usage 0 ;;
	*) echo "$prog: unknown option: $1" >&2; usage ;;
	esac
done
[ $# -gt 0 ] || usage
case $timeout in ''|*[!0-9]*) die "--timeout wants whole seconds: $timeout" ;; esac
case $boot_timeout in ''|*[!0-9]*) die "SHELLVM_BOOT_TIMEOUT wants whole seconds" ;; esac
case $retries in ''|*[!0-9]*) die "SHELLVM_RETRIES wants a number" ;; esac
case $stall_timeout in ''|*[!0-9]*) die "SHELLVM_STALL_TIMEOUT wants whole seconds" ;; esac

here=$(cd "$(dirname "$0")/.." && pwd)
qemu=${QEMU:-qemu-system-x86_64}
busybox=${SHELLVM_BUSYBOX:-/bin/busybox}
command -v "$qemu" >/dev/null || die "$qemu not found (install qemu-system-x86)"
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
# A dynamic busybox would need its libc in the initramfs; refuse it early.
if file -L "$busybox" 2>/dev/null | grep -q 'dynamically linked'; then
	die "$busybox is dynamically linked; install busybox-static"
fi

# --- locate the kernel and its modules ---------------------------------
kernel=${SHELLVM_KERNEL:-}
moddir=${SHELLVM_MODULES_DIR:-}
if [ -z "$kernel" ] || [ -z "$moddir" ]; then
	json=
	if [ -x "$here/build/nectl" ]; then
		json=$("$here/build/nectl" kernel fetch 2>/dev/null) || json=
	fi
	if [ -n "$json" ]; then
		kernel=${kernel:-$(printf '%s\n' "$json" | sed -n 's/^ *"Kernel": *"\(.*\)",\{0,1\}$/\1/p')}
		moddir=${moddir:-$(printf '%s\n' "$json" | sed -n 's/^ *"ModulesDir": *"\(.*\)",\{0,1\}$/\1/p')}
	fi
fi
if [ -z "$kernel" ] || [ -z "$moddir" ]; then
	# Fall back to the newest cached kernel; only directories that hold
	# boot/vmlinuz-<dirname> and kvm-amd are x86 kernels (the cache holds
	# other architectures and apt's files too).
	kdir=
	for d in $(ls -d /var/cache/nectl/kernels/*/ 2>/dev/null | sort -V); do
		d=${d%/}
		[ -r "$d/boot/vmlinuz-${d##*/}" ] || continue
		ls "$d/lib/modules/${d##*/}/kernel/arch/x86/kvm/kvm-amd.ko"* \
			>/dev/null 2>&1 && kdir=$d
	done
	[ -n "$kdir" ] || die "no kernel: run 'build/nectl kernel fetch' or set SHELLVM_KERNEL and SHELLVM_MODULES_DIR"
	kver=${kdir##*/}
	kernel=${kernel:-$kdir/boot/vmlinuz-$kver}
	moddir=${moddir:-$kdir/lib/modules/$kver}
fi
[ -r "$kernel" ] || die "kernel not readable: $kernel"
mods=()
for m in virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd; do
	f=$moddir/kernel/$m.ko.xz
	[ -r "$f" ] || f=$moddir/kernel/$m.ko
	[ -r "$f" ] || die "module missing: $moddir/kernel/$m.ko[.xz]"
	mods+=("$f")
done
# Extra modules travel in the payload, not the cached base.
xmods=()
for m in ${extra[@]+"${extra[@]}"}; do
	case $m in ''|/*|*..*) die "--module wants a path under kernel/: $m" ;; esac
	f=$moddir/kernel/$m.ko.xz
	[ -r "$f" ] || f=$moddir/kernel/$m.ko
	[ -r "$f" ] || die "module missing: $moddir/kernel/$m.ko[.xz]"
	xmods+=("$f")
done

# --- temp dir, cleaned up on every exit ---------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shellvm.XXXXXX") || die "mktemp failed"
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the /init of the shell VM ------------------------------------------
# Written out here so that its text takes part in the cache hash.
# The per-run parts (nonce, command) come from the payload archive.
init_script='#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp SHELLVM=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts
# The initramfs may lack /dev/console, so reattach stdio to the serial port.
exec </dev/console >/dev/console 2>&1
# Keep the bytes the command writes: no \n -> \r\n translation, no echo.
stty -onlcr -echo 2>/dev/null
nonce=$(cat /shellvm/nonce)
off() { sync; poweroff -f; echo o >/proc/sysrq-trigger; sleep 2; reboot -f; }
fail() { echo "SHELLVM-FAIL $nonce $*"; off; }
for m in irqbypass kvm kvm-amd; do
	out=$(insmod /lib/modules/$m.ko 2>&1) || fail "insmod $m failed: $out"
done
[ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm-amd (CPU model lacks SVM?)"
for m in $(cat /shellvm/modules 2>/dev/null); do
	out=$(insmod /lib/modules/extra/$m.ko 2>&1) || fail "insmod $m failed: $out"
done
# Signs of life and the kernel'"'"'s messages on the second serial port, for
# the host'"'"'s watchdog (scripts/shellvm.sh, "Liveness").
if [ -c /dev/ttyS1 ]; then
	stty -F /dev/ttyS1 -onlcr 2>/dev/null
	cat /proc/kmsg >/dev/ttyS1 2>/dev/null &
	(while :; do echo "SHELLVM-ALIVE $(cut -d" " -f1 /proc/uptime)"; sleep 5; done) \
		>/dev/ttyS1 2>/dev/null &
fi
# Only emergencies on the console from here on: kernel chatter would mix
# into the command output.
echo 1 >/proc/sys/kernel/printk
ip link set lo up 2>/dev/null
cd /
echo "SHELLVM-START $nonce"
sh /shellvm/cmd </dev/null
st=$?
echo "SHELLVM-EXIT $nonce $st"
off
'

# --- base initramfs: busybox, modules, /init; cached by content hash ----
hash=$( {
	printf '%s' "$init_script"
	sha256sum "$busybox" "${mods[@]}" | cut -d" " -f1
} | sha256sum | cut -c1-16)
if [ -n "${SHELLVM_CACHE:-}" ]; then
	cache=$SHELLVM_CACHE
elif mkdir -p "$here/build/shellvm" 2>/dev/null && [ -w "$here/build/shellvm" ]; then
	cache=$here/build/shellvm
else
	cache=${TMPDIR:-/tmp}/shellvm-cache-$(id -u)
fi
mkdir -p "$cache" || die "cannot create cache dir $cache"
base=$cache/base-$hash.cpio
if [ ! -s "$base" ]; then
	r=$tmp/base
	mkdir -p "$r"/bin "$r"/sbin "$r"/usr/bin "$r"/usr/sbin "$r"/lib/modules \
		"$r"/proc "$r"/sys "$r"/dev "$r"/tmp "$r"/root "$r"/shellvm
	cp "$busybox" "$r/bin/busybox"
	for a in $("$busybox" --list-full); do
		[ -e "$r/$a" ] || [ -L "$r/$a" ] || ln -s /bin/busybox "$r/$a"
	done
	for f in "${mods[@]}"; do
		n=$(basename "$f"); n=${n%.xz}
		case $f in
		*.xz) xz -dc "$f" >"$r/lib/modules/$n" || die "cannot decompress $f" ;;
		*) cp "$f" "$r/lib/modules/$n" ;;
		esac
	done
	printf '%s' "$init_script" >"$r/init"
	chmod 755 "$r/init"
	# Build next to the final name, then rename: concurrent runs stay safe.
	(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
		>"$base.$$" || die "cpio failed"
	mv -f "$base.$$" "$base"
	rm -rf "$r"
fi

# --- payload archive: files, command, nonce; appended to the base -------
# The kernel unpacks concatenated cpio archives in order, so the payload
# needs no rebuild of the cached part.
p=$tmp/payload
mkdir -p "$p/shellvm"
nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$nonce" >"$p/shellvm/nonce"
if [ ${#xmods[@]} -gt 0 ]; then
	mkdir -p "$p/lib/modules/extra"
	for f in "${xmods[@]}"; do
		n=$(basename "$f"); n=${n%.xz}
		case $f in
		*.xz) xz -dc "$f" >"$p/lib/modules/extra/$n" || die "cannot decompress $f" ;;
		*) cp "$f" "$p/lib/modules/extra/$n" ;;
		esac
		printf '%s\n' "${n%.ko}" >>"$p/shellvm/modules"
	done
fi
for spec in "${files[@]}"; do
	src=${spec%%:*}
	if [ "$src" = "$spec" ]; then dst=/$(basename "$src"); else dst=${spec#*:}; fi
	case $dst in /*) ;; *) dst=/$dst ;; esac
	[ -e "$src" ] || die "--file: no such file: $src"
	mkdir -p "$p$(dirname "$dst")"
	cp -a "$src" "$p$dst" || die "--file: cannot copy $src"
done
# Quote each argument for the guest's ash: 'x'\''y' works in any POSIX sh.
{
	printf 'exec'
	for a in "$@"; do
		printf " '%s'" "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"
	done
	printf '\n'
} >"$p/shellvm/cmd"
(cd "$p" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
	>"$tmp/payload.cpio" || die "cpio failed"
cat "$base" "$tmp/payload.cpio" >"$tmp/initramfs.cpio"
rm -rf "$p"

# --- boot ---------------------------------------------------------------
# One attempt: boot, stream the serial console, print COMMAND's output.
# Leaves the outcome in $tmp/state: boot (never started), fail, run
# (started, never finished) or done, and the status in $tmp/status.
attempt() {
	local state=boot line buf='' msg now t0 deadline boot_deadline timedout=0 sz
	panicked=0 stalled=0
	: >"$tmp/serial.log"
	: >"$tmp/alive.log"
	alive_size=0 alive_at=
	echo boot >"$tmp/state"
	rm -f "$tmp/status" "$tmp/failmsg" "$tmp/serial"
	mkfifo "$tmp/serial" || die "mkfifo failed"
	# -M microvm boots fastest; pit/pic/rtc keep TCG's TSC calibration sane.
	"$qemu" \
		-M microvm,pit=on,pic=on,rtc=on -accel "$accel" -cpu "$cpu" \
		-m "$mem" -smp "$cpus" -nographic -no-reboot -no-user-config \
		-kernel "$kernel" -initrd "$tmp/initramfs.cpio" \
		-append "console=ttyS0 tsc_early_khz=$tsc_khz quiet panic=-1 rdinit=/init" \
		-serial mon:stdio -chardev file,id=alive,path="$tmp/alive.log" \
		-device isa-serial,chardev=alive,index=1,iobase=0x2f8,irq=3 \
		</dev/null >"$tmp/serial" 2>"$tmp/qemu.err" &
	qpid=$!
	[ -n "${SHELLVM_PIDFILE:-}" ] && echo "$qpid" >"$SHELLVM_PIDFILE"
	exec 3<"$tmp/serial"
	t0=$(date +%s)
	deadline=$((t0 + timeout))
	vm_panic=
	done_at=
	# A boot that hangs (TSC calibration, emulator faults) should be retried
	# long before the command's own timeout.
	boot_deadline=$((t0 + (boot_timeout < timeout ? boot_timeout : timeout)))
	while :; do
		now=$(date +%s)
		if [ "$state" = boot ] && [ "$now" -ge "$boot_deadline" ] ||
		   [ "$now" -ge "$deadline" ]; then
			timedout=1
			kill "$qpid" 2>/dev/null
			break
		fi
		# The kernel panicked while COMMAND ran and nothing but kernel
		# lines followed for 30 s: the VM is dead (it does not always
		# reboot or exit by itself), so do not wait for the timeout.
		# The command has ended and its status is in: a VM that does not
		# power off within 30 s (seen once: its poweroff hung) is stopped
		# rather than waited for until the timeout.
		if [ -n "$done_at" ] && [ $((now - done_at)) -ge 30 ]; then
			echo "$prog: the VM did not power off 30 s after the command ended; stopped it" >&2
			kill "$qpid" 2>/dev/null
			break
		fi
		# The watchdog (see "Liveness" above): armed by the first tick.
		sz=$(stat -c %s "$tmp/alive.log" 2>/dev/null || echo 0)
		if [ "$sz" != "$alive_size" ]; then
			alive_size=$sz alive_at=$now
		elif [ "$state" = run ] && [ -z "$done_at" ] && [ -n "$alive_at" ] &&
		     [ $((now - alive_at)) -ge "$stall_timeout" ]; then
			echo "$prog: the VM stalled: no sign of life from it for $((now - alive_at)) s while the command ran" >&2
			stalled=1
			kill -KILL "$qpid" 2>/dev/null
			break
		fi
		if [ -n "$vm_panic" ] && [ $((now - vm_panic)) -ge 30 ]; then
			echo "$prog: the VM's kernel panicked while the command ran" >&2
			kill "$qpid" 2>/dev/null
			break
		fi
		if IFS= read -r -t 2 line <&3; then
			line=$buf$line
			buf=
		elif [ $? -gt 128 ]; then
			# Timed out: bash keeps the partial line; wait for the rest.
			buf=$buf$line
			continue
		else
			line=$buf$line
			[ -n "$line" ] || break
			buf=
		fi
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$tmp/serial.log"
		[ "${SHELLVM_VERBOSE:-0}" = 1 ] && printf '%s\n' "$line" >&2
		case $state in
		boot)
			if [ "$panicked" = 1 ]; then
				# The kernel's panic reboot does not always make QEMU
				# exit (-no-reboot notwithstanding): the VM boots again
				# by itself, which is as good as our own retry.
				panicked=0
				echo "$prog: VM rebooted itself after a kernel panic during boot; retrying ($fails/$retries)" >&2
				boot_deadline=$(( $(date +%s) + boot_timeout ))
			fi
			case $line in
			*"Kernel panic"*)
				fails=$((fails + 1))
				panicked=1
				if [ "$fails" -gt "$retries" ]; then
					kill "$qpid" 2>/dev/null
					break
				fi ;;
			*"SHELLVM-START $nonce"*)
				state=run; echo run >"$tmp/state" ;;
			*"SHELLVM-FAIL $nonce "*)
				msg=${line#*"SHELLVM-FAIL $nonce "}
				printf '%s\n' "$msg" >"$tmp/failmsg"
				state=fail; echo fail >"$tmp/state" ;;
			esac ;;
		run)
			case $line in
			*"SHELLVM-START $nonce"*)
				# The kernel panicked while COMMAND ran and the VM
				# rebooted itself into a second run: the first one is
				# lost, which is a dead VM (125), not a rerun.
				echo "$prog: the VM rebooted itself while the command ran" >&2
				kill "$qpid" 2>/dev/null
				break ;;
			*"SHELLVM-EXIT $nonce "*)
				# Output without a final newline shares the marker's line.
				printf '%s' "${line%%"SHELLVM-EXIT $nonce "*}"
				printf '%s\n' "${line##*"SHELLVM-EXIT $nonce "}" >"$tmp/status"
				state="done"; echo "done" >"$tmp/state"; done_at=$now ;;
			\[*"] Kernel panic - not syncing"*)
				vm_panic=$now
				printf '%s\n' "$line" ;;
			\[*) # kernel lines, during a panic too
				printf '%s\n' "$line" ;;
			*)
				vm_panic= # the command still talks: alive
				printf '%s\n' "$line" ;;
			esac ;;
		esac
	done
	exec 3<&-
	wait "$qpid"
	local rc=$?
	qpid=
	[ "$timedout" = 1 ] && return 124
	return "$rc"
}

explain() {
	# Why the VM died, from the serial log: the last kernel lines say most.
	echo "$prog: last serial console lines:" >&2
	grep -v '^$' "$tmp/serial.log" | tail -n 15 | sed 's/^/  | /' >&2
	# QEMU warns about every CPUID bit TCG lacks; those are noise here.
	grep -v "TCG doesn't support requested feature" "$tmp/qemu.err" |
		sed 's/^/  qemu: /' >&2
	# The kernel's messages of every level, from the second serial port.
	if grep -qv '^SHELLVM-ALIVE' "$tmp/alive.log" 2>/dev/null; then
		echo "$prog: the VM kernel's last messages (all levels):" >&2
		grep -av '^SHELLVM-ALIVE' "$tmp/alive.log" | tail -n 25 | sed 's/^/  k| /' >&2
	fi
	[ -s "$tmp/alive.log" ] && echo "$prog: its last sign of life: $(grep -a '^SHELLVM-ALIVE' "$tmp/alive.log" | tail -n 1)" >&2
}

fails=0	# boots that died before COMMAND started
panicked=0
while :; do
	start=$(date +%s)
	attempt
	qrc=$?
	state=$(cat "$tmp/state")
	case $state in
	done)
		st=$(cat "$tmp/status")
		case $st in ''|*[!0-9]*) die "garbled exit status: '$st'" ;; esac
		exit "$st" ;;
	fail)
		# A deterministic setup problem (modules, no SVM): retrying won't help.
		echo "$prog: VM setup failed: $(cat "$tmp/failmsg")" >&2
		exit 125 ;;
	run)
		if [ "$qrc" -eq 124 ]; then
			echo "$prog: command timed out after ${timeout}s" >&2
			explain
			exit 124
		fi
		if [ "$stalled" = 1 ] && grep -aq 'Out of memory\|oom-kill' "$tmp/alive.log"; then
			echo "$prog: the VM stalled after its OOM killer ran: the command's doing, not retried" >&2
			explain
			exit 124
		fi
		echo "$prog: VM died while the command ran (qemu status $qrc)" >&2
		explain
		exit 125 ;;
	esac
	# state=boot: the VM died or hung before COMMAND started.  Under TCG
	# that is usually emulator flakiness, so boot again.  A panic seen in
	# the log has been counted in $fails already.
	why="died during boot (qemu status $qrc)"
	[ "$qrc" -eq 124 ] && why="hung during boot"
	if [ "$panicked" = 1 ]; then
		why="kernel panic during boot"
	else
		fails=$((fails + 1))
	fi
	if [ "$fails" -gt "$retries" ]; then
		echo "$prog: VM $why; giving up after $fails failed boots" >&2
		explain
		exit 125
	fi
	echo "$prog: VM $why after $(( $(date +%s) - start ))s; retrying ($fails/$retries)" >&2
	[ "${SHELLVM_VERBOSE:-0}" = 1 ] && explain
done
