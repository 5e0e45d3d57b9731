#!/usr/bin/env bash
# Attacks on defer.c pipe_wait, which held a hidden duplicate of the
# pipe's read end while a served pipe read waited for bytes (4936ab6).
# The three differences below failed on it; a served read that finds its
# pipe empty is now the plain read, which waits holding the pipe itself
# (pipe_plain_front), and they pass. The program
# is tests/prog/pipewait.c: a pipe -> out.bin loop of 65024-byte reads into
# a buffer 512 bytes into an anonymous mapping (armed with
# NOBOUNCE_MIN_CHUNK_STREAM=16K), then a read that waits on the empty pipe
# while another thread acts. Each test runs it plain and preloaded and
# wants the same stdout and status, and a phantom before the wait.
. "$(dirname "$0")/lib.sh"

PW=$PROG/pipewait
STREAM=(NOBOUNCE_MIN_CHUNK_STREAM=16K NOBOUNCE_MIN_CHUNK=16K)

# Failed on 4936ab6: a thread forks while the read waits; the child
# closes all its descriptors from 3 up with close_range (which skips the
# library's own) and lives on 1.5 s. It keeps the hidden duplicate:
# after the read and the parent's close of the read end, the parent's
# write to the pipe returns 1 where plainly it gets EPIPE (no reader is
# left); a write of more than the pipe holds would block until the child
# exits.
test_a_child_forked_while_a_pipe_read_waits_holds_no_reader_of_the_pipe() {
	runs_as_plain "$PW" fork-epipe "${STREAM[@]}"
	assert_grep '^write after the last reader closed: -1 errno=EPIPE$' shim.out
	assert_grep '^guarded before=1$' shim.err
}

# Failed on 4936ab6: RLIMIT_NOFILE 256; while the read waits, another
# thread opens claim.bin (0xcc bytes) until EMFILE - the library gives
# its descriptors up, the hidden duplicate too, and the program gets its
# number - then dup2s an empty pipe over the source number and writes
# the stream into the first pipe. ppoll, asleep on the first pipe, wakes
# and looks the duplicate's number up: claim.bin, readable; the number
# is "replaced", so the read is made through the duplicate's number:
# 65024 bytes of 0xcc from the program's own claim.bin (its offset
# moved), the stream's bytes left in the first pipe. Plainly the read
# returns the stream's bytes. (Before 4936ab6 this hung: 80-*.)
test_a_pipe_read_waiting_through_emfile_and_a_replaced_number_reads_no_other_file() {
	runs_as_plain "$PW" emfile-swap "${STREAM[@]}"
	assert_grep "^trap read: bytes not the stream's=0 " shim.out
	assert_grep '^claim offsets moved=0$' shim.out
	assert_grep '^guarded before=1$' shim.err
}

# Failed (older than 4936ab6: the EINTR retry was there before): a SIGUSR1
# handler without SA_RESTART is installed by another thread after the
# read began waiting, and SIGUSR1 is sent to the reading thread. Plainly
# read(2) returns EINTR (signal(7): pipe reads restart only with
# SA_RESTART); preloaded the wait retries ppoll and the read returns the
# bytes written 300 ms later.
test_a_signal_without_sa_restart_interrupts_a_waiting_pipe_read() {
	runs_as_plain "$PW" sig-norestart "${STREAM[@]}"
	assert_grep '^trap read: -1 errno=EINTR$' shim.out
	assert_grep '^guarded before=1$' shim.err
}

# Guard: the program closes the source number while the read waits, then
# writes the stream: the read returns its bytes (plainly it holds its file).
test_a_pipe_read_waiting_when_its_number_is_closed_returns_the_bytes() {
	runs_as_plain "$PW" close-wait "${STREAM[@]}"
	assert_grep "^trap read: 65024 errno=-$" shim.out
	assert_grep '^guarded before=1$' shim.err
}

# Guard: the writer closes its end while the read waits: 0 (EOF).
test_a_pipe_read_waiting_when_the_writer_closes_returns_eof() {
	runs_as_plain "$PW" writer-eof "${STREAM[@]}"
	assert_grep '^trap read: 0 errno=-$' shim.out
	assert_grep '^guarded before=1$' shim.err
}

# Guard: files opened while the read waits get the plain numbers.
test_files_opened_while_a_pipe_read_waits_get_the_plain_numbers() {
	runs_as_plain "$PW" open-wait "${STREAM[@]}"
	assert_grep '^opened [0-9]+ [0-9]+ [0-9]+$' shim.out
	assert_grep '^guarded before=1$' shim.err
}

run_tests
