#!/usr/bin/env bash
# The measuring tools of scripts/bench-syscalls.sh: build/prog/syscost
# reports a cost for every call the served loop adds, and the script's
# system call counts are exact per iteration - the loops whose calls are
# known by construction (kcopy's plain read + write, the hand-written
# splice) come out as exactly those, and the preloaded loop is seen
# serving the writes with splice. Small runs only: nothing here is timed
# or compared against a threshold.
. "$(dirname "$0")/lib.sh"

SC=$PROG/syscost

test_syscost_reports_every_case() {
	head -c $((2 << 20)) /dev/urandom > src
	"$SC" -f src -r 3 -n 2000 > out 2> err || { cat err >&2; fail "syscost failed"; }
	for c in $("$SC" -l); do
		assert_grep "^syscost case=$c calls_per_op=[12] ns_per_op_median=[0-9.]+ " out
	done
	assert_eq "$("$SC" -l | wc -l)" 9
	# get_mempolicy really met a PROT_NONE page (EFAULT), else it fails.
	assert_grep '^syscost case=get_mempolicy ' out
	"$SC" -f src -c get_mempolicy -r 1 -n 10 > one || fail "one case"
	assert_eq "$(grep -c '^syscost ' one)" 1
}

test_syscost_refuses_bad_usage() {
	head -c 4096 /dev/zero > small
	local rc=0
	"$SC" -f small > out 2> err || rc=$?
	assert_eq $rc 2 "a file under 1 MiB"
	rc=0
	"$SC" -f small -c nosuchcase > out 2> err || rc=$?
	assert_eq $rc 2 "an unknown case"
	assert_grep 'unknown case' err
}

# A tiny run of the whole script: file -> pipe, 64K, malloc'd buffer.
test_syscall_counts_are_exact_per_iteration() {
	local rc=0
	BENCH_DIRS=file-pipe BENCH_CHUNKS=64K BENCH_BUFFERS=malloc BENCH_ROUNDS=1 \
		BENCH_SIZE_MB=4 BENCH_COUNT_ITERS="8 24" BENCH_COST_REPS=1 BENCH_SRC_MB=8 \
		BENCH_SRC="$T/src" BENCH_OUT="$T/bs" \
		bash "$NB_ROOT/scripts/bench-syscalls.sh" > log 2>&1 || rc=$?
	[ $rc -eq 0 ] || { sed 's/^/      | /' log >&2; fail "bench-syscalls.sh: status $rc"; }
	[ ! -e "$T/src" ] || fail "the source the script made is left behind"
	"$PY" - "$T/bs.json" <<'EOF' || fail "counts"
import json, sys
j = json.load(open(sys.argv[1]))
c = j["counts"]
plain = c["file-pipe/64K/plain/malloc"]["per_iter"]
kern = c["file-pipe/64K/kernel"]["per_iter"]
pre = c["file-pipe/64K/preloaded/malloc"]["per_iter"]
assert plain == {"read": 1.0, "write": 1.0}, plain
assert kern == {"splice": 1.0}, kern
# Served: one splice per iteration, no read or write left.
assert pre.get("splice") == 1.0 and "read" not in pre and "write" not in pre, pre
w = j["where_the_time_goes"]["file-pipe/64K/malloc"]
assert w["extra_calls_per_iter"].get("splice", 0) == 0, w
assert set(j["unit_costs_ns_per_call"]) >= {"get_mempolicy", "sigprocmask_pair", "fstat",
    "lseek_cur", "pread4080_warm", "pread16_warm", "pread4080_cold", "pread16_cold"}
EOF
	assert_grep '^\| 64K \| plain/malloc \| 2\.00 \| read 1, write 1 \|' "$T/bs.md"
	assert_grep '^\| 64K \| kernel \| 1\.00 \| splice 1 \|' "$T/bs.md"
}

test_bad_settings_are_one_line_errors() {
	local v rc
	for v in BENCH_ROUNDS=0 BENCH_CHUNKS=12Q BENCH_DIRS=nowhere BENCH_BUFFERS=huge \
		BENCH_AFFINITY=x BENCH_COUNT_ITERS=5 BENCH_SRC_MB=-1; do
		rc=0
		env "$v" BENCH_OUT="$T/bad" bash "$NB_ROOT/scripts/bench-syscalls.sh" > out 2> err || rc=$?
		assert_eq $rc 2 "$v"
		assert_eq "$(wc -l < err)" 1 "$v: one line"
		assert_grep '^bench-syscalls.sh: ' err
		[ ! -s out ] || fail "$v: printed on stdout"
	done
}

run_tests
