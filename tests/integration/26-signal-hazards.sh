#!/usr/bin/env bash
# Signal delivery and children (tests/prog/haz_sig.c): a touch of a
# guarded buffer must always reach the library, or there must be no
# guarded buffer to touch. Each scenario runs plain and preloaded with the
# library's defaults and must print the same and end the same way.
. "$(dirname "$0")/lib.sh"

HS=$PROG/haz_sig

# same_as_plain SCENARIO [ARG]: stdout and exit status identical; the
# preloaded run's stderr (probes) is in shim.err, its report in st.json.
same_as_plain() {
	local rc_plain rc_shim
	( timeout 60 "$HS" "$@" > plain.out 2> plain.err ) 2> /dev/null; rc_plain=$?
	( timeout 60 env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/st.json" "$HS" "$@" \
		> shim.out 2> shim.err ) 2> /dev/null; rc_shim=$?
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$*'"
	diff plain.out shim.out >&2 || fail "output of '$*' differs"
	assert_eq "$rc_plain" "${expect_rc:-0}" "plain exit status of '$*'"
}

deferral() { jget "$T/st.json" 'j["deferral"]'; }
deferred() { jget "$T/st.json" 'j["counters"]["deferred_reads"]'; }

# -- masks that block SIGSEGV: a fault there is death, so no phantom may
#    exist for such a thread to touch

test_worker_thread_that_blocks_every_signal_copies_and_looks_as_plain() {
	same_as_plain blocked-thread
	assert_eq "$(deferral)" "a signal mask blocks SIGSEGV"
}

test_thread_created_with_a_mask_attribute_that_blocks_segv_copies_as_plain() {
	same_as_plain blocked-attr
	assert_eq "$(deferral)" "a signal mask blocks SIGSEGV"
}

test_sigprocmask_that_blocks_segv_before_the_loop_leaves_it_plain() {
	same_as_plain blocked-sigprocmask
	assert_eq "$(deferred)" 0
}

test_sighold_of_segv_is_seen_although_glibc_calls_its_internal_sigprocmask() {
	same_as_plain blocked-sighold
	assert_eq "$(deferral)" "a signal mask blocks SIGSEGV"
}

test_bsd_sigsetmask_of_segv_is_seen() {
	same_as_plain blocked-sigsetmask
	assert_eq "$(deferred)" 0
}

test_rt_sigprocmask_made_with_the_instruction_is_caught_by_the_per_read_check() {
	same_as_plain blocked-raw
	assert_eq "$(deferred)" 0
}

test_rt_sigprocmask_through_libcs_syscall_is_seen_before_it_takes_effect() {
	same_as_plain blocked-syscall
	assert_eq "$(deferral)" "a signal mask blocks SIGSEGV"
}

test_thread_that_blocks_segv_after_phantoms_exist_gets_the_bytes() {
	same_as_plain blocked-midway
	# A phantom was there when the thread blocked everything.
	assert_grep '^probe late-look guarded=1' shim.err
	assert_eq "$(deferral)" "a signal mask blocks SIGSEGV"
}

test_mask_that_blocks_segv_inherited_across_exec_leaves_the_new_image_plain() {
	same_as_plain blocked-exec
	assert_eq "$(deferred)" 0
}

test_handler_run_under_a_ppoll_mask_that_blocks_segv_sees_the_bytes() {
	same_as_plain blocked-ppoll
	assert_grep '^probe ppoll guarded=1' shim.err
	# Only while ppoll waited: the loop is served before and after.
	assert_eq "$(deferral)" "allowed"
}

# -- handlers that run with SIGSEGV blocked

test_handler_with_sigsegv_in_its_mask_ends_deferral_and_its_mask_stays_as_set() {
	same_as_plain full-mask-handler
	assert_grep '^its mask as queried: SIGSEGV in$' shim.out
	assert_eq "$(deferral)" "a signal mask blocks SIGSEGV"
	assert_eq "$(deferred)" 0
}

test_handler_with_sigsegv_in_its_mask_next_to_an_own_segv_handler_ends_deferral() {
	same_as_plain full-mask-handler-own-segv
	assert_grep '^its mask as queried: SIGSEGV in$' shim.out
	assert_eq "$(deferral)" "a signal mask blocks SIGSEGV"
}

test_own_segv_handler_that_looks_at_a_phantom_sees_the_bytes() {
	same_as_plain own-segv-handler-looks
	assert_grep '^probe own-fault guarded=1' shim.err
	assert_eq "$(deferral)" "a signal handler runs with SIGSEGV blocked"
}

# -- dispositions changed behind the library

test_sigset_segv_to_default_keeps_the_library_in_charge_of_faults() {
	same_as_plain sigset-default
	assert_grep '^probe look guarded=1' shim.err
}

test_rt_sigaction_of_segv_made_with_the_instruction_stops_deferral_and_hands_the_slot_back() {
	same_as_plain raw-sigaction-default
	assert_eq "$(deferral)" "SIGSEGV's disposition was changed behind the library"
}

test_rt_sigaction_of_segv_through_libcs_syscall_goes_to_the_programs_store() {
	same_as_plain syscall-sigaction-default
	assert_grep '^SIGSEGV: SIG_DFL$' shim.out
	assert_grep '^probe look guarded=1' shim.err
}

test_siginterrupt_on_segv_is_answered_from_the_programs_store() {
	same_as_plain siginterrupt
	assert_grep '^probe look guarded=1' shim.err
}

# -- handlers that touch the buffer while their thread is inside the library

test_handler_that_reads_the_buffer_during_a_fill_does_not_hang() {
	same_as_plain handler-reads 2
	assert_grep '^handler ran: yes' shim.out
}

test_handler_that_writes_the_buffer_during_a_fill_does_not_hang() {
	same_as_plain handler-writes 2
	assert_grep '^handler ran: yes' shim.out
}

# -- a tight alternate signal stack: the smallest one on which the
#    program's own SA_ONSTACK handler works plain works preloaded too

altstack_rc() { # SCENARIO SIZE [preload]: the exit status of one run
	( if [ -n "${3:-}" ]; then
		timeout 20 env LD_PRELOAD="$LIB" "$HS" "$1" "$2"
	else
		timeout 20 "$HS" "$1" "$2"
	fi ) > /dev/null 2>&1
	echo $?
}

# smallest SCENARIO [preload]: the smallest alternate stack (to 16 bytes)
# on which the scenario ends with status 42.
smallest() {
	local lo=1024 hi=65536 mid
	[ "$(altstack_rc "$1" $hi ${2:-})" = 42 ] || fail "$1 fails even with $hi bytes"
	while [ $((hi - lo)) -gt 16 ]; do
		mid=$(( (lo + hi) / 2 / 16 * 16 ))
		if [ "$(altstack_rc "$1" $mid ${2:-})" = 42 ]; then hi=$mid; else lo=$mid; fi
	done
	echo $hi
}

test_smallest_sigaltstack_that_fits_the_programs_handler_fits_under_the_library() {
	local s
	s=$(smallest altstack) || exit 1
	echo "    smallest alternate stack for the program's SIGSEGV handler: $s bytes" >&2
	assert_eq "$(altstack_rc altstack $s preload)" 42 "preloaded at $s bytes"
}

# A handler on the alternate stack touches a phantom: the fault is taken
# on that stack too, so it needs a second signal frame (the kernel's, as
# large as the first) plus the library's fill path, which must stay
# under 1 KiB.
test_phantom_touched_on_the_alternate_stack_needs_a_signal_frame_and_under_1K_more() {
	local frame touch need
	frame=$(smallest altstack) || exit 1
	touch=$(smallest altstack-touch) || exit 1
	need=$(smallest altstack-touch preload) || exit 1
	expect_rc=42 same_as_plain altstack-touch 65536
	assert_grep '^probe altstack-touch guarded=1' shim.err
	echo "    handler alone: $touch bytes; with a phantom fill: $need;" \
		"one signal frame and handler: $frame" >&2
	[ "$need" -le $((touch + frame + 1024)) ] ||
		fail "the fill needs $need bytes, more than $touch + $frame + 1024"
}

# -- children

test_fork_while_two_threads_copy_never_leaves_a_child_on_a_busy_entry() {
	same_as_plain fork-mid-op 300
	assert_grep '^forks 300, hung 0, failed 0$' shim.out
}

test_fork_through_libcs_syscall_runs_the_fork_handlers() {
	same_as_plain raw-fork
	assert_grep '^probe raw-fork guarded=1' shim.err
}

test_fork_made_with_the_instruction_child_reads_its_own_memory_not_the_parents() {
	same_as_plain raw-fork-asm
	assert_grep '^probe raw-fork guarded=1' shim.err
}

test__Fork_child_runs_the_fork_handlers_and_sees_the_bytes() {
	same_as_plain raw-_Fork
	assert_grep '^probe raw-fork guarded=1' shim.err
}

run_tests
