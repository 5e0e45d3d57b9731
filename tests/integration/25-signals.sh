#!/usr/bin/env bash
# The program's own SIGSEGV/SIGBUS handling is untouched although the
# library owns the kernel's slots for them (mode on): every scenario of
# tests/prog/segv.c prints the same and ends the same way, by exit status
# or by the same signal, with and without the library.
. "$(dirname "$0")/lib.sh"

SEGV=$PROG/segv

# same_as_plain SCENARIO: output and exit status identical.
same_as_plain() {
	local rc_plain rc_shim
	# (The subshells keep bash's "Segmentation fault" notices out of the
	# log; stderr is not compared: bash prints those with PIDs in it.)
	( "$SEGV" "$1" > plain.out ) 2> /dev/null; rc_plain=$?
	( env LD_PRELOAD="$LIB" "$SEGV" "$1" > shim.out ) 2> /dev/null; rc_shim=$?
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$1'"
	rc_shim_last=$rc_shim
	diff plain.out shim.out >&2 || fail "output of '$1' differs"
}

test_library_owns_the_kernel_segv_and_bus_slots_in_mode_on() {
	env LD_PRELOAD="$LIB" sleep 2 & local pid=$!
	sleep 0.5
	local cgt
	cgt=$(awk '/^SigCgt:/ { print $2 }' /proc/$pid/status)
	kill $pid; wait $pid 2>/dev/null
	# bits 6 and 10: SIGBUS (7) and SIGSEGV (11) are caught; sleep
	# itself catches neither.
	[ $(( 0x$cgt & 0x440 )) -eq $(( 0x440 )) ] || fail "SigCgt $cgt: not caught"
}

test_null_dereference_still_dies_of_sigsegv() {
	same_as_plain null
	assert_eq "$rc_shim_last" $((128 + 11)) "death by SIGSEGV"
}

test_sigaction_query_shows_the_programs_view_not_the_library() {
	same_as_plain query
	assert_grep '^SIGSEGV: SIG_DFL' shim.out
}

test_ignored_segv_inherited_across_exec_is_adopted() {
	( trap '' SEGV; "$SEGV" query > plain.out )
	( trap '' SEGV; nb_run "$SEGV" query > shim.out )
	assert_grep '^SIGSEGV: SIG_IGN' plain.out
	assert_same plain.out shim.out
}

test_siginfo_handler_installed_with_sigaction_receives_every_fault() {
	same_as_plain sigaction
	assert_grep '^faults handled: 3, from the kernel: 1$' shim.out
}

test_handler_installed_with_signal_receives_the_fault() {
	same_as_plain signal
	assert_grep '^faults handled: 1$' shim.out
}

test_sa_resethand_handler_runs_once_then_the_fault_kills() {
	same_as_plain resethand
	assert_grep '^after one fault: SIG_DFL, handled 1$' shim.out
}

test_handler_runs_with_its_sa_mask_and_sa_nodefer() {
	same_as_plain mask
	assert_grep '^in handler: SIGUSR1 blocked, SIGSEGV blocked$' shim.out
	assert_grep '^in handler: SIGUSR1 blocked, SIGSEGV open$' shim.out
}

test_raised_segv_reaches_handler_is_ignored_when_ignored_and_kills_by_default() {
	same_as_plain raise
	assert_grep '^raised while ignored: still running$' shim.out
}

test_real_fault_kills_even_when_segv_is_ignored() {
	same_as_plain ignored-fault
}

test_handler_may_siglongjmp_out_of_the_fault() {
	same_as_plain longjmp
	assert_grep '^jumped out 3 times$' shim.out
}

test_sigbus_handler_receives_the_fault_and_default_sigbus_kills() {
	same_as_plain bus
	assert_grep '^SIGBUS handled 1$' shim.out
}

run_tests
