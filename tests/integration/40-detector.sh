#!/usr/bin/env bash
# The detector, one behaviour per test, driven by build/prog/bounce: the
# observe report and the JSON stats count exactly the loop bounce runs.
. "$(dirname "$0")/lib.sh"

B=$PROG/bounce
MiB8=8388608

# ---- helpers local to this file ----


# observe ARGS...: bounce ARGS under observe mode; report in report.txt,
# JSON in s.json (both replaced).
observe() {
	rm -f s.json
	NOBOUNCE_MODE=observe NOBOUNCE_STATS=$T/s.json nb_run "$B" "$@" 2> report.txt ||
		fail "bounce $* failed: $(cat report.txt)"
}

# expect_loop SK DK ITERATIONS BYTES: the one SK -> DK loop in s.json.
expect_loop() {
	assert_eq "$(jloop s.json "$1" "$2" iterations)" "$3" "iterations"
	assert_eq "$(jloop s.json "$1" "$2" bytes)" "$4" "bytes"
}

# ---- how the loop is written ----

test_small_socket_reads_are_reported_below_the_stream_minimum_not_arm_after() {
	# 16K socket reads: the minimum for a socket source is
	# NOBOUNCE_MIN_CHUNK_STREAM (128K), however many iterations ran.
	NOBOUNCE_MODE=observe nb_run "$PROG/kcopy" -s 8M -f "$T/src.bin" -p > /dev/null
	NOBOUNCE_MODE=observe nb_run "$PROG/kcopy" -s 8M -f "$T/src.bin" tcp-file plain 16K \
		> /dev/null 2> report.txt || fail "kcopy failed: $(cat report.txt)"
	assert_grep 'fd [0-9]+ \(tcp\) -> fd [0-9]+ \(file\): 51[0-9] iterations' report.txt
	assert_grep 'but it never armed: its chunks are below NOBOUNCE_MIN_CHUNK_STREAM \(128.0 KiB\)$' report.txt
}

test_one_buffer_reused_is_reported_with_exact_iterations_and_bytes() {
	mkdata in.bin 8M
	observe in.bin out.bin
	assert_same in.bin out.bin
	expect_loop file file 128 $MiB8
	assert_eq "$(jloop s.json file file chunks)" '{"64K": 128}'
	assert_eq "$(jloop s.json file file arms)" 1
	assert_eq "$(jloop s.json file file kernel_path)" copy_file_range
	assert_grep 'observe report: 1 copy loop found' report.txt
	assert_grep 'fd 3 \(file\) -> fd 4 \(file\): 128 iterations, 8.0 MiB, chunks \[64K:128\]' report.txt
	assert_grep 'copy_file_range would serve it: 16.0 MiB fewer bytes copied through user space, 256 -> 128 system calls' report.txt
	assert_eq "$(jget s.json 'j["counters"]["bounces"]')" 128
	assert_eq "$(jget s.json 'j["counters"]["bounce_bytes"]')" $MiB8
}

test_two_alternating_buffers_are_one_loop() {
	mkdata in.bin 8M
	observe --buffers 2 in.bin - > out.bin
	assert_same in.bin out.bin
	expect_loop file file 128 $MiB8
	assert_eq "$(jloop s.json file file arms)" 1
}

test_pread_and_writev_with_a_header_iovec_is_one_loop() {
	mkdata in.bin 8M
	observe --read pread --write writev-hdr --buffers 2 in.bin out.bin
	{ printf 'BOUNCE/1 header\n'; cat in.bin; } > want.bin
	assert_same want.bin out.bin
	# The header bytes were never read from the file: not part of the loop.
	expect_loop file file 128 $MiB8
	assert_eq "$(jloop s.json file file arms)" 1
}

test_recv_to_send_over_tcp_is_a_tcp_to_tcp_splice_loop() {
	mkdata in.bin 8M
	local p1 p2
	p1=$(port)
	p2=$(port)
	serve sink "$B" "listen:127.0.0.1:$p2" out.bin
	serve relay env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe NOBOUNCE_STATS="$T/s.json" \
		"$B" --read recv --write send "listen:127.0.0.1:$p1" "tcp:127.0.0.1:$p2" 2> report.txt
	"$B" in.bin "tcp:127.0.0.1:$p1" || fail "sender failed"
	finish relay || fail "relay failed: $(cat report.txt)"
	finish sink || fail "receiver failed"
	assert_same in.bin out.bin
	assert_eq "$(jloop s.json tcp tcp kernel_path)" splice
	# Socket reads return what has arrived; reads under 512 bytes are not
	# tracked, so the loop holds at most the 8 MiB and nearly all of it.
	local bytes
	bytes=$(jloop s.json tcp tcp bytes)
	[ "$bytes" -le $MiB8 ] && [ "$bytes" -ge $((MiB8 * 9 / 10)) ] ||
		fail "tcp -> tcp loop has $bytes bytes"
	assert_grep 'fd [0-9]+ \(tcp\) -> fd [0-9]+ \(tcp\): [0-9]+ iterations' report.txt
	assert_grep 'splice would serve it' report.txt
}

