#!/usr/bin/env bash
# Attacks on the settled loop (shim/settle.c): changes the epoch does not
# see must still give the program exactly the plain results.
#
# A settled read skipped NB_OWN_BADF: settle.c argued a number becomes
# one of the library's only after a close the hooks saw (a generation
# bump, which ends every settled loop). A raw syscall(SYS_close) is not
# seen (fdtab.c, ownfd.c "Lost numbers"); the number is then free, and
# the library's next descriptor of its own (here: the duplicate it keeps
# for a file the program maps read-only, mapping.c) is put on the
# highest free number - the one the loop read. The program's next read
# of that number, plainly EBADF, is the settled loop's read: it reads
# the library's descriptor (the mapped file's bytes), and moves its
# offset. A descriptor the library makes for itself now ends every
# settled loop (ownfd.c own_add), as a close the hooks see does.
. "$(dirname "$0")/lib.sh"

SA=$PROG/settleatk

test_a_settled_read_of_a_number_closed_behind_the_library_fails_with_ebadf_as_plain() {
	mkdata src.bin 1000000
	printf 'MAPPED-FILE-BYTES-%.0s' $(seq 300) > map.bin
	"$SA" ownfd src.bin map.bin > plain.out 2> plain.err || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" SETTLEATK_DEBUG=1 \
		"$SA" ownfd src.bin map.bin > shim.out 2> shim.err || fail "preloaded run failed"
	assert_grep '^read after close: rc=-1 errno=Bad file descriptor$' plain.out
	# The library's own descriptor really was put on that number.
	assert_grep "^debug: [0-9]+ -> .*/map.bin$" shim.err
	# The loop was seen (and settled: 4 KiB file -> /dev/null).
	assert_eq "$(jloop stats.json file char iterations)" 64
	diff plain.out shim.out >&2 || fail "output differs"
}

# A reset peer while a 4 KiB file -> TCP loop is settled: the settled
# write is the real call, so the next write fails with ECONNRESET and the
# ones after it with EPIPE, as plain (passes before the fix too: a guard).
test_a_settled_loop_into_a_reset_tcp_peer_gets_econnreset_then_epipe_as_plain() {
	mkdata src.bin 1000000
	"$SA" reset src.bin > plain.out 2> plain.err || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$SA" reset src.bin > shim.out 2> shim.err || fail "preloaded run failed"
	assert_grep '^turn 0: read 4096 write -1 errno=Connection reset by peer$' plain.out
	assert_grep '^turn 2: read 4096 write -1 errno=Broken pipe$' plain.out
	assert_eq "$(jloop stats.json file tcp iterations)" 64
	diff plain.out shim.out >&2 || fail "output differs"
}

# Bytes of the file in flight while a loop writing that file is settled:
# another thread's armed file -> pipe loop leaves pages of WORK in a pipe
# nobody reads yet (sameproc.c "Bytes in flight"); the settled loop's due
# write over them must wait for the reader as the full path does
# (BEFORE_WRITE), or the reader gets the new bytes where plainly the pipe
# held copies. The epoch covers it twice: the arm bumps it, and so does
# the first flight (NB_SETTLE_RAISE). A guard (passes before e5ea549
# too); a settled write that skipped its epoch check fails it.
test_a_settled_write_over_bytes_in_flight_waits_for_their_reader_as_plain() {
	mkdata src.bin 1048576
	mkdata work.bin 1048576
	cp work.bin work.plain
	"$SA" flight src.bin work.plain > plain.out 2> plain.err || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$SA" flight src.bin work.bin > shim.out 2> shim.err || fail "preloaded run failed"
	assert_grep '^write 4096$' plain.out
	# The armed loop really was served, and the 4 KiB loop refused
	# (settled: below the file -> file minimum).
	assert_eq "$(jloop stats.json file pipe kernel_path)" splice
	assert_eq "$(jloop stats.json file file iterations)" 65
	diff plain.out shim.out >&2 || fail "output differs"
	cmp work.plain work.bin || fail "files differ"
}

run_tests
