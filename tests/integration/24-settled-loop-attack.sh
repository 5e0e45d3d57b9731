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
#
# Under the default NOBOUNCE_MIN_CHUNK (16K) a 4 KiB loop is not looked
# at at all (init.c track_min): each scenario runs with the defaults and
# with NOBOUNCE_MIN_CHUNK=4K, where the loop is tracked and settles.
. "$(dirname "$0")/lib.sh"

SA=$PROG/settleatk
MINS="default 4K"

# minenv MIN: the environment words for one of MINS.
minenv() { [ "$1" = default ] || echo "NOBOUNCE_MIN_CHUNK=$1"; }

test_a_settled_read_of_a_number_closed_behind_the_library_fails_with_ebadf_as_plain() {
	mkdata src.bin 1000000
	printf 'MAPPED-FILE-BYTES-%.0s' $(seq 300) > map.bin
	"$SA" ownfd src.bin map.bin > plain.out 2> plain.err || fail "plain run failed"
	assert_grep '^read after close: rc=-1 errno=Bad file descriptor$' plain.out
	local m
	for m in $MINS; do
		# shellcheck disable=SC2046 # VAR=value words
		env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats-$m.json" SETTLEATK_DEBUG=1 $(minenv $m) \
			"$SA" ownfd src.bin map.bin > shim.out 2> shim.err || fail "preloaded run failed ($m)"
		# The library's own descriptor really was put on that number.
		assert_grep "^debug: [0-9]+ -> .*/map.bin$" shim.err
		diff plain.out shim.out >&2 || fail "output differs (minimum $m)"
	done
	# The loop was seen (and settled: 4 KiB file -> /dev/null).
	assert_eq "$(jloop stats-4K.json file char iterations)" 64
}

# A reset peer while a 4 KiB file -> TCP loop is settled: the settled
# write is the real call, so the next write fails with ECONNRESET and the
# ones after it with EPIPE, as plain (passes before the fix too: a guard).
test_a_settled_loop_into_a_reset_tcp_peer_gets_econnreset_then_epipe_as_plain() {
	mkdata src.bin 1000000
	"$SA" reset src.bin > plain.out 2> plain.err || fail "plain run failed"
	assert_grep '^turn 0: read 4096 write -1 errno=Connection reset by peer$' plain.out
	assert_grep '^turn 2: read 4096 write -1 errno=Broken pipe$' plain.out
	local m
	for m in $MINS; do
		# shellcheck disable=SC2046 # VAR=value words
		env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats-$m.json" $(minenv $m) \
			"$SA" reset src.bin > shim.out 2> shim.err || fail "preloaded run failed ($m)"
		diff plain.out shim.out >&2 || fail "output differs (minimum $m)"
	done
	assert_eq "$(jloop stats-4K.json file tcp iterations)" 64
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
	mkdata work.orig 1048576
	cp work.orig work.plain
	"$SA" flight src.bin work.plain > plain.out 2> plain.err || fail "plain run failed"
	assert_grep '^write 4096$' plain.out
	local m
	for m in $MINS; do
		cp work.orig work.bin
		# shellcheck disable=SC2046 # VAR=value words
		env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats-$m.json" $(minenv $m) \
			"$SA" flight src.bin work.bin > shim.out 2> shim.err || fail "preloaded run failed ($m)"
		# The armed loop really was served.
		assert_eq "$(jloop stats-$m.json file pipe kernel_path)" splice
		diff plain.out shim.out >&2 || fail "output differs (minimum $m)"
		cmp work.plain work.bin || fail "files differ (minimum $m)"
	done
	# The 4 KiB loop was refused (settled: below the file -> file minimum).
	assert_eq "$(jloop stats-4K.json file file iterations)" 65
}

run_tests
