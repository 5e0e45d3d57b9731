#!/usr/bin/env bash
# NOT in the suite: reproducer of an open finding (hazard class 1, signal
# delivery); move it into tests/integration/ with the fix.
# Run (after make lib progs):
#   bash tests/findings/70-restarted-read-that-takes-its-event.sh
#
# A thread blocks in a read of 4096 bytes into a buffer; a SIGALRM handler
# (SA_RESTART) runs an armed file -> file copy loop through that buffer
# (its last read deferred: the pages stay guarded), then makes the
# descriptor readable. The kernel restarts the read with no hook in
# between. On these descriptors the kernel takes what it reads away
# before its copy into the guarded pages fails: eventfd_read takes the
# count, timerfd_read the ticks, signalfd_read the signal, an AF_UNIX
# datagram or seqpacket socket the datagram. The read fails with EFAULT
# where plainly it returns the count, ticks, signal or datagram.
# 91442ba made such a read again after filling the phantom: it then waited
# for the next count, tick, signal or datagram - forever here (refillatk's
# watchdog prints "hang" after 4 s) - or returned the next datagram
# (dgram2). Now the read is made again only on files, pipes and TCP or
# AF_UNIX stream sockets (or with MSG_PEEK); these keep their EFAULT, as
# on 78c52a4. An exact fix has to keep the phantom from being made:
# no deferral into memory a hooked call of the same thread is using
# (a per-thread range set around each hooked call), or none while the
# thread runs a program's handler.
# Also here: the short path of read() (fewer than 512 bytes while nothing
# is live when the hook looks) is a tail call with no retry (README Known
# limits): a restarted read(pipe, buf, 256) fails with EFAULT where
# plainly it returns 256 (shortpipe; 91442ba alike).
. "$(dirname "$0")/../integration/lib.sh"

RA=$PROG/refillatk

restarted_read_same_as_plain() { # MODE
	mkdata src.bin 524288
	"$RA" src.bin dst.plain "$1" > plain.out 2> plain.err || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$RA" src.bin dst.shim "$1" > shim.out 2> shim.err || fail "preloaded run failed ($(cat shim.out))"
	assert_grep '^read [0-9]+ errno=- ' plain.out
	assert_eq "$(jloop stats.json file file arms)" 1
	cmp dst.plain dst.shim || fail "copies differ"
	diff plain.out shim.out >&2 || fail "output differs"
}

test_a_restarted_eventfd_read_gets_the_count() { restarted_read_same_as_plain eventfd; }
test_a_restarted_timerfd_read_gets_the_ticks() { restarted_read_same_as_plain timerfd; }
test_a_restarted_signalfd_read_gets_the_signal() { restarted_read_same_as_plain signalfd; }
test_a_restarted_unix_datagram_recv_gets_the_datagram() { restarted_read_same_as_plain dgram; }
test_a_restarted_seqpacket_recv_gets_the_packet() { restarted_read_same_as_plain seqpacket; }
test_a_restarted_datagram_recv_gets_the_first_of_two() { restarted_read_same_as_plain dgram2; }
test_a_restarted_short_pipe_read_gets_the_bytes() { restarted_read_same_as_plain shortpipe; }

run_tests
