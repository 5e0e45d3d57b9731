#!/usr/bin/env bash
# bench-kernel.sh - where does a kernel copy path (sendfile, splice,
# copy_file_range) beat the plain read/write loop, per direction and per
# call size? (`make bench` runs it after bench.sh.)
#
# Runs build/prog/kcopy for every direction, every chunk size and every
# method that applies to the direction (plain and the kernel paths that
# `kcopy -l` lists), BENCH_ROUNDS interleaved rounds: each round runs every
# case once, the method order rotating from round to round, so drift of a
# noisy machine does not always hit the same method. Each run copies
# BENCH_SIZE_MB MiB from a tmpfs source file (created once, in /dev/shm)
# and reports wall time and the copying process's own CPU time.
#
# CPU placement (kcopy -A) is part of every case, because on a 2-CPU VM it
# decides more than the method does: a pipe or socket handoff between two
# CPUs costs an inter-processor wake-up per buffer-full, on one CPU it costs
# a context switch. Unpinned, the scheduler picks either from run to run
# and the results are bimodal. By default both pinned placements are run:
#   split  the copying process on one CPU, its peers on the other
#   same   the copying process and its peers on one CPU
# (file-file has no peer: it runs once, the copier pinned.)
#
# Prints, per direction and placement, a markdown table of medians over
# rounds (MB/s and CPU seconds per GB, MB = 10^6 bytes, GB = 10^9 bytes;
# ratios are kernel path / plain), then a break-even summary, and writes
# results/bench-kernel.{json,md}.
#
# Environment:
#   BENCH_ROUNDS      rounds (default 3)
#   BENCH_SIZE_MB     MiB copied per run (default 1024; 256 with BENCH_QUICK)
#   BENCH_QUICK=1     a short run: 256 MiB and chunks 4K 16K 64K 1M
#   BENCH_CHUNKS      chunk sizes (default "4K 16K 32K 64K 128K 1M")
#   BENCH_DIRS        directions (default all: kcopy -l)
#   BENCH_AFFINITY    placements, kcopy -A values (default "split same";
#                     "none" lets the scheduler decide)
#   BENCH_KCOPY_ARGS  extra kcopy options for every run (e.g. "-P 1M" for
#                     1 MiB endpoint pipes, "-R read" for a consumer that
#                     reads the data instead of splicing it away)
#   BENCH_VERIFY=1    compare every file destination with the source
#                     (outside the timed span; default 1 with BENCH_QUICK)
#   BENCH_SRC         source file (default /dev/shm/nb-kcopy.src; removed
#                     at the end if this script created it)
#   BENCH_OUT         output name (default results/bench-kernel: writes
#                     results/bench-kernel.md and .json)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROG=$ROOT/build/prog/kcopy
QUICK=${BENCH_QUICK:-0}
ROUNDS=${BENCH_ROUNDS:-3}
if [ "$QUICK" = 1 ]; then
	SIZE_MB=${BENCH_SIZE_MB:-256}
	CHUNKS=${BENCH_CHUNKS:-4K 16K 64K 1M}
	VERIFY=${BENCH_VERIFY:-1}
else
	SIZE_MB=${BENCH_SIZE_MB:-1024}
	CHUNKS=${BENCH_CHUNKS:-4K 16K 32K 64K 128K 1M}
	VERIFY=${BENCH_VERIFY:-0}
fi
SRC=${BENCH_SRC:-/dev/shm/nb-kcopy.src}
AFFS=${BENCH_AFFINITY:-split same}
OUT=${BENCH_OUT:-results/bench-kernel}
KARGS=${BENCH_KCOPY_ARGS:-}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

case $ROUNDS in '' | *[!0-9]* | 0) echo "bench-kernel.sh: BENCH_ROUNDS must be a positive integer" >&2; exit 2 ;; esac
case $SIZE_MB in '' | *[!0-9]* | 0) echo "bench-kernel.sh: BENCH_SIZE_MB must be a positive integer" >&2; exit 2 ;; esac
for a in $AFFS; do
	case $a in none | split | same) ;; *) echo "bench-kernel.sh: BENCH_AFFINITY: '$a' is not none, split or same" >&2; exit 2 ;; esac
done
[ -n "$AFFS" ] || { echo "bench-kernel.sh: BENCH_AFFINITY is empty" >&2; exit 2; }
[ -x "$PROG" ] || make -s progs

DIRS=${BENCH_DIRS:-$("$PROG" -l | cut -d' ' -f1 | tr '\n' ' ')}
declare -A METHODS
for d in $DIRS; do
	m=$("$PROG" -l | awk -v d="$d" '$1 == d { $1 = ""; print }')
	[ -n "$m" ] || { echo "bench-kernel.sh: unknown direction '$d' (kcopy -l)" >&2; exit 2; }
	METHODS[$d]=$m
