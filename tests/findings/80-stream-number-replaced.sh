#!/usr/bin/env bash
# NOT in the suite: reproducers of open findings (hazard class: descriptor
# replaced under a read); move them into tests/integration/ with the fix.
# Run (after make lib progs):
#   bash tests/findings/80-stream-number-replaced.sh
#
# A deferred read of a pipe or stream socket names its source by number
# more than once: the wait for a pipe (ppoll), the splice, and the rest
# of the buffer past the pool pipe's pages (read_more). A plain read holds
# one file from start to end. Another thread's dup2 over the number in
# between (or a userfaultfd fault thread's, while the read copies its
# head) makes the served read differ: read_more now checks the number
# still names the source (no bytes from the other descriptor any more) and
# stops short - up to the buffer's last partial page fewer bytes, which
# stay in the replaced socket and are lost with it when nothing else holds
# it. (A pipe read waiting in ppoll slept on the new, empty pipe - a hang:
# a served read that finds its pipe empty is the plain read now,
# 80-userfaultfd-attack-2.) The exact fix holds a reference of its own for
# the whole read (a hidden dup of the source - about five system calls a
# read, and a dup held while waiting met forks and EMFILE: 82-* - or the
# whole read in one kernel call). README Known limits. tests/prog/uffdatk2.c.
. "$(dirname "$0")/../integration/lib.sh"

UA2=$PROG/uffdatk2
STREAM=(NOBOUNCE_MIN_CHUNK_STREAM=16K NOBOUNCE_MIN_CHUNK=16K)

# FAILS now (every run): the same with an AF_UNIX socket source; the
# fault thread, at the read's first fault (its copy of the head), puts
# another socket (64 KiB of 0xee) on the source number with dup2. The
# read's last 512 bytes - read_more() through the number after the
# splice - come from the other socket: 510 bytes not the stream's, and
# the other socket is 512 bytes short. Plainly the read holds the first
# socket and all 64 KiB are the stream's.
test_a_socket_read_in_flight_when_its_number_is_replaced_from_a_fault_keeps_its_source() {
	runs_as_plain "$UA2" stream-swap-uffd-unix "${STREAM[@]}"
	assert_grep "^trap read: bytes not the stream's=0 " shim.out
	assert_grep '^second source holds=65536$' shim.out
	assert_grep '^guarded before=1$' shim.err
}

# FAILS now (every run), no userfaultfd at all: another thread dup2s a
# second socket over the source number while the read waits in its
# splice; the splice holds the first socket (its bytes), read_more()
# reads the tail from the second (0xee). Plainly all from the first.
test_a_socket_read_waiting_when_its_number_is_replaced_keeps_its_source() {
	runs_as_plain "$UA2" stream-swap-wait-unix "${STREAM[@]}"
	assert_grep "^trap read: bytes not the stream's=0 " shim.out
	assert_grep '^second source holds=65536$' shim.out
	assert_grep '^guarded before=1$' shim.err
}


run_tests
