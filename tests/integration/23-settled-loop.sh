#!/usr/bin/env bash
# The settled loop (shim/settle.c): a loop the detector judged and cannot
# serve is counted by the read/write hooks alone - a few instructions
# per call (callgrind: deterministic, not timings) - and leaves that
# state on any change: a settled 4 KiB file -> file loop that grows to
# 1 MiB chunks still arms and is served, with the same bytes, and the
# reports (NOBOUNCE_STATS, observe) count every iteration as before.
# Under the default NOBOUNCE_MIN_CHUNK (16K) a 4 KiB loop is not looked
# at at all (init.c track_min): it takes the read/write hot path, which
# the first test bounds; the settled loop's tests set the minimum to 4K,
# where the library looks at such a loop (and settles it), or to 512
# to count the 777-byte last read too.
. "$(dirname "$0")/lib.sh"

ST=$PROG/settle
OVER=$PROG/overhead

# irun N [VAR=value...]: instructions of `overhead` running the 4 KiB
# /dev/zero -> /dev/null loop N times.
irun() {
	local n=$1
	shift
	valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$PWD/cg.%p" \
		env "$@" "$OVER" -n "$n" -r 1 -c bounce4k_zero_null_rw > /dev/null 2> vg.txt ||
		fail "valgrind run failed: $(tail -3 vg.txt)"
	sed -n 's/.*Collected : \([0-9]*\).*/\1/p' vg.txt | awk '{ s += $1 } END { print s }'
	rm -f cg.*
}

test_a_4k_loop_below_the_minimum_costs_at_most_34_instructions_per_call_over_plain() {
	command -v valgrind > /dev/null || fail "valgrind is not installed (scripts/deps.sh)"
	local n=20000 p1 p2 l1 l2 per
	p1=$(irun $n)
	p2=$(irun $((2 * n)))
	l1=$(irun $n LD_PRELOAD="$LIB" NOBOUNCE_STATS="$PWD/s1.json")
	l2=$(irun $((2 * n)) LD_PRELOAD="$LIB" NOBOUNCE_STATS="$PWD/s2.json")
	# The library was active and did not look at the loop: no record, no
	# loop in the report.
	assert_eq "$(jget s2.json 'j["mode"]')" on
	assert_eq "$(jget s2.json 'len(j["loops"])')" 0
	per=$(( ((l2 - l1) - (p2 - p1)) / (2 * n) ))
	echo "    instructions per hooked call over plain: $per (looked at and settled: 50; dd bs=1: 23)"
	[ "$per" -le 34 ] || fail "$per instructions per call over plain"
}

test_a_refused_4k_loop_costs_at_most_52_instructions_per_call_over_plain() {
	command -v valgrind > /dev/null || fail "valgrind is not installed (scripts/deps.sh)"
	local n=20000 p1 p2 l1 l2 per
	p1=$(irun $n)
	p2=$(irun $((2 * n)))
	l1=$(irun $n LD_PRELOAD="$LIB" NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_STATS="$PWD/s1.json")
	l2=$(irun $((2 * n)) LD_PRELOAD="$LIB" NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_STATS="$PWD/s2.json")
	# The library was active, and counted every iteration of the loop
	# (the calibration-free run: 1 repetition of 2N iterations).
	assert_eq "$(jget s2.json 'j["mode"]')" on
	assert_eq "$(jloop s2.json char char iterations)" $((2 * n))
	per=$(( ((l2 - l1) - (p2 - p1)) / (2 * n) ))
	echo "    instructions per hooked call over plain: $per (before the settled loop: 159; before one epoch stood for the four flags: 56)"
	[ "$per" -le 52 ] || fail "$per instructions per call over plain"
}

# stats JSON: the file -> file loop's iterations, and deferred reads.
test_a_settled_4k_loop_that_grows_to_1m_chunks_still_arms_and_is_served() {
	mkdata src.bin $((300 * 4096 + 8 * 1024 * 1024 + 777))
	"$ST" grow src.bin plain.bin 300 > plain.out || fail "plain run: $(cat plain.out)"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$PWD/stats.json" NOBOUNCE_MIN_CHUNK=512 NOBOUNCE_MIN_CHUNK_FILE=64K \
		"$ST" grow src.bin shim.bin 300 > shim.out || fail "preloaded run: $(cat shim.out)"
	assert_same plain.out shim.out
	assert_same src.bin plain.bin
	assert_same src.bin shim.bin
	assert_grep '^iterations 309 bytes ' shim.out
	# Every iteration counted, 4K and 1M alike, and the 1M reads served.
	assert_eq "$(jloop stats.json file file iterations)" 309
	assert_eq "$(jget stats.json 'j["counters"]["bounces"]')" 309
	assert_eq "$(jloop stats.json file file chunks.4K)" 300
	local deferred arms
	deferred=$(jget stats.json 'j["counters"]["deferred_reads"]')
	arms=$(jget stats.json 'j["counters"]["arms"]')
	[ "$arms" -ge 1 ] || fail "the grown loop never armed"
	[ "$deferred" -ge 1 ] || fail "no read served as a phantom"
}

test_the_observe_report_counts_a_settled_loop_as_before() {
	mkdata src.bin $((500 * 4096))
	env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe NOBOUNCE_STATS="$PWD/stats.json" \
		NOBOUNCE_REPORT="$PWD/report.txt" "$ST" grow src.bin out.bin 1000 > shim.out ||
		fail "preloaded run: $(cat shim.out)"
	assert_same src.bin out.bin
	assert_grep '^iterations 500 bytes 2048000$' shim.out
	assert_eq "$(jloop stats.json file file iterations)" 500
	assert_eq "$(jloop stats.json file file bytes)" 2048000
	assert_eq "$(jget stats.json 'j["counters"]["bounces"]')" 500
	assert_eq "$(jloop stats.json file file chunks)" '{"4K": 500}'
	assert_grep 'fd 3 \(file\) -> fd 4 \(file\): 500 iterations, 2.0 MiB, chunks \[4K:500\]' report.txt
}

run_tests
