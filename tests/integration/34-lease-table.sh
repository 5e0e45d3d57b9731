#!/usr/bin/env bash
# The lease thread's private descriptor table (shim/lease.c) as a program
# can see it, and leases around fork and the program's own use of the
# lease signal: each scenario of tests/prog/lease_table.c runs plain and
# preloaded; stdout, exit status and dst.bin must be the same. The JSON
# report tells whether a lease was taken and broken.
. "$(dirname "$0")/lib.sh"

LT=$PROG/lease_table

# same_as_plain SCENARIO [VAR=VALUE...]
same_as_plain() {
	runs_as_plain "$LT" "$@"
	assert_same plain/dst.bin shim/dst.bin
}

test_a_break_of_the_last_chunk_leaves_no_descriptor_of_the_source_open() {
	same_as_plain last-chunk-break
	broke_a_lease
	assert_grep '^write lease on the source: 0 $' shim.out
}

# The same, with the library's threads put to SCHED_IDLE by the program
# and the one CPU it runs on kept busy: the lease thread let the writer
# go on (F_UNLCK) and was then kept off the CPU before it closed its
# reopen of the source, and the program's write lease failed with EAGAIN
# (9 of 10 runs before release_here closed without the F_UNLCK).
test_a_break_of_the_last_chunk_leaves_no_descriptor_of_the_source_open_on_a_busy_cpu() {
	serve hog taskset -c 0 sh -c 'while :; do :; done'
	local run
	for run in 1 2 3; do
		rm -rf plain shim
		mkdir plain shim
		(cd plain && taskset -c 0 "$LT" last-chunk-break-idle > ../plain.out 2> ../plain.err) ||
			fail "plain run failed"
		(cd shim && taskset -c 0 env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" \
			"$LT" last-chunk-break-idle > ../shim.out 2> ../shim.err) || fail "preloaded run failed"
		assert_grep '^write lease on the source: 0 $' plain.out
		diff plain.out shim.out >&2 || fail "output differs (run $run)"
		broke_a_lease
		rm -f "$T/stats.json"
	done
	stop hog
}

# A guard (passes before the change too): the source closed before its
# end, then changed by another process while the library's threads are
# idle on a busy CPU - the lease the closed slot queued for the lease
# thread to let go of must not make the program's write lease fail.
test_a_source_closed_early_then_changed_leaves_no_descriptor_open_on_a_busy_cpu() {
	serve hog taskset -c 0 sh -c 'while :; do :; done'
	mkdir plain shim
	(cd plain && taskset -c 0 "$LT" closed-break-idle > ../plain.out 2> ../plain.err) ||
		fail "plain run failed"
	(cd shim && taskset -c 0 env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" \
		"$LT" closed-break-idle > ../shim.out 2> ../shim.err) || fail "preloaded run failed"
	stop hog
	assert_grep '^write lease on the source: 0 $' plain.out
	diff plain.out shim.out >&2 || fail "output differs"
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was taken"
}

test_breaks_of_many_sources_leave_no_descriptor_open_once_they_are_closed() {
	same_as_plain many-breaks
	broke_a_lease 100
}

# The child has no part in the parent's lease: the library fills the
# buffers a lease protects before fork, so the child holds the bytes as
# read when another process changes the file afterwards.
test_a_child_writes_a_chunk_read_before_fork_as_it_was_read() {
	same_as_plain fork-child
	[ "$(report_counter deferred_reads)" -gt 0 ] || fail "nothing was deferred"
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was taken"
	assert_grep '^child: status 0$' shim.out
}

test_a_child_writes_a_chunk_read_before_fork_as_it_was_read_strict() {
	same_as_plain fork-child NOBOUNCE_EXACT=strict
}

test_the_program_takes_the_lease_signal_with_sigwaitinfo() {
	same_as_plain sigwait
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was taken"
}

test_the_program_takes_the_lease_signal_with_a_signalfd() {
	same_as_plain signalfd
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was taken"
}

run_tests
