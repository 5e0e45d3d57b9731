#!/usr/bin/env bash
# Another process changes the source (hazard class 6): read leases
# (NOBOUNCE_EXACT, shim/lease.c). Each scenario of tests/prog/haz_lease.c
# copies a 4 MiB file in 256K reads while a forked process changes the
# file after the fourth read and before its write; plain and preloaded
# runs must print the same and write the same dst.bin. The JSON report
# tells whether a lease was taken and broken.
. "$(dirname "$0")/lib.sh"

HAZ=$PROG/haz_lease

# same_as_plain SCENARIO [VAR=VALUE...]: stdout, exit status and dst.bin
# identical; the preloaded run's report is stats.json.
same_as_plain() {
	runs_as_plain "$HAZ" "$@"
	assert_same plain/dst.bin shim/dst.bin
}

test_another_process_overwriting_the_source_leaves_the_chunk_read_as_it_was() {
	same_as_plain overwrite
	broke_a_lease
	assert_grep '^other: overwrite ok, pwrite 4194304$' shim.out
}

test_another_process_truncating_the_source_leaves_the_chunk_read_as_it_was() {
	same_as_plain truncate
	broke_a_lease
	assert_grep '^other: truncate 0$' shim.out
}

test_another_process_opening_the_source_with_o_trunc_leaves_the_chunk_read() {
	same_as_plain open-trunc
	broke_a_lease
	assert_grep '^other: open-trunc ok, write 1048576$' shim.out
}

test_a_cut_inside_the_chunk_just_read_leaves_it_whole_under_a_lease() {
	same_as_plain cut-inside
	broke_a_lease
	assert_grep '^dst bytes 1048576, differing from the original 0$' shim.out
}

