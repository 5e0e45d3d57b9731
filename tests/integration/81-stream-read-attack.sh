#!/usr/bin/env bash
# Attacks on the rest of a served pipe read (defer.c stream_read,
# read_more, pipe_more): where preadv2(RWF_NOWAIT) is refused on a pipe
# (EOPNOTSUPP, Linux 6.18), the bytes past the pool pipe's pages are taken
# by pipe_more after a packet look of their own (pipe_plain_front,
# may_wait=false). That look cannot tell one byte (it returns "not
# deferred" under 2) and gives up at a packet, and either way the read
# returns short - where the plain read returns the byte, or reads into
# the packet and throws its rest away (pipe(7)).
# tests/prog/streamatk.c: one process writes each round's bytes into a
# pipe of 1 MiB, then reads 64 KiB into a buffer OFFSET bytes into an
# anonymous mapping and writes it to out.bin; armed with
# NOBOUNCE_MIN_CHUNK_STREAM=16K NOBOUNCE_MIN_CHUNK=16K after 8 warm-up
# rounds of 64 KiB.
. "$(dirname "$0")/lib.sh"

SA=$PROG/streamatk
STREAM=(NOBOUNCE_MIN_CHUNK_STREAM=16K NOBOUNCE_MIN_CHUNK=16K)

# runs_sa SCENARIO OFFSET: streamatk plain and preloaded, same stdout and
# status, and the preloaded run guarded the buffer (a phantom was made).
runs_sa() {
	mkdir -p plain shim
	( cd plain && "$SA" "$1" "$2" > ../plain.out 2> ../plain.err ) 2> /dev/null; rc_plain=$?
	( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" "${STREAM[@]}" \
		"$SA" "$1" "$2" > ../shim.out 2> ../shim.err ) 2> /dev/null; rc_shim=$?
	assert_eq "$rc_plain" 0 "plain exit status of '$1 $2'"
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$1 $2'"
	assert_grep '^guarded once=1$' shim.err
	[ "$(report_counter deferred_reads)" -gt 0 ] || fail "nothing was deferred"
	diff plain.out shim.out >&2 || fail "output of '$1 $2' differs"
}

# Fails: 32 KiB + 1 byte queued, a 64 KiB read into a page-aligned
# buffer. The pool pipe takes 32 KiB (whole pages), pipe_more's look
# sees 1 byte - "too little to tell" - and the read returns 32768 where
# plainly 32769; the byte comes with the next read.
test_a_pipe_read_with_one_byte_past_the_whole_pages_returns_it_as_plainly() {
	runs_sa tail1 0
	assert_grep '^read 0: 32769$' shim.out
}

# Fails: the same with the buffer 512 bytes into its page and 65025
# bytes queued: the pages take 65024, the last byte is left (65024 where
# plainly 65025).
test_a_pipe_read_into_a_buffer_ending_inside_a_page_takes_a_last_single_byte() {
	runs_sa tailpage1 512
	assert_grep '^read 0: 65025$' shim.out
}

# Fails: ordinary bytes, then a 500-byte packet (O_DIRECT on the write
# end) that starts in the buffer's last 412 bytes, past its whole pages.
# Plainly the read takes 65536: 412 bytes of the packet, whose other 88
# are thrown away (pipe(7)). Served, pipe_more's look sees the packet and
# stops: 65024, and the next read returns the 100 bytes and the whole
# packet - 88 bytes the plain program never sees, and every byte after
# them is at another offset in out.bin.
test_a_packet_past_the_pages_is_read_into_and_cut_as_plainly() {
	runs_sa packet 512
	assert_grep '^read 0: 65536$' shim.out
}

# Fails: as above, with 100 ordinary bytes after the packet.
test_a_packet_past_the_pages_followed_by_more_bytes_is_cut_as_plainly() {
	runs_sa packet-more 512
	assert_grep '^read 0: 65536$' shim.out
}

# Guard (passes): 32 KiB + 1 byte into the buffer 512 bytes into its
# page: the rest past the pages is 513 bytes, which pipe_more takes.
test_a_pipe_read_with_more_than_one_byte_past_the_pages_is_as_plainly() {
	runs_sa tail1 512
	assert_grep '^read 0: 32769$' shim.out
}

# Guard (passes): 32 KiB + 2 bytes, page-aligned: 2 bytes past the pages.
test_a_pipe_read_with_two_bytes_past_the_pages_is_as_plainly() {
	runs_sa tail2 0
	assert_grep '^read 0: 32770$' shim.out
}

# Guard (passes): the packet lies past the whole 64 KiB read (page-aligned
# buffer): the first read is full, the next reads the 100 bytes and the
# packet, as plainly.
test_a_packet_past_the_read_is_left_for_the_next_read_as_plainly() {
	runs_sa packet 0
	assert_grep '^read 0: 600$' shim.out
}

# Guard (passes): the same one byte past the pages from an AF_UNIX
# stream socket: read_more's preadv2(RWF_NOWAIT) works on a socket and
# takes it.
test_a_socket_read_with_one_byte_past_the_pages_is_as_plainly() {
	runs_sa unix-tailpage1 512
	assert_grep '^read 0: 65025$' shim.out
}

run_tests
