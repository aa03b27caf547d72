"""Helpers shared by nectl's benchmarks: run a command, measure wall time and
peak RSS of the child (os.wait4), take medians over repeated, interleaved runs."""
import os
import statistics
import tempfile
import time


def run(cmd, stdout=None):
    """Runs cmd; returns (seconds, peak RSS in MiB). Raises on failure.

    posix_spawn (vfork) keeps this Python process's pages out of the child's
    ru_maxrss, which a fork()ed child would count until its exec."""
    errf = tempfile.TemporaryFile()
    outfd = os.open(stdout or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    actions = [(os.POSIX_SPAWN_DUP2, outfd, 1), (os.POSIX_SPAWN_DUP2, errf.fileno(), 2)]
    start = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    secs = time.perf_counter() - start
    os.close(outfd)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        errf.seek(0)
        err = errf.read().decode(errors="replace").strip()
        raise RuntimeError(f"{cmd[0]} failed ({code}): {err}")
    return secs, usage.ru_maxrss / 1024.0


def compare(cmd_a, cmd_b, rounds):
    """Interleaves runs of a and b; returns medians (secs_a, rss_a, secs_b, rss_b)."""
    a, b, ra, rb = [], [], [], []
    for _ in range(rounds):
        s, r = run(cmd_a)
        a.append(s)
        ra.append(r)
        s, r = run(cmd_b)
        b.append(s)
        rb.append(r)
    return statistics.median(a), max(ra), statistics.median(b), max(rb)


def write_random(path, size, seed):
    """Writes size pseudo-random bytes quickly (a 16 MiB random block, rotated)."""
    block = bytearray(os.urandom(16 << 20)) if seed is None else bytearray(
        (i * 2654435761 + seed) & 0xFF for i in range(1 << 16)) * 256
    with open(path, "wb") as f:
        left, k = size, 0
        while left > 0:
            n = min(left, len(block))
            f.write(block[k % 251:] [:n] if n < len(block) - 251 else block[:n])
            left -= n
            k += 1


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {os.uname().release}"
