#!/usr/bin/env bash
# Memory that changes under a phantom (hazard class 4): every memory call
# acts on its real result and real semantics, advice by advice; raw
# system calls of a custom allocator; stacks pthread does not know.
# Each scenario of tests/prog/haz_mem.c runs plain and preloaded (library
# defaults) with the same stdout, exit status and destination bytes; where
# the point is a phantom in the way, the preloaded run must have met one
# (its stderr probe saw the buffer PROT_NONE when the scenario acted).
. "$(dirname "$0")/lib.sh"

HAZ=$PROG/haz_mem

# same_as_plain SCENARIO: stdout, exit status and dst.bin identical.
same_as_plain() {
	runs_as_plain "$HAZ" "$@"
	assert_same plain/dst.bin shim/dst.bin
}

met_phantom() { assert_grep '^probe act guarded=1$' shim.err; }

test_dontneed_failing_half_way_zeroes_only_what_the_kernel_reached() {
	same_as_plain dontneed-fails-half-way
	met_phantom
	assert_grep 'DONTNEED: -1 EINVAL; buffer sum [0-9a-f]+ nonzero 6[0-9]{4}$' shim.out
	assert_grep '\[buffer, locked\] DONTNEED: -1 EINVAL; buffer nonzero 0,' shim.out
}

test_madv_free_pages_keep_the_bytes_of_the_read() {
	same_as_plain madv-free
	met_phantom
}

test_wipeonfork_parent_keeps_bytes_child_sees_zeros_also_after_later_reads() {
	same_as_plain madv-wipeonfork
	met_phantom
	[ "$(grep -c 'child (wipeonfork): mincore 0 0, nonzero 0, write 8192' shim.out)" = 2 ] ||
		fail "a child did not see zeros"
}

test_dontfork_child_has_no_pages_so_its_write_fails_with_efault() {
	same_as_plain madv-dontfork
	met_phantom
	assert_grep 'child \(dontfork\): mincore -1 ENOMEM, write -1 EFAULT' shim.out
}

test_populate_and_contents_neutral_advice_on_a_phantom() {
	same_as_plain madv-populate
	met_phantom
	# The neutral advice left the phantom alone; POPULATE filled it.
	assert_grep '^probe before-populate guarded=1$' shim.err
	assert_grep 'madvise POPULATE_READ: 0 0' shim.out
}

test_failing_munmap_and_mmap_fixed_leave_the_buffer_as_it_was() {
	same_as_plain munmap-fails
	met_phantom
	assert_grep 'munmap unaligned: -1 EINVAL' shim.out
	assert_grep 'mmap fixed bad fd: failed EBADF' shim.out
}

test_raw_munmap_and_mmap_at_the_same_address_is_not_taken_for_the_phantom() {
	same_as_plain raw-remap
	met_phantom
	assert_grep 'raw munmap 0, raw mmap same address 1' shim.out
	# The library went on deferring reads into the new memory.
	[ "$(jget "$T/stats.json" 'j["counters"]["deferred_reads"]')" -gt 5 ] || fail "no deferred reads"
}

test_own_bytes_in_memory_remapped_by_raw_syscalls_are_sent_not_the_old_phantom() {
	same_as_plain raw-remap-then-write
	met_phantom
	assert_grep 'own bytes written: 1$' shim.out
}

test_coroutine_stack_from_malloc_is_never_guarded() {
	same_as_plain ucontext-stack
	assert_grep '^back in main 9$' shim.out
}

test_buffer_in_the_sigaltstack_is_never_guarded() {
	same_as_plain altstack-buffer
	assert_grep 'it 31 handled 27' shim.out
}

test_reader_racing_madvise_dontneed_sees_zeros_after_it_returns() {
	same_as_plain dontneed-race
	met_phantom
	assert_nogrep 'nonzero [1-9]' shim.out
}

# A fault whose handler runs late (haz_mem late-handler-*): a tracer
# holds the reader thread between its fault on the phantom and its
# handler while the main thread ends the phantom; then the handler runs.
# Plain, the reader never faults; preloaded, its access must simply run
# again - and the library must go on (the main thread's later look at
# the buffer meets a phantom and is filled, not killed).
late_handler() {
	same_as_plain "late-handler-$1"
	met_phantom
	assert_grep '^probe late-fault stopped=1 in-buffer=1$' shim.err
	assert_grep '^probe late-fault stopped=0 in-buffer=0$' plain.err
	assert_grep '^  reader: access done 1, tracer status 0$' shim.out
	assert_grep '^probe later guarded=1$' shim.err
}

test_late_fault_handler_after_madvise_dontneed_and_a_read_retries_the_access() {
	late_handler dontneed
}

test_late_fault_handler_after_the_buffer_was_freed_retries_the_access() {
	late_handler free
}

test_late_fault_handler_past_the_grace_of_a_filled_phantom_retries_the_access() {
	late_handler grace
}

# More pages opened meanwhile than the library's memory of opened ranges
# holds (1500 turns of a loop whose buffer is madvised away each time),
# and a SIGSEGV handler of the program's that would end the run.
test_late_fault_handler_after_the_same_buffer_was_opened_many_times_meanwhile_retries_the_access() {
	late_handler many
	local g
	g=$(sed -n 's/^probe many guarded=//p' shim.err)
	[ "${g:-0}" -gt 1100 ] || fail "only ${g:-0} turns met a phantom"
}

# Two late faults told apart by who guarded the page: the library's (the
# access runs again, the program's handler is not called) and the
# program's own mprotect(PROT_NONE) on pages the library had opened, which
# another thread opens again before the handler runs (the handler is
# called, as plain). Both runs meet the second fault.
test_late_fault_on_a_page_the_program_guarded_itself_reaches_its_handler() {
	same_as_plain late-handler-own
	met_phantom
	assert_grep '^probe own guarded=1$' shim.err
	[ "$(grep -c '^probe late-fault stopped=1 in-buffer=1$' shim.err)" = 2 ] ||
		fail "the reader did not stop at both faults"
	assert_grep '^probe late-fault stopped=1 in-buffer=1$' plain.err
	assert_grep '^  handler calls 0$' shim.out
	assert_grep '^  handler calls 1$' shim.out
}

run_tests
