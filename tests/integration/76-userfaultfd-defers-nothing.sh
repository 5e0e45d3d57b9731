#!/usr/bin/env bash
# A process that serves its own page faults (userfaultfd(2)) defers no
# read from the moment it makes or sets up its userfaultfd (sigguard.c).
#
# A deferred read holds its source number (fdtab.c) while it copies the
# partial head and tail pages into the program's buffer. When that copy
# waits for a thread of the program - a page of a userfaultfd region,
# served by the program's fault thread - and that thread closes the source
# number before it serves the page, the close waited for the read and the
# read for the page: both stood still until the bound (2 s), and the read
# could then return the bytes of the file opened on the number next.
# Plainly the read holds its file from the start and the close returns at
# once (tests/prog/holdwait.c).
#
# The programs make a userfaultfd: that needs root (the suite's user) or
# vm.unprivileged_userfaultfd=1. Where it cannot be made the program ends
# with status 2 and the test fails: nothing here is skipped.
. "$(dirname "$0")/lib.sh"

HW=$PROG/holdwait
UFFD_REASON='the program serves its own page faults (userfaultfd)'

# report_of FILE: the report of the process whose "pid=N" stderr FILE has.
report_of() {
	local pid
	pid=$(sed -n 's/^pid=//p' "$1")
	[ -n "$pid" ] || fail "no pid in $1"
	echo "$T/stats-$pid.json"
}

# The userfaultfd made before the first read: nothing is ever deferred.
test_a_close_by_the_thread_a_read_waits_for_does_not_wait_for_the_read() {
	runs_as_plain "$HW" uffd
	assert_grep '^close: rc=0 slow=0$' shim.out
	assert_grep '^trap read: 262144 errno=- bytes=file$' shim.out
	assert_eq "$(jget stats.json "j['deferral']")" "$UFFD_REASON" "deferral"
	assert_eq "$(jget stats.json "j['counters']['deferred_reads']")" 0 "deferred reads"
}

test_a_close_and_reopen_by_the_thread_a_read_waits_for_does_not_wait_for_the_read() {
	runs_as_plain "$HW" uffd-reopen
	assert_grep '^close: rc=0 slow=0$' shim.out
	assert_grep '^trap read: 262144 errno=- bytes=file$' shim.out
	assert_eq "$(jget stats.json "j['deferral']")" "$UFFD_REASON" "deferral"
	assert_eq "$(jget stats.json "j['counters']['deferred_reads']")" 0 "deferred reads"
}

# The trap in each of the first reads (with library defaults the first
# deferred one would be read 2): the read returns f.bin's bytes, the next
# read g.bin's, as plainly.
test_a_number_reopened_by_the_thread_a_read_waits_for_gives_the_files_own_bytes() {
	local turn rc_plain rc_shim
	for turn in 0 1 2 3 4; do
		rm -rf plain shim; mkdir -p plain shim
		( cd plain && "$HW" uffd-reopen $turn > ../plain.out 2> ../plain.err ); rc_plain=$?
		( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats-$turn.json" \
			"$HW" uffd-reopen $turn > ../shim.out 2> ../shim.err ); rc_shim=$?
		assert_eq "$rc_plain" 0 "plain exit status at turn $turn"
		assert_eq "$rc_shim" 0 "exit status at turn $turn"
		diff plain.out shim.out >&2 || fail "output differs with the trap at read $turn"
		assert_grep '^close: rc=0 slow=0$' shim.out
		assert_eq "$(jget "$T/stats-$turn.json" "j['deferral']")" "$UFFD_REASON" \
			"deferral at turn $turn"
		assert_eq "$(jget "$T/stats-$turn.json" "j['counters']['deferred_reads']")" 0 \
			"deferred reads at turn $turn"
	done
}

# late_case SCENARIO: the program reads 20 times into its buffer, then
# makes its userfaultfd, registers the buffer and goes on (holdwait.c
# late-*): same output as plainly, the close at once, deferred before
# (guarded buffers seen, reads counted) and never after.
late_case() {
	runs_as_plain "$HW" "$1" NOBOUNCE_STATS="$T/stats-%p.json"
	assert_grep '^close: rc=0 slow=0$' shim.out
	assert_grep '^trap read: 262144 errno=- bytes=file$' shim.out
	assert_same plain/out.bin shim/out.bin
	local n report
	n=$(sed -n 's/^before: guarded reads=//p' shim.err)
	[ "${n:-0}" -gt 0 ] || fail "no read was deferred before the userfaultfd"
	report=$(report_of shim.err)
	assert_eq "$(jget "$report" "j['deferral']")" "$UFFD_REASON" "deferral"
	[ "$(jget "$report" "j['counters']['deferred_reads']")" -gt 0 ] ||
		fail "the report counts no deferred read before the userfaultfd"
}

test_a_userfaultfd_made_by_syscall_ends_deferral_for_the_process() {
	late_case late-syscall
	assert_grep '^after: guarded reads=0$' shim.err
}

test_a_userfaultfd_made_through_dev_userfaultfd_ends_deferral_for_the_process() {
	late_case late-dev
	assert_grep '^after: guarded reads=0$' shim.err
}

test_a_child_forked_after_the_userfaultfd_defers_nothing() {
	late_case late-fork
	assert_grep '^child: guarded reads=0$' shim.err
}

# The child execs: a new process, whose memory no userfaultfd serves,
# defers again - and its parent still does not.
test_a_program_execed_by_a_process_with_a_userfaultfd_defers_again() {
	late_case late-exec
	assert_grep '^after: guarded reads=0$' shim.err
	assert_same plain/loop.bin shim/loop.bin
	local n parent r found=0
	n=$(sed -n 's/^exec: guarded reads=//p' shim.err)
	[ "${n:-0}" -gt 0 ] || fail "the execed program deferred nothing"
	parent=$(report_of shim.err)
	for r in "$T"/stats-*.json; do
		[ "$r" = "$parent" ] && continue
		found=1
		assert_eq "$(jget "$r" "j['deferral']")" allowed "deferral in the execed program"
	done
	[ $found = 1 ] || fail "no report of the execed program"
}

run_tests