test_file_to_tcp_with_sendto_is_a_sendfile_loop() {
	mkdata in.bin 8M
	local p
	p=$(port)
	serve sink "$B" "listen:127.0.0.1:$p" out.bin
	observe --write sendto --buffers 2 --unaligned in.bin "tcp:127.0.0.1:$p"
	finish sink || fail "receiver failed"
	assert_same in.bin out.bin
	expect_loop file tcp 128 $MiB8
	assert_eq "$(jloop s.json file tcp kernel_path)" sendfile
}

# readv into two iovecs (the halves of the buffer), then one write of the
# whole buffer: each iovec is a read of its own, both forwarded.
test_readv_source_is_a_loop() {
	mkdata in.bin 8M
	observe --read readv in.bin out.bin
	assert_same in.bin out.bin
	expect_loop file file 256 $MiB8
	assert_eq "$(jloop s.json file file chunks)" '{"32K": 256}'
}

test_buffer_written_in_two_halves_is_one_bounce_per_read() {
	mkdata in.bin 8M
	observe --partial in.bin out.bin
	assert_same in.bin out.bin
	expect_loop file file 128 $MiB8
	assert_eq "$(jloop s.json file file arms)" 1
}

# 256K writes into a 64K pipe, O_NONBLOCK: every write is partial or
# EAGAIN; bounce resumes at the first unsent byte after poll().
test_nonblocking_destination_with_partial_writes_is_one_bounce_per_read() {
	mkdata in.bin 8M
	rm -f s.json
	NOBOUNCE_MODE=observe NOBOUNCE_STATS=$T/s.json nb_run "$B" --verbose --nonblock --chunk 256K \
		in.bin - 2> report.txt | cat > out.bin
	assert_same in.bin out.bin
	grep -Eq 'bounce: 8388608 bytes, .* [1-9][0-9]* partial' report.txt ||
		fail "no partial writes happened: $(grep '^bounce:' report.txt)"
	expect_loop file pipe 32 $MiB8
	assert_eq "$(jloop s.json file pipe chunks)" '{"256K": 32}'
	assert_eq "$(jloop s.json file pipe kernel_path)" splice
	assert_eq "$(jloop s.json file pipe arms)" 1
}

test_unaligned_buffer_is_a_loop() {
	mkdata in.bin 8M
	observe --unaligned in.bin out.bin
	assert_same in.bin out.bin
	expect_loop file file 128 $MiB8
}

# ---- misses ----

# Every second buffer has its first byte flipped between read and write:
# the clean ones bounce, the touched ones are misses and keep it unarmed.
test_touched_first_byte_counts_modified_misses() {
	mkdata in.bin 8M
	observe --touch head --touch-every 2 in.bin out.bin
	assert_eq "$(cmp -l in.bin out.bin | wc -l)" 64 "bytes that differ"
	assert_eq "$(cmp -l in.bin out.bin | head -1 | awk '{print $1}')" 65537 "first changed byte"
	assert_eq "$(jloop s.json file file misses.modified)" 64
	expect_loop file file 64 4194304
	assert_eq "$(jloop s.json file file arms)" 0
	assert_eq "$(jget s.json 'j["counters"]["misses_modified"]')" 64
	assert_grep 'misses: 0 unforwarded, 0 two destinations, 64 modified' report.txt
}

test_touched_last_byte_counts_modified_misses() {
	mkdata in.bin 8M
	observe --touch tail --touch-every 2 in.bin out.bin
	assert_eq "$(cmp -l in.bin out.bin | head -1 | awk '{print $1}')" 131072 "first changed byte"
	assert_eq "$(jloop s.json file file misses.modified)" 64
}

test_tee_to_a_second_destination_counts_two_destination_misses() {
	mkdata in.bin 8M
	observe --tee tee.bin in.bin out.bin
	assert_same in.bin out.bin
	assert_same in.bin tee.bin
	assert_eq "$(jloop s.json file file misses.two_destinations)" 128
	assert_eq "$(jloop s.json file file arms)" 0
	assert_grep 'misses: 0 unforwarded, 128 two destinations, 0 modified' report.txt
}

# ---- chunk sizes and arming ----

