#!/usr/bin/env bash
# bench-hotpath.sh - what the hooks cost when nothing arms, in instructions
# (`make bench`; issue 15, "The hot path when nothing arms").
#
# Counted with valgrind's callgrind: instruction counts are deterministic,
# so a busy machine does not change them and nothing here is timed. Each
# workload runs at N and 2N iterations; the difference cancels start-up
# and exit, leaving N iterations. Three variants:
#   plain       no preload
#   passthru    build/testlib/libpassthru.so: read/write that only call the
#               next definition (what any interposition costs)
#   preloaded   build/libnobounce.so, library defaults
# Workloads:
#   dd-1byte    dd if=/dev/zero of=/dev/null bs=1 (2 hooked calls a byte)
#   4k-loop     build/prog/overhead -c bounce4k_zero_null_rw: read 4 KiB
#               of /dev/zero, write them to /dev/null (2 hooked calls per
#               iteration). Below NOBOUNCE_MIN_CHUNK (16K) in a process
#               that made no larger read: not looked at (init.c track_min)
#   4k-loop-seen  the same with NOBOUNCE_MIN_CHUNK=4K: detected, never
#               armed (char -> char); after two turns the loop is settled
#               and counted by the hooks alone (shim/settle.c)
# Prints a markdown table and writes results/bench-hotpath.md. The
# preloaded runs also write a stats report, to show that the library was
# active under valgrind (it does not look for valgrind, but a run that
# came out disabled would measure nothing).
#
# Environment: HOTPATH_N (default 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIB=$ROOT/build/libnobounce.so
BARE=$ROOT/build/testlib/libpassthru.so
OVER=$ROOT/build/prog/overhead
N=${HOTPATH_N:-100000}
case $N in '' | *[!0-9]* | 0) echo "bench-hotpath.sh: HOTPATH_N must be a positive integer" >&2; exit 2 ;; esac
command -v valgrind >/dev/null || { echo "bench-hotpath.sh: valgrind is not installed (scripts/deps.sh)" >&2; exit 2; }
[ -f "$LIB" ] && [ -f "$BARE" ] && [ -x "$OVER" ] || make -s lib progs

TMP=$(mktemp -d /tmp/nb-hotpath.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
CLEAN=(env -u LD_PRELOAD)
for v in $(env | sed -n 's/^\(NOBOUNCE_[A-Za-z0-9_]*\)=.*/\1/p'); do CLEAN+=(-u "$v"); done

# ir VARIANT CMD...: total instructions of the command (and of env before
# it: the same in every run, cancelled by the difference).
ir() {
	local v=$1 pre=
	shift
	case $v in
	passthru) pre=LD_PRELOAD=$BARE ;;
	preloaded) pre="LD_PRELOAD=$LIB NOBOUNCE_STATS=$TMP/stats.json" ;;
	esac
	rm -f "$TMP"/cg.* "$TMP/stats.json"
	# shellcheck disable=SC2086 # VAR=value words
	"${CLEAN[@]}" valgrind --tool=callgrind --trace-children=yes \
		--callgrind-out-file="$TMP/cg.%p" env $pre "$@" > /dev/null 2> "$TMP/vg.txt"
	if [ "$v" = preloaded ] && ! grep -q '"mode": "on"' "$TMP/stats.json" 2>/dev/null; then
		echo "bench-hotpath.sh: the library was not active under valgrind" >&2
		exit 1
	fi
	sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/vg.txt" | awk '{ s += $1 } END { print s }'
}

workload() { # NAME COUNT -> the command
	case $1 in
	dd-1byte) echo "dd if=/dev/zero of=/dev/null bs=1 count=$2 status=none" ;;
	4k-loop) echo "$OVER -n $2 -r 1 -c bounce4k_zero_null_rw" ;;
	4k-loop-seen) echo "env NOBOUNCE_MIN_CHUNK=4K $OVER -n $2 -r 1 -c bounce4k_zero_null_rw" ;;
	esac
}

echo "## nobounce hot path: instructions per hooked call when nothing arms"
echo
echo "callgrind (valgrind $(valgrind --version | sed 's/valgrind-//')), N = $N and 2N iterations, differenced"
echo
{
	echo "| workload | plain instr/iteration | passthru over plain, per hooked call | nobounce over plain, per hooked call | nobounce over passthru, per hooked call |"
	echo "|---|---:|---:|---:|---:|"
	for w in dd-1byte 4k-loop 4k-loop-seen; do
		declare -A I=()
		for v in plain passthru preloaded; do
			# shellcheck disable=SC2046
			a=$(ir $v $(workload $w "$N"))
			# shellcheck disable=SC2046
			b=$(ir $v $(workload $w $((2 * N))))
			I[$v]=$((b - a))
		done
		awk -v w="$w" -v n="$N" -v p="${I[plain]}" -v t="${I[passthru]}" -v l="${I[preloaded]}" 'BEGIN {
			calls = 2 * n
			printf "| %s | %.1f | %.1f | %.1f | %.1f |\n", w, p / n, (t - p) / calls, (l - p) / calls, (l - t) / calls
		}'
		unset I
	done
} | tee "$TMP/table.md"
echo
echo "Each iteration is one read and one write (two hooked calls). passthru is"
echo "build/testlib/libpassthru.so (read/write through dlsym(RTLD_NEXT) and nothing else)."
echo "Kernel work is not counted: the figures are what user space adds per call."
mkdir -p results
{
	echo "# nobounce hot path (scripts/bench-hotpath.sh)"
	echo
	echo "callgrind, N = $N and 2N iterations, differenced; $(uname -r)"
	echo
	cat "$TMP/table.md"
} > results/bench-hotpath.md
