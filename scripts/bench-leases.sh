#!/usr/bin/env bash
# bench-leases.sh - what read leases (NOBOUNCE_EXACT=auto, the default)
# cost next to none (NOBOUNCE_EXACT=off), in one run, interleaved:
#   per armed loop  build/prog/kcopy file-pipe, one big file: the lease is
#                   taken once, so this is the steady cost of the lease
#                   thread being there
#   per file        build/prog/manyfiles: the copy loop over many files,
#                   each taking (and letting go of) its own lease
# both with the peer on the same CPU and on the other one. Prints a
# markdown table of medians and writes results/bench-leases.md.
#
# Environment: BENCH_ROUNDS (default 5), BENCH_SIZE_MB (kcopy, default
# 512), BENCH_FILES (default 1000), BENCH_FILE_SIZE (default 1M),
# BENCH_CHUNK (default 64K).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-5}
SIZE_MB=${BENCH_SIZE_MB:-512}
FILES=${BENCH_FILES:-1000}
FSIZE=${BENCH_FILE_SIZE:-1M}
CHUNK=${BENCH_CHUNK:-64K}
for v in "$ROUNDS" "$SIZE_MB" "$FILES"; do
	case $v in '' | *[!0-9]* | 0) echo "bench-leases.sh: BENCH_ROUNDS, BENCH_SIZE_MB and BENCH_FILES must be positive integers" >&2; exit 2 ;; esac
done
[ -x build/prog/manyfiles ] && [ -x build/prog/kcopy ] && [ -f build/libnobounce.so ] || make -s lib progs
DIR=$(mktemp -d /dev/shm/nb-leases.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
build/prog/kcopy -p -s "${SIZE_MB}M" -f "$DIR/big" > /dev/null
mkdir "$DIR/many"
build/prog/manyfiles -p "$DIR/many" "$FILES" "$FSIZE"
mkdir -p results

python3 - "$DIR" "$ROUNDS" "$SIZE_MB" "$FILES" "$FSIZE" "$CHUNK" <<'PY'
import json, os, statistics, subprocess, sys
d, rounds, size_mb, files, fsize, chunk = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
lib = os.path.abspath("build/libnobounce.so")

def env(exact, stats):
    e = {k: v for k, v in os.environ.items() if not k.startswith("NOBOUNCE_")}
    e.update(LD_PRELOAD=lib, NOBOUNCE_EXACT=exact, NOBOUNCE_STATS=stats)
    return e

def run(kind, exact, aff):
    stats = os.path.join(d, f"stats-{os.getpid()}-{kind}-{exact}-{aff}.json")
    if os.path.exists(stats):
        os.unlink(stats)
    if kind == "loop":
        cmd = ["build/prog/kcopy", "-s", f"{size_mb}M", "-f", os.path.join(d, "big"), "-A", aff,
               "file-pipe", "plain", chunk]
    else:
        cmd = ["build/prog/manyfiles", "-A", aff, os.path.join(d, "many"), files, chunk]
    p = subprocess.run(cmd, env=env(exact, stats), capture_output=True, text=True, timeout=600)
    kv = dict(w.split("=", 1) for w in p.stdout.split() if "=" in w)
    if kv.get("status") != "ok":
        raise SystemExit(f"bench-leases: {' '.join(cmd)} failed: {p.stdout}{p.stderr}")
    leases = json.load(open(stats))["counters"]["leases_taken"]
    os.unlink(stats)
    if kind == "loop":
        return float(kv["MBps"]), float(kv["cpu_s_per_GB"]), leases
    b = float(kv["bytes"])
    return b / 1e6 / float(kv["wall_s"]), float(kv["cpu_s"]) / (b / 1e9), leases, float(kv["us_per_file"])

res = {}
for r in range(rounds):
    for kind in ("loop", "files"):
        for aff in ("same", "split"):
            order = ("off", "auto") if r % 2 == 0 else ("auto", "off")
            for exact in order:
                res.setdefault((kind, aff, exact), []).append(run(kind, exact, aff))

def med(xs, i):
    return statistics.median(x[i] for x in xs)

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
out = [f"Read leases: NOBOUNCE_EXACT=auto (leases) against off (none), {rounds} rounds interleaved, medians; "
       f"kernel {os.uname().release}, {cpu}, nproc {os.cpu_count()}", "",
       "| what | peer | off MB/s | auto MB/s | auto/off | off CPU s/GB | auto CPU s/GB | leases taken | auto - off per file |",
       "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
for kind in ("loop", "files"):
    for aff in ("same", "split"):
        o, a = res[(kind, aff, "off")], res[(kind, aff, "auto")]
        what = (f"one {size_mb} MiB file, {chunk} reads" if kind == "loop"
                else f"{files} files of {fsize}, {chunk} reads")
        per_file = ""
        if kind == "files":
            per_file = f"{med(a, 3) - med(o, 3):+.1f} us"
        out.append(f"| {what} | {aff} CPU | {med(o, 0):.0f} | {med(a, 0):.0f} | {med(a, 0) / med(o, 0):.2f} | "
                   f"{med(o, 1):.3f} | {med(a, 1):.3f} | {int(med(a, 2))} | {per_file} |")
text = "\n".join(out)
print(text)
open("results/bench-leases.md", "w").write(text + "\n")
PY
