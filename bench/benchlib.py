"""Helpers shared by nectl's benchmarks: run a command, measure wall time and
peak RSS of the child (os.wait4), take medians over repeated, interleaved runs."""
import os
import statistics
import subprocess
import tempfile
import time


RUNRSS = os.environ.get("RUNRSS", "build/bench/runrss")


def run(cmd, stdout=None):
    """Runs cmd through bench/runrss; returns (seconds, peak RSS in MiB)."""
    with tempfile.NamedTemporaryFile("r") as res, tempfile.TemporaryFile() as errf:
        out = open(stdout or os.devnull, "wb")
        code = subprocess.call([RUNRSS, res.name] + cmd, stdout=out, stderr=errf)
        out.close()
        if code != 0:
            errf.seek(0)
            err = errf.read().decode(errors="replace").strip()
            raise RuntimeError(f"{cmd[0]} failed ({code}): {err}")
        secs, kib = res.read().split()
    return float(secs), int(kib) / 1024.0


def compare(cmd_a, cmd_b, rounds):
    """Interleaves runs of a and b. Returns a dict with the fastest and median
    times and the peak RSS of each. The fastest run is the least disturbed by
    other load on a shared machine; the median shows the spread."""
    a, b, ra, rb = [], [], [], []
    for _ in range(rounds):
        s, r = run(cmd_a)
        a.append(s)
        ra.append(r)
        s, r = run(cmd_b)
        b.append(s)
        rb.append(r)
    return {"a_min": min(a), "a_med": statistics.median(a), "a_rss": max(ra),
            "b_min": min(b), "b_med": statistics.median(b), "b_rss": max(rb)}


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
