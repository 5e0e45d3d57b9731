#!/usr/bin/env bash
# The termination signals a program leaves at SIG_DFL end it exactly as
# plain, although the library keeps a handler in their kernel slots to
# write the final report (termsig.c): a wait on an unblocked signal still
# dies, no other thread runs on after a fatal signal, a thread with little
# stack left dies of the signal (plain needs no stack for it), the init of
# a new PID namespace is not interrupted by a signal plain drops, a process
# in a seccomp sandbox dies of the signal (not of SIGKILL, nor survives
# it), what the program reads back of the actions is plain's after a vfork
# child or system() touched them, and a report that cannot be written (its
# pipe full) does not keep a killed process (or one leaving by _exit)
# alive. Each case runs plain and preloaded (library defaults unless the
# case is about a report setting) with the same output and exit status or
# signal.
. "$(dirname "$0")/lib.sh"

TS=$PROG/termsig

# same_as_plain SCENARIO [ENV...]: same stdout and exit status; $rc.
same_as_plain() {
	local sc=$1 rc_plain
	shift
	( "$TS" "$sc" > plain.out 2> plain.err; exit $? ) 2> /dev/null; rc_plain=$?
	( env "$@" LD_PRELOAD="$LIB" "$TS" "$sc" > shim.out 2> shim.err; exit $? ) 2> /dev/null; rc=$?
	assert_eq "$rc" "$rc_plain" "exit status of '$sc'"
	diff plain.out shim.out >&2 || fail "output of '$sc' differs"
}

test_sigwait_on_an_unblocked_sigusr1_dies_of_it() {
	same_as_plain sigwait-unblocked
	assert_eq "$rc" $((128 + 10)) "death by SIGUSR1"
}

test_sigtimedwait_on_an_unblocked_alarm_dies_of_sigalrm() {
	same_as_plain sigtimedwait-alarm
	assert_eq "$rc" $((128 + 14)) "death by SIGALRM"
}

test_python_sigwait_without_blocking_dies_of_sigalrm() {
	local code='import signal; signal.alarm(1); print("got", signal.sigwait([signal.SIGALRM]))'
	( "$PY" -c "$code" > plain.out 2> /dev/null; exit $? ) 2> /dev/null; local rc_plain=$?
	( nb_run "$PY" -c "$code" > shim.out 2> /dev/null; exit $? ) 2> /dev/null; local rc_shim=$?
	assert_eq "$rc_shim" "$rc_plain" "exit status"
	assert_eq "$rc_shim" $((128 + 14)) "death by SIGALRM"
	assert_same plain.out shim.out
}

test_no_thread_runs_on_after_sigterm_while_main_waits_in_vfork() {
	same_as_plain vfork-other-thread
	assert_eq "$rc" $((128 + 15)) "death by SIGTERM"
	assert_nogrep 'still running' shim.out
}

test_init_of_a_new_pid_namespace_is_not_interrupted_by_a_dropped_sigterm() {
	same_as_plain pidns-init
	assert_grep 'read returned 1$|no new PID namespace' shim.out
}

test_sigterm_to_a_child_in_seccomp_strict_mode_kills_it_by_sigterm() {
	same_as_plain seccomp-strict
	assert_grep '^sandboxed child ended: signal 15$' shim.out
}

test_sigterm_to_a_child_under_a_seccomp_filter_kills_it_by_sigterm() {
	same_as_plain seccomp-errno
	assert_grep '^sandboxed child ended: signal 15$' shim.out
}

test_sigterm_to_a_thread_with_2k_of_stack_left_dies_of_sigterm() {
	same_as_plain stack-headroom
	assert_eq "$rc" $((128 + 15)) "death by SIGTERM"
}

test_vfork_child_resetting_sigint_leaves_the_parents_view_plain() {
	same_as_plain vfork-child-resets
}

test_actions_read_after_system_are_plains() {
	same_as_plain after-system
}

# gone_or_alive PID: "gone" if process PID has ended; else "alive", and
# it is killed by that PID.
gone_or_alive() {
	if [ -d "/proc/$1" ]; then
		echo alive
		kill -KILL "$1" 2> /dev/null
	else
		echo gone
	fi
}

# killed_in_time [ENV...]: `cat /dev/zero` with stdout and stderr into a
# pipe no one reads (full), sent SIGTERM; echoes "gone" or "alive" 2 s later
# (an alive one is then killed by its recorded PID).
killed_in_time() {
	rm -f cat.pid
	( sh -c 'echo $$ > cat.pid; exec env "$@" cat /dev/zero' sh "$@" 2>&1 | sleep 8 ) &
	local sub=$! p
	for _ in $(seq 50); do [ -s cat.pid ] && break; sleep 0.1; done
	sleep 0.5
	p=$(cat cat.pid)
	kill -TERM "$p"
	sleep 2
	gone_or_alive "$p"
	wait "$sub" 2> /dev/null
}

test_sigterm_ends_a_process_whose_observe_report_pipe_is_full() {
	assert_eq "$(killed_in_time X=plain)" gone "plain"
	assert_eq "$(killed_in_time LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe)" gone "observe mode"
}

test_sigterm_ends_a_process_whose_stats_stderr_pipe_is_full() {
	assert_eq "$(killed_in_time LD_PRELOAD="$LIB" NOBOUNCE_STATS=stderr)" gone "NOBOUNCE_STATS=stderr"
}

# ended_in_time [ENV...]: python copies a file in a read/write loop, fills
# its stderr (a pipe no one reads) and leaves by os._exit(0); echoes
# "gone" or "alive" 3 s later (an alive one is then killed by its PID).
ended_in_time() {
	rm -f py.pid
	local code='
import os
fd = os.open("/usr/bin/python3", os.O_RDONLY); out = os.open("/dev/null", os.O_WRONLY)
while True:
    b = os.read(fd, 65536)
    if not b: break
    os.write(out, b)
os.set_blocking(2, False)
try:
    while True: os.write(2, b"x" * 4096)
except BlockingIOError: pass
os.set_blocking(2, True)
os._exit(0)'
	( sh -c 'echo $$ > py.pid; exec env "$@"' sh "$@" "$PY" -c "$code" 2>&1 | sleep 8 ) &
	local sub=$! p
	for _ in $(seq 50); do [ -s py.pid ] && break; sleep 0.1; done
	sleep 3
	p=$(cat py.pid)
	gone_or_alive "$p"
	wait "$sub" 2> /dev/null
}

test__exit_ends_a_process_whose_observe_report_pipe_is_full() {
	assert_eq "$(ended_in_time X=plain)" gone "plain"
	assert_eq "$(ended_in_time LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe)" gone "observe mode"
}

run_tests "$@"
