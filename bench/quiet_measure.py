#!/usr/bin/env python3
"""Runs one benchmark command on a quiet machine and prints its record as one JSON line: the
measurement core of compare_torch.sh and compare_encdec.sh.

Interpreter: any python3 >= 3.8, standard library only (the scripts use Debian's
/usr/bin/python3).

  quiet_measure.py SHAPE ENV LABEL QUIET_MAX RETRIES [--stdout FILE] -- COMMAND...

Before the run it waits (up to QUIET_MAX seconds; 0: not at all) until the cores are idle
(under 10% busy over 3 s). The record is the command's last line of standard output when that
is a JSON object, else an empty one; it is extended with wall_s, cpu_s, peak_rss_mb (the
child's maximum RSS, unless the command reported one), shape, env (", OMP_WAIT_POLICY=..."
appended when that is set), bench = LABEL (when LABEL is not empty), and other_cpu_frac: the
CPU time other processes used during the run (from /proc/stat before and after, minus the
child's rusage) over wall time x cores. When that exceeds 5% the command runs again, up to
RETRIES more times; the last run is kept. The command's output is echoed to standard error,
indented, unless --stdout FILE is given, which receives it instead (e.g. translations).
"""
import json
import os
import subprocess
import sys
import time


def stat():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f[:8]), f[3] + f[4]  # total, idle + iowait (jiffies)


def busy_over(seconds):
    t0, i0 = stat()
    time.sleep(seconds)
    t1, i1 = stat()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(quiet_max):
    deadline, waited = time.time() + quiet_max, 0.0
    while quiet_max > 0 and busy_over(3.0) > 0.10 and time.time() < deadline:
        waited += 3.0
    if waited:
        print(f"    (waited {waited:.0f} s for idle cores)", file=sys.stderr)


def run(cmd, quiet_max, stdout_file):
    hz, ncpu = os.sysconf("SC_CLK_TCK"), os.cpu_count()
    wait_quiet(quiet_max)
    t0, i0 = stat()
    w0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - w0
    t1, i1 = stat()
    if stdout_file:
        with open(stdout_file, "w") as fh:
            fh.write(out)
    else:
        for line in out.splitlines():
            print("    " + line, file=sys.stderr)
    if status != 0:
        sys.exit(f"quiet_measure.py: failed ({status}): {' '.join(cmd)}")
    rec = {}
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if not stdout_file and last.startswith("{"):
        rec = json.loads(last)
    own = ru.ru_utime + ru.ru_stime
    busy = ((t1 - t0) - (i1 - i0)) / hz
    rec.setdefault("peak_rss_mb", round(ru.ru_maxrss / 1024.0, 1))
    rec.update(wall_s=round(wall, 3), cpu_s=round(own, 2),
               other_cpu_frac=round(max(0.0, busy - own) / (wall * ncpu), 3))
    return rec


def main():
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") < 5:
        sys.exit(__doc__.split("\n\n")[1])
    shape, envname, label, quiet_max, retries = argv[:5]
    opts, cmd = argv[5:argv.index("--")], argv[argv.index("--") + 1:]
    stdout_file = opts[1] if opts[:1] == ["--stdout"] and len(opts) == 2 else None
    retries = int(retries)
    for attempt in range(1 + retries):
        rec = run(cmd, float(quiet_max), stdout_file)
        if rec["other_cpu_frac"] <= 0.05:
            break
        print(f"    (other processes took {100 * rec['other_cpu_frac']:.0f}% of the CPU: "
              f"{'measuring again' if attempt < retries else 'kept, see the other load column'})",
              file=sys.stderr)
    if os.environ.get("OMP_WAIT_POLICY"):
        envname += ", OMP_WAIT_POLICY=" + os.environ["OMP_WAIT_POLICY"]
    rec.update(shape=shape, env=envname)
    if label:
        rec["bench"] = label
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
