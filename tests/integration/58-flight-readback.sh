#!/usr/bin/env bash
# Bytes in flight read back by a deferred reader of the same process
# (hazard class 6): file pages our forwarded write put into a pipe by
# reference, then a read from that pipe, deferred - its pages spliced
# into a pool pipe, still the file's pages - then the program overwrites
# the file before writing what it read. The plain write(2) had copied the
# bytes: dst.bin must hold the old ones. Each scenario of
# tests/prog/haz_flight.c runs plain and preloaded (library defaults,
# NOBOUNCE_EXACT=strict and off): same stdout, exit status and dst.bin,
# and the preloaded reader's buffer was a phantom when the file changed.
. "$(dirname "$0")/lib.sh"

HAZ=$PROG/haz_flight

same_as_plain() {
	local rc_plain rc_shim
	rm -rf plain shim
	mkdir -p plain shim
	( cd plain && timeout 60 "$HAZ" "$1" > ../plain.out 2> ../plain.err ) 2> /dev/null; rc_plain=$?
	( cd shim && timeout 60 env LD_PRELOAD="$PRELOAD" ${2:+NOBOUNCE_EXACT=$2} \
		NOBOUNCE_STATS="$T/stats.json" "$HAZ" "$1" > ../shim.out 2> ../shim.err ) 2> /dev/null
	rc_shim=$?
	assert_eq "$rc_plain" 0 "plain exit status of '$1'"
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$1'"
	diff plain.out shim.out >&2 || fail "output of '$1' differs"
	assert_same plain/dst.bin shim/dst.bin
	assert_grep ' X 0$' shim.out
	assert_grep '^probe act guarded=1$' shim.err
	[ "$(jget stats.json "j['counters']['forwarded_bytes']")" -gt 0 ] ||
		fail "nothing was forwarded by the kernel"
}

each_mode() { for m in "" strict off; do same_as_plain "$1" "$m"; done; }

test_own_pipe_read_back_then_source_overwritten_keeps_the_old_bytes() { each_mode readback; }
test_relay_through_own_pipe_chunk_by_chunk_keeps_the_old_bytes() { each_mode relay; }
test_a_second_thread_reading_the_pipe_keeps_the_old_bytes() { each_mode thread; }

run_tests
