#!/usr/bin/env bash
# Stream sources (TCP sockets, pipes) served through the pool pipe keep
# read(2)'s contract: a read returns everything queued up to the count
# (event loops take a short read as "nothing more for now"), a TCP urgent
# byte is no end of stream, packet-mode pipes give one packet per read,
# and reads into overlapping places of one buffer lose nothing. Each
# scenario of tests/prog/haz_stream.c runs plain and preloaded (library
# defaults): same stdout, exit status and received bytes, and the
# preloaded run really served reads as phantoms.
. "$(dirname "$0")/lib.sh"

HS=$PROG/haz_stream

# both SCENARIO: plain, then preloaded; compares everything.
both() {
	local rc_plain rc_shim
	timeout 90 "$HS" "$1" plain.bin > plain.out 2> plain.err; rc_plain=$?
	NOBOUNCE_STATS="$T/stats-%p.json" timeout 90 env LD_PRELOAD="$LIB" "$HS" "$1" shim.bin \
		> shim.out 2> shim.err; rc_shim=$?
	assert_eq "$rc_plain" 0 "plain exit status of '$1'"
	diff plain.out shim.out >&2 || fail "output of '$1' differs"
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$1'"
	assert_same plain.bin shim.bin
	local st
	st=$(grep -l '"program": "haz_stream"' "$T"/stats-*.json | head -1)
	[ -n "$st" ] || fail "no stats report"
	local d
	d=$(jget "$st" 'j["counters"]["deferred_reads"]')
	[ "$d" -gt 0 ] || fail "no read of '$1' was served as a phantom"
}

test_tcp_urgent_byte_mid_stream_is_skipped_not_taken_for_the_end() {
	both oob
	assert_grep '^received 4194304 bytes until end of stream$' shim.out
}

test_tcp_urgent_byte_mid_stream_with_oobinline_is_read_in_line() {
	both oob-inline
	assert_grep '^received 4194305 bytes until end of stream$' shim.out
}

test_epollet_reader_of_256k_chunks_never_waits_for_an_edge_that_does_not_come() {
	both epollet
	assert_grep '^received 16777216 bytes$' shim.out
}

test_epollet_reader_with_a_page_aligned_4m_buffer_gets_everything() {
	both epollet-aligned
	assert_grep '^received 16777216 bytes$' shim.out
}

test_short_read_with_rdhup_taken_as_the_end_loses_nothing() {
	both rdhup
	assert_grep '^received 16777216 bytes before taking the end$' shim.out
}

test_packet_mode_pipe_gives_one_packet_per_read_and_every_byte() {
	both packet
	assert_grep '^reads in the packet part that were not one whole packet: 0$' shim.out
}

test_reads_into_overlapping_places_of_one_buffer_lose_nothing() {
	both ring
	assert_grep '^received 33554432 bytes$' shim.out
}

# haproxy 2.6 in TCP mode (raw_sock_to_buf: a short read with HUP seen is
# the end of the stream) in front of a local server, both on 127.0.0.1,
# preloaded with the stream minimum at 8K so its 16K reads are served:
# eight concurrent downloads of 32 MiB arrive whole.
test_haproxy_tcp_mode_relays_eight_32m_downloads_whole() {
	command -v haproxy > /dev/null || fail "haproxy is not installed (scripts/deps.sh)"
	local p1 p2 i
	p1=$(port); p2=$(port)
	mkdata in.bin $((32 * 1024 * 1024))
	# (the file opened per connection, after the fork: one offset each)
	serve origin socat -U "TCP-LISTEN:$p1,bind=127.0.0.1,reuseaddr,fork" OPEN:in.bin,rdonly
	wait_listen "$p1"
	haproxy_cfg tcp "$p2" "$p1"
	serve hap env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/hap-%p.json" NOBOUNCE_MIN_CHUNK=8K \
		NOBOUNCE_MIN_CHUNK_STREAM=8K haproxy -q -db -f haproxy.cfg
	wait_listen "$p2"
	for i in 1 2 3 4 5 6 7 8; do
		timeout 60 socat -u "TCP:127.0.0.1:$p2" "CREATE:out$i.bin" &
		echo $! > "$T/dl$i.pid"
	done
	for i in 1 2 3 4 5 6 7 8; do
		finish "dl$i" || fail "download $i failed"
	done
	# A soft stop (SIGUSR1) lets haproxy exit normally, which writes the
	# report; it is the child of the timeout whose PID serve recorded.
	local hp
	hp=$(pgrep -P "$(cat "$T/hap.pid")")
	[ -n "$hp" ] && kill -USR1 "$hp"
	finish hap
	stop origin
	for i in 1 2 3 4 5 6 7 8; do
		assert_eq "$(stat -c %s "out$i.bin")" $((32 * 1024 * 1024)) "size of download $i"
		assert_same in.bin "out$i.bin"
	done
	local st d
	st=$(grep -l '"program": "haproxy"' "$T"/hap-*.json | head -1)
	[ -n "$st" ] || fail "no stats report from haproxy"
	d=$(jget "$st" 'j["counters"]["deferred_reads"]')
	[ "$d" -gt 0 ] || fail "haproxy had no read served as a phantom"
}

run_tests