done

# The source and one destination of the same size live in /dev/shm.
need_kb=$((SIZE_MB * 1024 * 2 + 65536))
have_kb=$(df -Pk "$(dirname "$SRC")" | awk 'NR == 2 { print $4 }')
if [ -e "$SRC" ]; then have_kb=$((have_kb + $(du -k "$SRC" | cut -f1))); fi
if [ "$have_kb" -lt "$need_kb" ]; then
	echo "bench-kernel.sh: $(dirname "$SRC") has ${have_kb} KiB free, need ${need_kb} (lower BENCH_SIZE_MB)" >&2
	exit 2
fi

TMP=$(mktemp -d /tmp/nb-bench-kernel.XXXXXX)
CREATED_SRC=0
[ -e "$SRC" ] || CREATED_SRC=1
cleanup() {
	rm -rf "$TMP"
	if [ "$CREATED_SRC" = 1 ]; then rm -f "$SRC"; fi
}
trap cleanup EXIT

mkdir -p "$(dirname "$OUT")"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
[ -n "$cpu" ] || cpu=$(uname -m)
MACHINE="kernel $(uname -r), $cpu, nproc $(nproc)"
SIZE_ARG=${SIZE_MB}M
VFLAG=
[ "$VERIFY" = 1 ] && VFLAG=-V
CMD="build/prog/kcopy -s $SIZE_ARG -f $SRC${KARGS:+ $KARGS}${VFLAG:+ $VFLAG} -A PLACEMENT DIRECTION METHOD CHUNK"
FIRST_AFF=${AFFS%% *}
# Placements a direction runs under: all, unless it has no peer.
affs_of() {
	case $1 in *pipe* | *tcp*) echo "$AFFS" ;; *) echo "$FIRST_AFF" ;; esac
}
INVOKED="$( (env | grep -E "^BENCH_" || true) | sort | tr "\n" " ")bash scripts/bench-kernel.sh"

ncases=0
for d in $DIRS; do
	for a in $(affs_of "$d"); do
		for c in $CHUNKS; do
			# shellcheck disable=SC2086
			set -- ${METHODS[$d]}
			ncases=$((ncases + $#))
		done
	done
done

echo "## nobounce kernel copy paths vs the plain loop"
echo
echo "machine: $MACHINE"
echo "invoked: $INVOKED"
echo "command: $CMD"
echo "rounds: $ROUNDS, $SIZE_MB MiB per run, chunks: $CHUNKS, placements: $AFFS"
echo "runs: $ncases per round, $((ncases * ROUNDS)) in all"
# Anything else running on a 2-CPU machine shows up in every number.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at start: $LOAD_START"
echo

printf 'preparing %s (%d MiB) ...' "$SRC" "$SIZE_MB"
"$PROG" -p -s "$SIZE_ARG" -f "$SRC"
echo " done"

start=$SECONDS
RUNS=$TMP/runs.txt
: > "$RUNS"
for ((r = 0; r < ROUNDS; r++)); do
	printf 'round %d/%d:' $((r + 1)) "$ROUNDS"
	for d in $DIRS; do
		# shellcheck disable=SC2206
		ms=(${METHODS[$d]})
		nm=${#ms[@]}
		for a in $(affs_of "$d"); do
			for c in $CHUNKS; do
				for ((i = 0; i < nm; i++)); do
					m=${ms[$(((r + i) % nm))]}
					rc=0
					# shellcheck disable=SC2086
					line=$("$PROG" -s "$SIZE_ARG" -f "$SRC" $KARGS $VFLAG -A "$a" "$d" "$m" "$c" 2> "$TMP/err") || rc=$?
					if [ $rc -eq 0 ] || [ $rc -eq 3 ]; then
						echo "round=$r affinity=$a $line" >> "$RUNS"
					else
						echo "round=$r affinity=$a kcopy dir=$d method=$m chunk=$c status=failed rc=$rc" >> "$RUNS"
						printf '\n  %s %s %s %s failed (rc %d): %s\n' "$a" "$d" "$m" "$c" $rc "$(head -c 300 "$TMP/err")"
					fi
				done
			done
		done
		printf ' %s' "$d"
	done
	printf ' (%ds)\n' $((SECONDS - start))
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at end: $LOAD_END"
echo

"$PY" - "$RUNS" "$ROUNDS" "$SIZE_MB" "$MACHINE" "$CMD" "$INVOKED" "$CHUNKS" "$DIRS" "$AFFS" "$KARGS" \
	"$LOAD_START" "$LOAD_END" $((SECONDS - start)) "$OUT" <<'EOF'
import json, os, statistics, sys, time

runs_path, rounds, size_mb, machine, cmd, invoked, chunks, dirs, affs, kargs = sys.argv[1:11]
load_start, load_end, elapsed, outname = sys.argv[11:15]
rounds, size_mb = int(rounds), int(size_mb)
dirs, affs = dirs.split(), affs.split()
chunk_names = chunks.split()
KERNEL_ORDER = ["sendfile", "splice", "cfr"]
AFF_TEXT = {
    "split": "copier on one CPU, peers on the other",
    "same": "copier and peers on one CPU",
    "none": "unpinned, the scheduler decides",
}

def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1].upper()] if s[-1].upper() in mult else int(s)

def size_name(n):
    for unit, mult in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)

