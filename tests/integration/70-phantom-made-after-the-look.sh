#!/usr/bin/env bash
# A phantom made after the look (shim/hook_io.c): a thread blocks in a
# read, recv or writev of a buffer; a signal handler on that thread runs
# a file -> file copy loop of its own through the same buffer, armed,
# whose last read is deferred (the pages stay guarded); the handler
# returns and the kernel restarts the call (SA_RESTART) with no hook in
# between. The kernel's copy meets the guarded pages: EFAULT, where
# plainly the call moves its bytes. The hook fills the phantom and makes
# the call again. All three failed with "Bad address" before.
. "$(dirname "$0")/lib.sh"

SR=$PROG/sigrestart

restarted_call_same_as_plain() { # MODE EXPECTED-PLAIN-LINE-REGEX
	mkdata src.bin 524288
	"$SR" src.bin dst.plain "$1" > plain.out 2> plain.err || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$SR" src.bin dst.shim "$1" > shim.out 2> shim.err || fail "preloaded run failed"
	assert_grep "$2" plain.out
	# The handler's loop really armed and left a deferred read.
	assert_eq "$(jloop stats.json file file arms)" 1
	[ "$(jget stats.json 'j["counters"]["deferred_reads"]')" -gt 0 ] || fail "nothing was deferred"
	cmp dst.plain dst.shim || fail "copies differ"
	diff plain.out shim.out >&2 || fail "output differs"
}

test_a_read_restarted_after_a_handler_deferred_into_its_buffer_gets_the_bytes() {
	restarted_call_same_as_plain read '^read 4096 errno=- first=M$'
}

test_a_recv_restarted_after_a_handler_deferred_into_its_buffer_gets_the_bytes() {
	restarted_call_same_as_plain recv '^read 4096 errno=- first=M$'
}

test_a_writev_restarted_after_a_handler_deferred_into_its_buffer_sends_them() {
	restarted_call_same_as_plain writev '^writev 4096 errno=- sum=[0-9]*$'
}

# refillatk: the same scenario on descriptors whose EFAULT must be looked
# at before the read is made again (shim/defer.c
# nb_read_efault_took_nothing).
RA=$PROG/refillatk

restarted_read_same_as_plain() { # MODE EXPECTED-PLAIN-LINE-REGEX [SRC-IS-ZEROS]
	if [ -n "${3:-}" ]; then head -c 524288 /dev/zero > src.bin; else mkdata src.bin 524288; fi
	"$RA" src.bin dst.plain "$1" > plain.out 2> plain.err || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$RA" src.bin dst.shim "$1" > shim.out 2> shim.err || fail "preloaded run failed"
	assert_grep "$2" plain.out
	# Each of the handler's loops (two for fromalen) armed once.
	local want='[1]'
	[ "$1" = fromalen ] && want='[1, 1]'
	assert_eq "$(jget stats.json '[l["arms"] for l in j["loops"] if l["src_kind"] == l["dst_kind"] == "file"]')" "$want"
	[ "$(jget stats.json 'j["counters"]["deferred_reads"]')" -gt 0 ] || fail "nothing was deferred"
	cmp dst.plain dst.shim || fail "copies differ"
	diff plain.out shim.out >&2 || fail "output differs"
}

# pipe_read leaves a packet it could not copy in the ring: made again.
test_a_packet_pipe_read_restarted_after_a_handler_deferred_into_its_buffer_gets_the_packet() {
	restarted_read_same_as_plain pipedirect '^read 4096 errno=- first=M'
}

# MSG_PEEK takes nothing away, even from a datagram socket: made again,
# and the datagram is still there for the recv after it.
test_a_datagram_peek_restarted_after_a_handler_deferred_into_its_buffer_sees_the_datagram() {
	restarted_read_same_as_plain peekdgram '^peek 4096 errno=- first=M$'
	assert_grep '^read 4096 errno=- first=M' shim.out
}

# recvfrom writes the address length after it took the bytes: a phantom
# under it (here a second loop's, in another buffer) is filled with the
# data's before the call is made again - else the call made again takes
# the bytes and fails on the length with EFAULT.
test_a_recvfrom_restarted_after_a_handler_deferred_into_its_buffer_and_address_gets_the_bytes() {
	restarted_read_same_as_plain fromalen '^read 4096 errno=- first=M' zeros
	assert_grep '^alen 0$' shim.out
	cmp dst.plain.b dst.shim.b || fail "second copies differ"
}

run_tests
