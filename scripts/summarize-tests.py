"""Counts test cases from Meson's test logs: cmocka's per-program summary lines,
the CLI suite's own "N passed, N failed" line, or the program's exit status.
Names each failing test with the last lines it printed just before the closing
line, so that the tail of a CI log says what failed."""
import json
import re
import sys

passed = failed = skipped = retried = 0
failures = []
for build in sys.argv[1:]:
    with open(f"{build}/meson-logs/testlog.json") as log:
        for line in log:
            t = json.loads(line)
            out = t.get("stdout", "") + t.get("stderr", "")
            if t["result"] == "SKIP":
                skipped += 1
                continue
            ok = t["result"] == "OK"
            p = sum(int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", out))
            f = sum(int(n) for n in re.findall(r"\[  FAILED  \] (\d+) test", out))
            m = re.findall(r"^(\d+) passed, (\d+) failed", out, re.M)
            if m:
                p, f = int(m[-1][0]), int(m[-1][1])
            r = re.findall(r"^\d+ passed, \d+ failed, (\d+) retried", out, re.M)
            if r:
                retried += int(r[-1])
            if p == 0 and f == 0:
                p, f = (1, 0) if ok else (0, 1)
            if not ok and f == 0:
                f = 1
            passed += p
            failed += f
            if f:
                failures.append((build, t, out))
for build, t, out in failures:
    print(f"FAILED: {t['name']} in {build} ({t['result']}, {t.get('duration', 0):.0f} s)")
    marks = [l for l in out.splitlines() if re.match(r"^(FAIL|not ok|\[  FAILED  \])", l)]
    for line in (marks or out.splitlines())[-12:]:
        print(f"  {line[:200]}")
if retried:
    print(f"retried: {retried} runs the emulator lost (shell VM or nested guest), "
          "each with its evidence in its test's log; see docs/shellvm.md")
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
