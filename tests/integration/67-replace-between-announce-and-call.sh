#!/usr/bin/env bash
# A dup2 over a copy loop's source number that the kernel stops between
# the library's announcement of it and the real call (tests/prog/replwin.c:
# a seccomp user notification on the replacing thread), while the loop
# keeps copying: the reads must not hold the number in that window
# (fdtab.c "A deferred read holds its number"). Before, the loop re-armed
# on the old file, a deferred read passed the generation check, and the
# dup2 landed inside it (the library's own lseek of the number let it
# in): the read returned the second file where plainly the first. Under
# load this was the ~1 in 30 failure of 43-descriptor-swap.
. "$(dirname "$0")/lib.sh"

test_a_dup2_stopped_before_its_real_call_leaves_every_read_to_one_file() {
	runs_as_plain "$PROG/replwin" dup2
	assert_grep '^verify: ok$' shim.out
	assert_grep '^lseeks of the number stopped: 0$' shim.err
	assert_same plain/out.bin shim/out.bin
	# The loop was armed and deferred before the replacement began.
	[ "$(jget stats.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"
}

run_tests