chunks = [parse_size(c) for c in chunk_names]
names = [size_name(c) for c in chunks]
runs = []
with open(runs_path) as f:
    for line in f:
        kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
        kv["round"] = int(kv["round"])
        kv["chunk"] = parse_size(kv["chunk"])
        runs.append(kv)

# (affinity, dir, chunk, method) -> {round: (MBps, cpu_s_per_GB)}, statuses
cases, status = {}, {}
methods_seen = {}
for r in runs:
    key = (r["affinity"], r["dir"], r["chunk"], r["method"])
    status.setdefault(key, set()).add(r["status"])
    lst = methods_seen.setdefault(r["dir"], [])
    if r["method"] not in lst:
        lst.append(r["method"])
    if r["status"] == "ok":
        cases.setdefault(key, {})[r["round"]] = (float(r["MBps"]), float(r["cpu_s_per_GB"]))

groups = []  # (affinity, dir) in print order: by direction, then placement
for d in dirs:
    for a in affs:
        if any(k[0] == a and k[1] == d for k in status):
            groups.append((a, d))

def arrow(d):
    return d.replace("-", " -> ")

def label(a, d):
    if "pipe" not in d and "tcp" not in d:
        return f"{arrow(d)} (no peer; " + ("copier pinned)" if a != "none" else "unpinned)")
    return f"{arrow(d)}, {a}: {AFF_TEXT[a]}"

summary, out = {}, []
for a, d in groups:
    kernels = [m for m in KERNEL_ORDER if m in methods_seen.get(d, [])]
    gs = {"affinity": a, "direction": d, "kernel_paths": kernels, "chunks": {}}
    head = ["chunk", "plain MB/s", "plain CPU s/GB"]
    for k in kernels:
        head += [f"{k} MB/s", f"{k} CPU s/GB", f"{k} speed ratio", f"{k} CPU ratio"]
    lines = [f"### {label(a, d)}", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join(["---:"] * len(head)) + "|"]
    for c, cname in zip(chunks, names):
        pper = cases.get((a, d, c, "plain"), {})
        pm = statistics.median([v[0] for v in pper.values()]) if pper else float("nan")
        pc = statistics.median([v[1] for v in pper.values()]) if pper else float("nan")
        cs = {"plain": {"MBps": pm, "cpu_s_per_GB": pc,
                        "MBps_rounds": [pper[r][0] for r in sorted(pper)],
                        "cpu_s_per_GB_rounds": [pper[r][1] for r in sorted(pper)],
                        "status": sorted(status.get((a, d, c, "plain"), []))}}
        row = [cname, f"{pm:.0f}", f"{pc:.3f}"]
        for k in kernels:
            kper = cases.get((a, d, c, k), {})
            kst = sorted(status.get((a, d, c, k), []))
            paired = [kper[r][0] / pper[r][0] for r in sorted(kper) if r in pper]
            if not kper or not pper or not paired:
                row += ["-", "-", "-", "-"]
                cs[k] = {"status": kst}
                continue
            cpaired = [kper[r][1] / pper[r][1] for r in sorted(kper)
                       if r in pper and pper[r][1] > 0]
            km = statistics.median([v[0] for v in kper.values()])
            kc = statistics.median([v[1] for v in kper.values()])
            sr, cr = km / pm, (kc / pc if pc > 0 else float("nan"))
            cs[k] = {"MBps": km, "cpu_s_per_GB": kc, "speed_ratio": sr, "cpu_ratio": cr,
                     "speed_ratio_rounds": paired, "cpu_ratio_rounds": cpaired,
                     "MBps_rounds": [kper[r][0] for r in sorted(kper)],
                     "cpu_s_per_GB_rounds": [kper[r][1] for r in sorted(kper)],
                     "status": kst}
            rng = f" [{min(paired):.2f}..{max(paired):.2f}]" if len(paired) > 1 else ""
            row += [f"{km:.0f}", f"{kc:.3f}", f"{sr:.2f}{rng}", f"{cr:.2f}"]
        gs["chunks"][cname] = cs
        lines.append("| " + " | ".join(row) + " |")
    summary[f"{d}/{a}"] = gs
    out += lines + [""]

