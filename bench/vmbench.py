"""Helpers shared by the benchmarks that boot enclaves (bench/boot, bench/vsock):
the xfer EIF, the files QEMU and nectl need inside the TCG shell VM
(scripts/shellvm.sh; this host's own /dev/kvm cannot run Linux), one shell VM
run of a generated script, and its "RESULT ..." lines."""
import json
import os
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU = shutil.which(os.environ.get("QEMU", "qemu-system-x86_64")) or "/usr/bin/qemu-system-x86_64"
# -M microvm with -kernel: qboot as the BIOS, linuxboot_dma to load the kernel.
QEMU_FIRMWARE = ["qboot.rom", "bios-microvm.bin", "linuxboot_dma.bin", "linuxboot.bin",
                 "kvmvapic.bin", "pvh.bin"]
# /dev/vhost-vsock, in dependency order.
VHOST_MODULES = ["drivers/vhost/vhost_iotlb", "drivers/vhost/vhost", "net/vmw_vsock/vsock",
                 "net/vmw_vsock/vmw_vsock_virtio_transport_common", "drivers/vhost/vhost_vsock"]


def die(msg):
    print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cmd, **kw):
    """Runs cmd; its stdout, or die with its stderr."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        die(f"{' '.join(cmd[:3])} failed ({p.returncode}): {p.stderr.strip()[-600:]}")
    return p.stdout


def tools(argv):
    """nectl from argv[1] (default build/nectl), xfer next to it in the build tree."""
    nectl = os.path.abspath(argv[1] if len(argv) > 1 else "build/nectl")
    xfer = os.environ.get("XFER", os.path.join(os.path.dirname(nectl), "tests/tools/xfer"))
    if not os.access(xfer, os.X_OK):
        die(f"{xfer} missing (built only without sanitizers; set XFER)")
    return nectl, os.path.abspath(xfer)


def emulate_available(nectl):
    p = subprocess.run([nectl, "run-enclave", "--help"], capture_output=True, text=True)
    return "--emulate" in p.stdout + p.stderr


def build_eif(nectl, xfer, work, name="xfer", extra=()):
    """The EIF the contenders boot: busybox and xfer, running `xfer serve`
    (extra: more build-enclave options); extracted too, for QEMU's
    -kernel/-initrd/-append."""
    root = f"{work}/root"
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(f"{root}/bin")
    shutil.copy(xfer, f"{root}/bin/xfer")
    shutil.copy("/bin/busybox", f"{root}/bin/busybox")
    eif = f"{work}/{name}.eif"
    check([nectl, "build-enclave", "--rootfs", root, "--cmd", '["/bin/xfer", "serve"]',
           "--output-file", eif, "--build-time", "1700000000", *extra])
    ex = f"{work}/{name}.extracted"
    shutil.rmtree(ex, ignore_errors=True)
    os.makedirs(ex)
    check([nectl, "extract-eif", "--eif-path", eif, "--output-dir", ex])
    return eif, ex


def modules_dir(nectl):
    info = json.loads(check([nectl, "kernel", "fetch"]))
    return info["ModulesDir"]


class Files:
    """The shell VM's --file list, one host file per guest path."""

    def __init__(self):
        self.map = {}

    def add(self, host, guest):
        self.map[guest] = os.path.realpath(host)

    def add_dynamic(self, binary, guest):
        """A dynamic binary and the libraries ldd names, at the same paths."""
        self.add(binary, guest)
        for word in check(["ldd", binary]).split():
            if word.startswith("/"):
                self.add(word, word)

    def add_qemu(self, work, nectl):
        self.add_dynamic(QEMU, "/usr/bin/qemu-system-x86_64")
        for f in QEMU_FIRMWARE:
            if os.path.exists(f"/usr/share/qemu/{f}"):
                self.add(f"/usr/share/qemu/{f}", f"/usr/share/qemu/{f}")
        mods = modules_dir(nectl)
        os.makedirs(f"{work}/mods", exist_ok=True)
        for m in VHOST_MODULES:
            name = os.path.basename(m)
            with open(f"{work}/mods/{name}.ko", "wb") as out:
                subprocess.run(["xz", "-dc", f"{mods}/kernel/{m}.ko.xz"], stdout=out, check=True)
            self.add(f"{work}/mods/{name}.ko", f"/b/mods/{name}.ko")

    def args(self):
        out = []
        for guest, host in sorted(self.map.items()):
            out += ["--file", f"{host}:{guest}"]
        return out


# Shell functions every in-VM script starts with (busybox sh).
PRELUDE = r"""
X=/b/xfer
N=/b/nectl
export NECTL_RUN_DIR=/run/nectl
mkdir -p /run/nectl /tmp/b
fail() { echo "ERROR $*"; exit 1; }
# vhost-vsock for QEMU, when the benchmark runs QEMU (Files.add_qemu): the
# shell VM's /init loads only KVM.
if [ -d /b/mods ]; then
	for m in vhost_iotlb vhost vsock vmw_vsock_virtio_transport_common vhost_vsock; do
		insmod /b/mods/$m.ko || fail "insmod $m"
	done
fi
# cpu PID: user+system and guest CPU ticks of a process, all threads
# (/proc/PID/stat fields 14, 15, 43; comm has no spaces here).
cpu() { awk '{print $14 + $15, $43}' /proc/$1/stat; }
# wait_serve ADDR: until xfer serve answers there (the app starts after boot).
wait_serve() {
	i=0
	until $X --timeout 30 send $1 1K >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 600 ] || return 1
		sleep 1
	done
}
"""


def run_shellvm(files, script, work, timeout):
    """Runs script (busybox sh) in one shell VM; returns its output lines and
    the runner's status."""
    path = f"{work}/inner.sh"
    with open(path, "w") as f:
        f.write(PRELUDE + script)
    files.add(path, "/b/inner.sh")
    cmd = [f"{ROOT}/scripts/shellvm.sh", "--mem", "4G", "--cpus", "2", "--timeout", str(timeout)]
    cmd += files.args() + ["--", "sh", "/b/inner.sh"]
    for attempt in (1, 2):
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with open(f"{work}/shellvm.log", "a" if attempt == 2 else "w") as f:
            f.write(p.stdout + "\n--- stderr\n" + p.stderr)
        # 125: the shell VM itself died (its kernel, under QEMU's emulated
        # SVM; docs/shellvm.md). Its partial results are dropped; once more.
        if p.returncode != 125 or attempt == 2:
            break
        print("the shell VM died (status 125); running the benchmark once more",
              file=sys.stderr)
    return p.stdout.splitlines(), p.returncode, p.stderr


def results(lines):
    """RESULT lines as lists of words (without the RESULT); ERROR lines."""
    res = [ln.split()[1:] for ln in lines if ln.startswith("RESULT ")]
    errors = [ln for ln in lines if ln.startswith("ERROR ")]
    return res, errors


def summary(values):
    return min(values), statistics.median(values)
