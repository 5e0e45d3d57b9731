#!/usr/bin/env bash
# bench.sh - per-call overhead of libnobounce when there is nothing to
# optimise (`make bench`).
#
# Runs build/prog/overhead four ways, interleaved, for BENCH_ROUNDS rounds
# (the order rotates every round, so drift of a noisy machine does not
# always hit the same variant):
#   plain      no preload
#   passthru   LD_PRELOAD=build/testlib/libpassthru.so: read and write that
#              only call the next definition - what any preload that hooks
#              them costs on this machine (the floor no library can go under)
#   preloaded  LD_PRELOAD=build/libnobounce.so (default mode "on")
#   off        LD_PRELOAD=build/libnobounce.so NOBOUNCE_MODE=off
# and prints a markdown table of the medians over rounds of each run's
# median. It also writes results/bench-overhead.{json,md}.
# All cases run in one process, as a program with several loops would:
# what the library learns from one (a tracked 64K loop, say) changes what
# the others pay. The cases of BENCH_ALONE (default: the 4K loop and the
# 1-byte write) also run each in a process of its own, in the same
# rounds - what a program doing just that pays - as rows "CASE (alone)".
#
# Environment:
#   BENCH_ROUNDS   rounds (default 5)
#   BENCH_ARGS     extra arguments for overhead (e.g. "-t 0.5 -r 9")
#   BENCH_CASES    space-separated subset of cases (default all)
#   BENCH_ALONE    cases also run alone (default "bounce4k_zero_null_rw
#                  write1_null"; "" for none)
#   BENCH_PERF     0 to skip the perf instruction count even if it works
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIB=$ROOT/build/libnobounce.so
PROG=$ROOT/build/prog/overhead
BARE=$ROOT/build/testlib/libpassthru.so
ROUNDS=${BENCH_ROUNDS:-5}
ARGS=${BENCH_ARGS:-}
PERF_EVENT=${BENCH_PERF_EVENT:-instructions:u} # override only to test the plumbing
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

case $ROUNDS in '' | *[!0-9]* | 0) echo "bench.sh: BENCH_ROUNDS must be a positive integer" >&2; exit 2 ;; esac
if [ ! -f "$LIB" ] || [ ! -x "$PROG" ] || [ ! -f "$BARE" ]; then
	make -s lib progs build/testlib/libpassthru.so
fi

CASE_ARGS=()
for c in ${BENCH_CASES:-}; do CASE_ARGS+=(-c "$c"); done
ALONE=()
for c in ${BENCH_ALONE-bounce4k_zero_null_rw write1_null}; do
	case " ${BENCH_CASES:-$c} " in *" $c "*) ALONE+=("$c") ;; esac
done