# Break-even: the fastest kernel path at each chunk against plain.
def best(gs, cname):
    cs = gs["chunks"].get(cname)
    if not cs:
        return None
    cands = [(v["MBps"], k) for k, v in cs.items() if k != "plain" and "MBps" in v]
    if not cands:
        return None
    k = max(cands)[1]
    return k, cs[k]

show = ["16K", "32K", "64K", "128K"]
head = ["direction", "placement", "first faster at", "faster from", "clearly faster from"] + \
       [f"best at {c}: speed ratio, CPU ratio" for c in show]
bl = ["### break-even: best kernel path vs plain", "",
      "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
for a, d in groups:
    gs = summary[f"{d}/{a}"]
    faster, clearly = [], []
    for cname in names:
        b = best(gs, cname)
        faster.append(b is not None and b[1]["speed_ratio"] > 1.0)
        clearly.append(b is not None and min(b[1]["speed_ratio_rounds"]) > 1.0)
    first = next((n for n, f in zip(names, faster) if f), None)
    def from_all(flags):
        return next((names[i] for i in range(len(names)) if all(flags[i:])), None)
    from_, clear_from = from_all(faster), from_all(clearly)
    cells = []
    for cname in show:
        b = best(gs, cname)
        if b is None:
            cells.append("-")
            continue
        k, v = b
        rr = v["speed_ratio_rounds"]
        mark = "" if min(rr) > 1 or max(rr) < 1 else "~"
        cells.append(f"{v['speed_ratio']:.2f}{mark} {k}, CPU {v['cpu_ratio']:.2f}")
    gs["break_even"] = {
        "first_faster_at": first, "faster_from": from_, "clearly_faster_from": clear_from,
        "best_path": {n: (best(gs, n)[0] if best(gs, n) else None) for n in names}}
    place = a if ("pipe" in d or "tcp" in d) else "no peer"
    bl.append("| " + " | ".join([arrow(d), place, first or "never", from_ or "never",
                                 clear_from or "never"] + cells) + " |")

notes = [
    "",
    f"Medians over {rounds} interleaved rounds, {size_mb} MiB per run; MB = 10^6 bytes, "
    "GB = 10^9 bytes. CPU is getrusage(RUSAGE_SELF) user+system of the copying process "
    "only (the peers are separate processes)."
    + (f" Extra kcopy options: {kargs}." if kargs else ""),
    "Ratios are kernel path / plain: speed ratio > 1 means faster, CPU ratio < 1 means "
    "less CPU per byte. The bracket after a speed ratio is the range of the per-round "
    "paired ratios (the two ran back to back in the same round).",
    "Break-even uses, at each chunk, the kernel path with the highest median MB/s. "
    "'first faster at': the smallest chunk where its median speed ratio is > 1; "
    "'faster from': the smallest chunk from which that holds at every larger chunk too; "
    "'clearly faster from': the same, but every round's paired ratio > 1. "
    "'~' marks a ratio whose per-round ratios fall on both sides of 1 (within noise). "
    "'-' means the chunk was not measured in this run.",
    "Pipes between the copying process and its peer have the kernel's default 64K "
    "capacity unless -P is given (a splice or sendfile into such a pipe moves at most "
    "64K per call); splice between two non-pipes goes through an internal pipe of "
    "max(chunk, 64K). Receiving peers splice to /dev/null (no copy) unless -R read. "
    "Loopback TCP: the receiver's protocol processing runs in softirq context, mostly "
    "charged to the sending process.",
]
text = "\n".join(out + bl + notes)
print(text)

hdr = ["# nobounce kernel copy paths vs the plain loop", "",
       f"machine: {machine}", "", f"invoked: `{invoked}`", "",
       "command (per run):", "", f"    {cmd}", "",
       f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {elapsed} s; "
       f"load average at start {load_start}, at end {load_end}", ""]
with open(outname + ".md", "w") as f:
    f.write("\n".join(hdr) + "\n" + text + "\n")
with open(outname + ".json", "w") as f:
    json.dump({
        "benchmark": "kernel-paths",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "invoked": invoked,
        "command": cmd,
        "rounds": rounds,
        "size_mib": size_mb,
        "chunks": chunk_names,
        "placements": affs,
        "kcopy_args": kargs,
        "elapsed_s": int(elapsed),
        "load_average": {"start": load_start, "end": load_end},
        "cases": summary,
        "runs": runs,
    }, f, indent=2)
print()
print(f"wrote {outname}.md and {outname}.json")
EOF
