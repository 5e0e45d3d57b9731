#!/usr/bin/env bash
# NOT in the suite: a reproducer of an open finding (fails on 578e030 and
# after it; passes on 78c52a4). Move it into tests/integration/ with the
# fix. Run: bash tests/findings/44-hold-waits-for-its-closer.sh
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

run_tests
