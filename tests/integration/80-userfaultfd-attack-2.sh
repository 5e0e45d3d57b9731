#!/usr/bin/env bash
# Second round of attacks on "a process with a userfaultfd defers nothing"
# (sigguard.c "uffd", "File reads in flight"; 76-*, 78-*), aimed at what
# the first left: stream sources (defer.c stream_read), whose reads were
# not counted in flight and read the rest of the buffer through the
# number after the splice; and userfaultfd calls from a constructor and
# from a signal handler. The descriptor-number races it found are in
# tests/findings/80-stream-number-replaced.sh (open). tests/prog/uffdatk2.c; the copy loops run from a
# pipe or an AF_UNIX stream socket into a buffer 512 bytes into an
# anonymous mapping, in 64 KiB (pipes: 65024-byte) reads, armed with
# NOBOUNCE_MIN_CHUNK_STREAM=16K.
#
# Needs root (the suite's user) or vm.unprivileged_userfaultfd=1: where a
# userfaultfd cannot be made the program ends with status 2 and the test
# fails; nothing here is skipped.
. "$(dirname "$0")/lib.sh"

UA2=$PROG/uffdatk2
STREAM=(NOBOUNCE_MIN_CHUNK_STREAM=16K NOBOUNCE_MIN_CHUNK=16K)
UFFD_REASON='the program serves its own page faults (userfaultfd)'

# The read waiting for the pipe source is a deferred stream read (it was
# not counted in flight; it is from after its splice now); the program's other
# thread makes a userfaultfd, registers and drops the buffer's mapping
# while it waits; the read's phantom, made after the flag went up, is
# filled at once through /proc/self/mem - which cannot serve a missing
# registered page (GUP without FAULT_FLAG_ALLOW_RETRY: handle_userfault
# gives SIGBUS, the write EFAULT) - and the library stops the process:
# "fatal: a guarded buffer's bytes are out of reach", status 134.
# Plainly the read's copy waits for the fault thread and returns.
test_a_pipe_read_waiting_when_the_program_registers_its_buffer_returns_as_plainly() {
	runs_as_plain "$UA2" stream-swap-uffd-pipe "${STREAM[@]}"
	assert_grep '^trap read: 65024 errno=-$' shim.out
	assert_grep '^guarded before=1$' shim.err
	assert_eq "$(jget "$T/stats.json" "j['deferral']")" "$UFFD_REASON" "deferral"
}




# No userfaultfd (a hang while pipe_wait polled the number): the pipe read waits in
# pipe_wait's ppoll on the number; another thread dup2s an empty pipe
# over it, then writes the stream into the first pipe and, 200 ms later,
# 0xee into the second. ppoll looks the number up again on each wake-up
# (do_pollfd's fdget) and its wait-queue entries are the first pipe's
# only: it finds the empty second pipe and sleeps where no write wakes
# it. The program's 6 s alarm printed "hang" (status 124). Plainly the
# read holds the first pipe and returns its 65024 bytes at once; so does
# the served read now: one that finds its pipe empty is the plain read.
test_a_pipe_read_waiting_when_its_number_is_replaced_returns_the_first_pipes_bytes() {
	runs_as_plain "$UA2" stream-swap-wait-pipe "${STREAM[@]}"
	assert_grep "^trap read: bytes not the stream's=0 " shim.out
	assert_grep '^guarded before=1$' shim.err
}

# Nothing but the loop (failed every run before pipe_more): a pipe read of 64 KiB
# whose buffer ends 512 bytes into a page, with 64 KiB queued. The pool
# pipe takes the whole pages, and the last 512 bytes are read with
# preadv2(RWF_NOWAIT), which this kernel (6.18) refuses with EOPNOTSUPP
# on a pipe whose partial buffer splice just shared: the read returns
# 65024 where plainly 65536, and the program (a full read or die) ends
# with status 3.
test_a_pipe_read_into_a_buffer_ending_inside_a_page_is_as_full_as_plainly() {
	runs_as_plain "$UA2" pipe-short "${STREAM[@]}"
	assert_grep '^reads of 65536 bytes, all full' shim.out
	[ "$(report_counter deferred_reads)" -gt 0 ] || fail "nothing was deferred"
}

# Guard (passes): a constructor of the program makes and sets up a
# userfaultfd before main; the loop after it defers nothing.
test_a_userfaultfd_made_in_a_constructor_stops_deferral() {
	runs_as_plain "$UA2" ctor "${STREAM[@]}"
	assert_grep '^ever guarded=0$' shim.err
	assert_eq "$(report_counter deferred_reads)" 0 "deferred reads"
	assert_eq "$(jget "$T/stats.json" "j['deferral']")" "$UFFD_REASON" "deferral"
}

# Guard (passes): the userfaultfd made, set up and registered from a
# SIGALRM handler of the copying thread (1 ms timer) while the loop
# runs; the reads after it fault into the program's fault thread.
test_a_userfaultfd_made_in_a_signal_handler_of_the_copying_thread_keeps_the_bytes() {
	runs_as_plain "$UA2" handler "${STREAM[@]}"
	assert_grep '^ticks>=20: 1$' shim.out
	assert_grep "^out.bin bytes not the stream's: 0$" shim.out
	assert_eq "$(jget "$T/stats.json" "j['deferral']")" "$UFFD_REASON" "deferral"
	[ "$(report_counter deferred_reads)" -gt 0 ] || fail "nothing was deferred before the handler"
}

run_tests
