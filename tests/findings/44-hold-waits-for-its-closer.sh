#!/usr/bin/env bash
# NOT in the suite: reproducers of open findings; move them into
# tests/integration/ with the fix. Run (after make progs):
#   bash tests/findings/44-hold-waits-for-its-closer.sh
# The two close-time tests fail on 578e030 and after (2 s stall), pass on
# 78c52a4; the wrong-bytes test fails on both (userfaultfd: root, or
# vm.unprivileged_userfaultfd=1).
#
# A deferred read holds its number (fdtab.c) while it copies the partial
# head and tail pages into the program's buffer. When that copy waits for
# a thread of the program - a page of a userfaultfd(2) region, served by
# the program's fault thread - and that thread closes the source number
# before it serves the page, the close waits for the read, the read for
# the page: both stand still until the bound (2 s) lets the close go.
# Plainly the read holds its file from the start and the close returns at
# once (tests/prog/holdwait.c).
. "$(dirname "$0")/../integration/lib.sh"

HW=$PROG/holdwait

test_a_close_by_the_thread_a_read_waits_for_does_not_wait_for_the_read() {
	runs_as_plain "$HW" uffd
	assert_grep '^close: rc=0 slow=0$' shim.out
	assert_grep '^trap read: 262144 errno=- bytes=file$' shim.out
	[ "$(jget stats.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"
}

test_a_close_and_reopen_by_the_thread_a_read_waits_for_does_not_wait_for_the_read() {
	runs_as_plain "$HW" uffd-reopen
	assert_grep '^close: rc=0 slow=0$' shim.out
	[ "$(jget stats.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"
}

# The trap in each of the first reads (with library defaults the first
# deferred one is read 2, whose file has no backing yet): after the bound
# the close and the open of g.bin go ahead, and the deferred read, still
# using the number, returned g.bin's bytes for f.bin's (also on 78c52a4,
# where nothing waits: the wrong bytes come at once).
test_a_number_reopened_by_the_thread_a_deferred_read_waits_for_gives_the_old_files_bytes() {
	local turn rc_plain rc_shim
	for turn in 0 1 2 3 4; do
		rm -rf plain shim; mkdir -p plain shim
		( cd plain && "$HW" uffd-reopen $turn > ../plain.out 2> ../plain.err ); rc_plain=$?
		( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats-$turn.json" \
			"$HW" uffd-reopen $turn > ../shim.out 2> ../shim.err ); rc_shim=$?
		assert_eq "$rc_plain" 0 "plain exit status at turn $turn"
		assert_eq "$rc_shim" 0 "exit status at turn $turn"
		diff plain.out shim.out >&2 || fail "output differs with the trap at read $turn"
	done
	[ "$(jget stats-4.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"
}

run_tests
