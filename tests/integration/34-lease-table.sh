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