mkdir -p results
TMP=$(mktemp -d /tmp/nb-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# Nothing from the caller's environment may change a variant: drop every
# NOBOUNCE_* variable and any preload, then set exactly what each needs.
CLEAN=(env -u LD_PRELOAD)
for v in $(env | sed -n 's/^\(NOBOUNCE_[A-Za-z0-9_]*\)=.*/\1/p'); do CLEAN+=(-u "$v"); done

VARIANTS=(plain passthru preloaded off)
variant_env() {
	case $1 in
	plain) echo "" ;;
	passthru) echo "LD_PRELOAD=$BARE" ;;
	preloaded) echo "LD_PRELOAD=$LIB" ;;
	off) echo "LD_PRELOAD=$LIB NOBOUNCE_MODE=off" ;;
	esac
}
run_variant() { # variant outfile [extra overhead args...]
	local v=$1 out=$2
	shift 2
	# shellcheck disable=SC2046,SC2086 # VAR=value words and option words
	"${CLEAN[@]}" $(variant_env "$v") "$PROG" $ARGS "${CASE_ARGS[@]}" "$@" > "$out"
}
run_alone() { # variant outfile: each BENCH_ALONE case in its own process
	local v=$1 out=$2 c
	: > "$out"
	for c in "${ALONE[@]}"; do
		# shellcheck disable=SC2046,SC2086 # VAR=value words and option words
		"${CLEAN[@]}" $(variant_env "$v") "$PROG" $ARGS -c "$c" |
			awk -v c="$c" '$1 == c { $1 = c "_alone"; print }' >> "$out"
	done
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
[ -n "$cpu" ] || cpu=$(uname -m)
MACHINE="kernel $(uname -r), $cpu, nproc $(nproc)"
echo "## nobounce per-call overhead"
echo
echo "machine: $MACHINE"
echo "commands (run interleaved, $ROUNDS rounds, order rotated each round):"
for v in "${VARIANTS[@]}"; do
	e=$(variant_env "$v")
	echo "  $v:${e:+ $e} $PROG${ARGS:+ $ARGS}${CASE_ARGS[*]:+ ${CASE_ARGS[*]}}"
done
echo

start=$SECONDS
for ((r = 0; r < ROUNDS; r++)); do
	order=()
	for ((i = 0; i < ${#VARIANTS[@]}; i++)); do order+=("${VARIANTS[$(((r + i) % ${#VARIANTS[@]}))]}"); done
	printf 'round %d/%d: %s ...' $((r + 1)) "$ROUNDS" "${order[*]}"
	for v in "${order[@]}"; do
		run_variant "$v" "$TMP/$v.$r"
		run_alone "$v" "$TMP/$v.$r.alone"
	done
	printf ' done (%ds)\n' $((SECONDS - start))
done
echo

# Instructions per call (noise-free), when the machine has a PMU that perf
# can read: user-space instructions of N and 2N iterations, differenced so
# that start-up cancels out.
PERF_NOTE=""
PERF_OK=0
if [ "${BENCH_PERF:-1}" = 0 ]; then
	PERF_NOTE="instructions per call: skipped (BENCH_PERF=0)"
elif ! command -v perf >/dev/null 2>&1; then
	PERF_NOTE="instructions per call: skipped (perf is not installed)"
elif ! out=$(perf stat -x, -e "$PERF_EVENT" true 2>&1 >/dev/null) ||
	! printf '%s\n' "$out" | grep -q "^[0-9][0-9.]*,[^,]*,$PERF_EVENT"; then
	PERF_NOTE="instructions per call: skipped ('perf stat -e $PERF_EVENT true' does not count here: $(printf '%s' "$out" | grep -m1 "$PERF_EVENT" | tr -s ' ' || echo 'no output'); no hardware counters, e.g. in this VM)"
else
	PERF_OK=1
	PERF_NOTE="instructions per call: perf stat -e $PERF_EVENT, (I(2N) - I(N)) / N"
	echo "counting $PERF_EVENT per call ..."
	cases=$("$PROG" -l)
	[ -n "${BENCH_CASES:-}" ] && cases=$BENCH_CASES
	for c in $cases; do
		for v in plain preloaded; do
			for n in 20000 40000; do
				# shellcheck disable=SC2046
				"${CLEAN[@]}" $(variant_env "$v") perf stat -x, -e "$PERF_EVENT" \
					-o "$TMP/perf.tmp" "$PROG" -n $n -r 1 -c "$c" > /dev/null
				val=$(grep ",$PERF_EVENT" "$TMP/perf.tmp" | cut -d, -f1)
				echo "$c $v $n $val" >> "$TMP/perf.txt"
			done
		done
	done
fi

"$PY" - "$TMP" "$ROUNDS" "$MACHINE" "$PERF_OK" "$PERF_NOTE" "$PROG${ARGS:+ $ARGS}" "$LIB" "$BARE" <<'EOF'
import json, os, statistics, sys, time

tmp, rounds, machine, perf_ok, perf_note, prog, lib, bare = sys.argv[1:9]
# the report names paths as the repository does, not as this machine does
prog, lib, bare = os.path.relpath(prog), os.path.relpath(lib), os.path.relpath(bare)
rounds = int(rounds)
variants = ["plain", "passthru", "preloaded", "off"]
data = {}   # case -> variant -> {"min": [...], "median": [...]}
order = []
for v in variants:
    for r in range(rounds):
        with open(os.path.join(tmp, f"{v}.{r}")) as f, \
             open(os.path.join(tmp, f"{v}.{r}.alone")) as g:
            for line in f.readlines() + g.readlines():
                if line.startswith("#") or not line.strip():
                    continue
                case, mn, md = line.split()[:3]
                if case not in order:
                    order.append(case)
                d = data.setdefault(case, {}).setdefault(v, {"min": [], "median": []})
                d["min"].append(float(mn))
                d["median"].append(float(md))

instr = {}
if perf_ok == "1":
    raw = {}
    with open(os.path.join(tmp, "perf.txt")) as f:
        for line in f:
            c, v, n, val = line.split()
            try:
                raw.setdefault((c, v), {})[int(n)] = float(val)
            except ValueError:
                pass
    for (c, v), m in raw.items():
        if len(m) == 2:
            (n1, i1), (n2, i2) = sorted(m.items())
            instr.setdefault(c, {})[v] = (i2 - i1) / (n2 - n1)

def fmt(x, digits=1):
    return f"{x:.{digits}f}"

rows, summary = [], {}
for c in order:
    d = data[c]
    med = {v: statistics.median(d[v]["median"]) for v in variants}
    best = {v: min(d[v]["min"]) for v in variants}
    # Per-round paired differences show how much of the overhead is noise.
    deltas = [p - q for p, q in zip(d["preloaded"]["median"], d["plain"]["median"])]
    s = {
        "unit": "ns per read+write iteration" if c.endswith("_rw") else "ns per call",
        "median_ns": med,
        "best_ns": best,
        "overhead_ns": med["preloaded"] - med["plain"],
        "overhead_off_ns": med["off"] - med["plain"],
        "ratio": med["preloaded"] / med["plain"],
        "ratio_passthru": med["passthru"] / med["plain"],
        "ratio_over_passthru": med["preloaded"] / med["passthru"],
        "overhead_best_ns": best["preloaded"] - best["plain"],
        "per_round_delta_ns": deltas,
        "runs": d,
    }
    if c in instr and "plain" in instr[c] and "preloaded" in instr[c]:
        s["instructions_per_unit"] = instr[c]
        s["overhead_instructions"] = instr[c]["preloaded"] - instr[c]["plain"]
    summary[c] = s
    row = [c, fmt(med["plain"]), fmt(med["passthru"]), fmt(med["preloaded"]), fmt(med["off"]),
           fmt(s["overhead_ns"]), f"{s['ratio']:.3f}", f"{s['ratio_passthru']:.3f}",
           f"{s['ratio_over_passthru']:.3f}",
           fmt(s["overhead_best_ns"]), f"{fmt(min(deltas))} .. {fmt(max(deltas))}"]
    if perf_ok == "1":
        row.append(fmt(s.get("overhead_instructions", float("nan"))))
    rows.append(row)

head = ["case", "plain ns", "passthru ns", "preloaded ns", "off ns", "overhead ns (preloaded - plain)",
        "ratio", "passthru / plain", "preloaded / passthru", "overhead ns, best runs (min - min)", "per-round overhead range ns"]
if perf_ok == "1":
    head.append("overhead instructions")
lines = ["| " + " | ".join(head) + " |",
         "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
lines += ["| " + " | ".join(r) + " |" for r in rows]
notes = [
    "",
    f"Medians over {rounds} interleaved rounds of each run's median "
    "(each run: several repetitions of every case, ~0.3 s per case).",
    "Rows ending in _rw are per loop iteration (one read + one write = two "
    "hooked calls); the others are per call.",
    "'best runs' is the minimum over all repetitions of all rounds, "
    "preloaded minus plain: noise only ever adds time, so it is the least "
    "noisy estimate on a busy machine.",
    "'off' is the library preloaded with NOBOUNCE_MODE=off: the cost of the "
    "pass-through wrappers alone.",
    "'passthru' is the smallest preload that hooks read and write (each calls "
    "the next definition, nothing else; pread64 is not hooked there): what "
    "any interposition costs on this machine. 'preloaded / passthru' is what "
    "the library adds on top of that floor.",
    "The bounce*_zero_null cases are detected but refused (no kernel path for "
    "char -> char); bounce64k_file_file_rw is detected and armed "
    "(copy_file_range would serve it); this version serves all of them plainly.",
    "bounce4k_zero_null_2thr_rw runs the 4K loop in two threads at once, each on "
    "its own descriptors (ns per iteration of one thread): the cost of state "
    "the threads share.",
    "All cases run in one process, interleaved, so a case pays for what the "
    "others leave behind (a 64K loop the library tracked makes every later "
    "write of 512 bytes or more go through the detector); a row CASE_alone is "
    "the case in a process of its own (what a program doing just that pays).",
    perf_note + ".",
]
table = "\n".join(lines + notes)
print(table)

hdr = [f"# nobounce per-call overhead", "", f"machine: {machine}", "",
       "commands:", "",
       f"    {prog}",
       f"    LD_PRELOAD={bare} {prog}",
       f"    LD_PRELOAD={lib} {prog}",
       f"    LD_PRELOAD={lib} NOBOUNCE_MODE=off {prog}", ""]
os.makedirs("results", exist_ok=True)
with open("results/bench-overhead.md", "w") as f:
    f.write("\n".join(hdr) + "\n" + table + "\n")
with open("results/bench-overhead.json", "w") as f:
    json.dump({
        "benchmark": "overhead",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "rounds": rounds,
        "commands": {
            "plain": prog,
            "passthru": f"LD_PRELOAD={bare} {prog}",
            "preloaded": f"LD_PRELOAD={lib} {prog}",
            "off": f"LD_PRELOAD={lib} NOBOUNCE_MODE=off {prog}",
        },
        "perf": perf_note,
        "cases": summary,
    }, f, indent=2)
print()
print("wrote results/bench-overhead.md and results/bench-overhead.json")
EOF
