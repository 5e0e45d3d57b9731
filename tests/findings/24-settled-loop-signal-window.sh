#!/usr/bin/env bash
# NOT in the suite: reproducer of an open finding against the settled
# loop (shim/settle.c); move it into tests/integration/ with the fix.
# Run (after make lib progs):
#   bash tests/findings/24-settled-loop-signal-window.sh
#
# Counters only (no byte, return value or errno differs). The settled
# calls change their state in several stores after the real call
# (nb_settle_read_done: samples, rfd = -1, wfd = dst; write_done: the
# count, wfd = -1, rfd = src). A signal handler that reads or writes
# (any fd, 512 bytes or more) runs the detector, which leaves the
# settled loop (nb_settle_leave) judging by wfd whether the loop's read
# still waits for its write. Landing between those stores (or between
# the done-check and them) it judges wrong: a written and counted
# iteration is put back in the ring as "read, not written", and the
# loop's next read over it is reported as a miss (misses.unforwarded) the
# program never made. With a 200 us SIGALRM handler copying between the
# same descriptors, 200000 turns: 4-5 unforwarded misses on every run
# (51412cd, before the settled loop: 0; its iterations fell short by its
# lock_skips instead, 12-19).
. "$(dirname "$0")/../integration/lib.sh"

SA=$PROG/settleatk

test_a_signal_handler_copying_during_a_settled_loop_makes_no_unforwarded_miss() {
	"$SA" sig 200000 > plain.out 2> /dev/null || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$SA" sig 200000 > shim.out 2> shim.err || fail "preloaded run failed"
	diff plain.out shim.out >&2 || fail "output differs"
	local total
	total=$(sed -n 's/^total //p' shim.err)
	echo "    turns $total, reported $(jloop stats.json char char iterations)"
	assert_eq "$(jloop stats.json char char misses.unforwarded)" 0 "unforwarded misses"
}

run_tests