test_without_a_lease_a_source_cut_under_a_phantom_fails_the_write_and_sends_no_zeros() {
	# NOBOUNCE_EXACT=off stands for a file the process may not lease.
	# The write returns what the kernel moved, then EIO; every byte that
	# went out is the file's.
	mkdir shim
	( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" NOBOUNCE_EXACT=off \
		"$HAZ" cut-inside > ../shim.out 2> ../shim.err ) || fail "exit status"
	[ "$(report_counter deferred_reads)" -gt 0 ] || fail "nothing was deferred"
	assert_grep '^short write 32768 of 262144 at chunk 3$' shim.out
	assert_grep '^write -1 Input/output error at 32768 of chunk 3$' shim.out
	assert_grep '^dst bytes 819200, differing from the original 0$' shim.out
}

test_breaks_reach_the_phantoms_of_two_copying_threads() {
	same_as_plain threads
	broke_a_lease 2
}

# A handler of the program's for the lease signal must run on its own
# threads: leases are given up (the lease thread's descriptor table is
# not the program's), and the state says why. Strict then defers nothing
# of a file, so another process's overwrite still cannot reach a chunk
# read before it.
leases_given_up_for_the_programs_handler() {
	assert_grep 'given up: the program uses the lease signal' stats.json
	assert_eq "$(report_counter leases_taken)" 0 "leases taken"
}

test_the_programs_own_handler_for_the_lease_signal_gets_every_signal_it_sends() {
	same_as_plain own-signal NOBOUNCE_EXACT=strict
	leases_given_up_for_the_programs_handler
	assert_grep '^own handler: 16 deliveries, 0 breaks \(last si_fd -1\), 0 unexpected$' shim.out
}

test_the_break_of_the_programs_own_lease_reaches_its_handler_with_its_fd() {
	same_as_plain own-lease-break NOBOUNCE_EXACT=strict
	leases_given_up_for_the_programs_handler
	assert_grep '^own handler: 0 deliveries, 1 breaks \(last si_fd 3\), 0 unexpected$' shim.out
}

test_a_handler_set_after_leases_were_taken_never_runs_on_the_library_thread() {
	same_as_plain own-signal-late
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was taken before the handler"
	assert_grep 'given up: the program uses the lease signal' stats.json
	assert_grep '^before unblocking: 0 deliveries, 0 unexpected$' shim.out
	assert_grep '^own handler: 16 deliveries, 0 breaks \(last si_fd -1\), 0 unexpected$' shim.out
}

test_the_program_gets_a_write_lease_on_a_source_the_library_holds_a_lease_on() {
	same_as_plain own-write-lease
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease of the library's was in the way"
	assert_grep '^own write lease: 0 , F_GETLEASE 1$' shim.out
}

test_strict_defers_nothing_while_another_process_has_the_source_open_for_writing() {
	same_as_plain writer-open NOBOUNCE_EXACT=strict
	[ "$(report_counter leases_refused)" -ge 1 ] || fail "no lease was refused"
	assert_eq "$(jget stats.json "j['exact']")" strict
}

test_auto_defers_a_file_open_for_writing_elsewhere_and_says_it_is_unleased() {
	mkdir shim
	( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" \
		"$HAZ" writer-open > ../shim.out 2> ../shim.err ) || fail "exit status"
	[ "$(report_counter leases_refused)" -ge 1 ] || fail "no lease was refused"
	[ "$(report_counter deferred_reads)" -gt 0 ] || fail "auto deferred nothing"
	assert_eq "$(jget stats.json "j['exact']")" auto
}

test_a_program_that_blocks_the_lease_signal_still_gets_exact_bytes_in_strict_mode() {
	# Breaks go to the library's own thread: the program's mask is no
	# matter for them.
	same_as_plain mask-blocks NOBOUNCE_EXACT=strict
	broke_a_lease
	assert_eq "$(jget stats.json "j['leases']")" on
}

test_a_break_does_not_cut_the_programs_nanosleep_or_poll_short() {
	same_as_plain sleep-through
	broke_a_lease
	assert_grep '^nanosleep 0 $' shim.out
	assert_grep '^poll 0$' shim.out
}

test_a_vfork_child_writing_the_source_is_not_held_up_by_its_waiting_parent() {
	# The child runs the library too: its open lets go of the lease (no
	# break to wait for), and its writes fill the phantoms first.
	same_as_plain vfork-writer
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was held"
	assert_grep '^vfork writer: status 0, waited under 1 s$' shim.out
}

test_the_programs_own_nonblocking_open_for_writing_of_its_source_succeeds() {
	same_as_plain self-open-nonblock
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was held"
	assert_grep '^self open nonblock: ok, pwrite 4096$' shim.out
}

test_the_programs_handler_without_sa_restart_still_interrupts_a_blocked_read() {
	same_as_plain own-handler-eintr
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was held"
	assert_grep '^blocked read: -1 Interrupted system call$' shim.out
}

test_exact_off_takes_no_lease() {
	mkdir shim
	( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" NOBOUNCE_EXACT=off \
		"$HAZ" own-write-lease > ../shim.out 2> ../shim.err ) || fail "exit status"
	assert_eq "$(report_counter leases_taken)" 0 "leases taken"
	assert_eq "$(jget stats.json "j['leases']")" off
	[ "$(report_counter deferred_reads)" -gt 0 ] || fail "nothing was deferred"
}

test_another_lease_signal_number_is_used_when_set() {
	# 62 is then an ordinary signal of the program's: its handler gets
	# everything, and the leases break on 50.
	same_as_plain own-signal NOBOUNCE_LEASE_SIGNAL=50
	broke_a_lease
}

test_a_bad_exact_setting_is_named_and_the_default_used() {
	mkdir shim
	( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" NOBOUNCE_EXACT=maybe \
		NOBOUNCE_LEASE_SIGNAL=9 "$HAZ" overwrite > ../shim.out 2> ../shim.err ) || fail "exit status"
	assert_grep "^nobounce: NOBOUNCE_EXACT='maybe' is invalid: expected auto, strict or off; using auto$" shim.err
	assert_grep "^nobounce: NOBOUNCE_LEASE_SIGNAL='9' is invalid: expected a whole number from 34 to 64; using 62$" shim.err
	assert_eq "$(jget stats.json "j['exact']")" auto
}

# A thread that shares the descriptor table makes every system call of
# the program's dearer (fdget counts and locks): the lease thread has a
# table of its own.
test_the_lease_thread_has_a_descriptor_table_of_its_own() {
	mkdir shim
	( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" \
		"$HAZ" thread-table > ../shim.out 2> ../shim.err ) || fail "exit status"
	[ "$(report_counter leases_taken)" -ge 1 ] || fail "no lease was taken"
	assert_grep "^library thread's descriptor table: its own$" shim.out
}

run_tests