test_chunk_histogram_buckets_for_32k_reads_and_a_short_tail() {
	mkdata in.bin $((MiB8 + 5000))
	observe --chunk 32768 in.bin out.bin
	assert_same in.bin out.bin
	assert_eq "$(jloop s.json file file chunks)" '{"32K": 256, "4K": 1}'
	expect_loop file file 257 $((MiB8 + 5000))
	assert_grep 'chunks \[4K:1 32K:256\]' report.txt
}

test_chunks_below_min_chunk_are_reported_but_never_arm() {
	mkdata in.bin 8M
	observe --chunk 8K in.bin out.bin
	expect_loop file file 1024 $MiB8
	assert_eq "$(jloop s.json file file chunks)" '{"8K": 1024}'
	assert_eq "$(jloop s.json file file arms)" 0
	assert_eq "$(jget s.json 'j["counters"]["arms"]')" 0
	assert_grep 'fd 3 \(file\) -> fd 4 \(file\): 1024 iterations, 8.0 MiB, chunks \[8K:1024\]' report.txt
}

test_min_chunk_4k_lets_8k_chunks_arm() {
	mkdata in.bin 8M
	NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_MIN_CHUNK_FILE=4K observe --chunk 8K in.bin out.bin
	assert_eq "$(jget s.json 'j["config"]["min_chunk"]')" 4096
	expect_loop file file 1024 $MiB8
	assert_eq "$(jloop s.json file file arms)" 1
}

# A copy between two files is a copy inside the kernel too: it arms only
# from NOBOUNCE_MIN_CHUNK_FILE (64K), whatever NOBOUNCE_MIN_CHUNK says.
test_file_to_file_32k_chunks_do_not_arm_below_min_chunk_file() {
	mkdata in.bin 8M
	NOBOUNCE_MIN_CHUNK=4K observe --chunk 32K in.bin out.bin
	expect_loop file file 256 $MiB8
	assert_eq "$(jloop s.json file file arms)" 0
	NOBOUNCE_MIN_CHUNK=4K observe --chunk 64K in.bin out.bin
	assert_eq "$(jloop s.json file file arms)" 1
}

# 128 clean bounces: arm_after 128 arms on the last one, 129 never.
test_arm_after_is_respected() {
	mkdata in.bin 8M
	NOBOUNCE_ARM_AFTER=128 observe in.bin out.bin
	assert_eq "$(jloop s.json file file arms)" 1 "arms with ARM_AFTER=128"
	NOBOUNCE_ARM_AFTER=129 observe in.bin out.bin
	assert_eq "$(jget s.json 'j["config"]["arm_after"]')" 129
	assert_eq "$(jloop s.json file file arms)" 0 "arms with ARM_AFTER=129"
	expect_loop file file 128 $MiB8
}

# ---- turning it off ----

test_mode_off_writes_no_report_and_no_stats() {
	mkdata in.bin 8M
	NOBOUNCE_MODE=off NOBOUNCE_STATS=$T/s.json nb_run "$B" in.bin out.bin 2> err.txt || fail "bounce failed"
	assert_same in.bin out.bin
	[ ! -s err.txt ] || fail "stderr not empty: $(cat err.txt)"
	[ ! -e s.json ] || fail "stats written in mode off"
}

test_only_another_program_writes_no_report_and_no_stats() {
	mkdata in.bin 8M
	NOBOUNCE_ONLY=someotherprog NOBOUNCE_MODE=observe NOBOUNCE_STATS=$T/s.json \
		nb_run "$B" in.bin out.bin 2> err.txt || fail "bounce failed"
	assert_same in.bin out.bin
	[ ! -s err.txt ] || fail "stderr not empty: $(cat err.txt)"
	[ ! -e s.json ] || fail "stats written for an unselected program"
}

test_only_this_program_reports() {
	mkdata in.bin 8M
	NOBOUNCE_ONLY=someotherprog,bounce observe in.bin out.bin
	expect_loop file file 128 $MiB8
	assert_grep 'bounce\[[0-9]+\] observe report: 1 copy loop found' report.txt
}

test_file_to_file_with_o_append_destination_has_kernel_path_none() {
	mkdata in.bin 8M
	printf 'kept\n' > out.bin
	observe --append in.bin out.bin
	{ printf 'kept\n'; cat in.bin; } > want.bin
	assert_same want.bin out.bin
	expect_loop file file 128 $MiB8
	assert_eq "$(jloop s.json file file kernel_path)" none
	assert_eq "$(jloop s.json file file arms)" 0
	assert_eq "$(jloop s.json file file bytes_not_copied)" 0
	assert_grep 'not served: the destination is opened with O_APPEND; stays plain' report.txt
	assert_nogrep 'no kernel path serves' report.txt
}

run_tests
