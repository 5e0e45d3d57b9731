#!/usr/bin/env bash
# Writes of read-only file mappings (shim/mapping.c, forward.c): a write,
# writev, send, sendmsg, pwrite, pwritev or fwrite of memory that is a
# PROT_READ mapping of a file goes by the kernel (sendfile into sockets,
# splice into pipes, copy_file_range into files) from the first call,
# with the plain call's results. Every scenario of tests/prog/mapw.c runs
# plain and preloaded: same output, same exit status, same destination
# bytes - and the preloaded run's JSON report says whether the kernel
# moved the mapping's bytes (mapped_bytes), which is the new behaviour.
. "$(dirname "$0")/lib.sh"

MAPW=$PROG/mapw

# both ARGS...: runs the scenario plain (in p/) and preloaded (in s/,
# with a JSON report s/s.json); compares output, status and out.bin.
both() {
	rm -rf p s
	mkdir -p p s
	(cd p && "$MAPW" "$@" > out.txt 2> err.txt); local rc_p=$?
	(cd s && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/s/s.json" "$MAPW" "$@" \
		> out.txt 2> err.txt); local rc_s=$?
	[ -s p/err.txt ] && sed 's/^/      plain stderr | /' p/err.txt >&2
	[ -s s/err.txt ] && sed 's/^/      shim stderr | /' s/err.txt >&2
	assert_eq "$rc_s" "$rc_p" "exit status of '$*'"
	diff p/out.txt s/out.txt >&2 || fail "output of '$*' differs"
	[ -f p/out.bin ] && { cmp p/out.bin s/out.bin >&2 || fail "out.bin of '$*' differs"; }
	[ -f s/s.json ] || fail "no JSON report"
}

# The destination got exactly the source file (after the header, if any).
assert_payload() {
	local skip=${1:-0}
	if [ "$skip" -gt 0 ]; then
		tail -c +$((skip + 1)) s/out.bin > s/body.bin
		assert_same s/body.bin s/src.bin
		head -c "$skip" s/out.bin | tr -d H | wc -c | grep -qx 0 || fail "header bytes differ"
	else
		assert_same s/out.bin s/src.bin
	fi
}

assert_by_kernel() {
	local mb
	mb=$(report_counter mapped_bytes s/s.json)
	[ "$mb" -ge "$1" ] || fail "mapped_bytes $mb < $1: the kernel did not move the mapping"
	[ "$(report_counter mapped_writes s/s.json)" -ge 1 ] || fail "no mapped write counted"
}

assert_not_by_kernel() {
	assert_eq "$(report_counter mapped_bytes s/s.json)" 0 "mapped_bytes"
	assert_eq "$(report_counter forwarded_bytes s/s.json)" 0 "forwarded_bytes"
}

SIZE=$((8 * 1024 * 1024 + 5000))

copy_case() { # DST TYPE HOW
	both copy "$1" "$2" "$3"
	case $3 in
	writev|sendmsg|pwritev) assert_payload 213 ;;
	*) assert_payload ;;
	esac
	# A private mapping is never served (shim/mapping.c: a forced write
	# - ptrace, /proc/PID/mem - changes its pages unseen): plain.
	if [ "$2" = private ]; then assert_not_by_kernel; else assert_by_kernel "$SIZE"; fi
}

test_mapped_write_to_tcp_goes_by_sendfile_shared_and_private() {
	for t in shared private; do
		for h in write send; do
			copy_case tcp $t $h
			[ $t = private ] ||
				assert_eq "$(jget s/s.json "j['counters']['kernel_calls'] > 1")" True "kernel calls"
		done
	done
}

test_apache_style_writev_header_plus_mapping_to_tcp() {
	copy_case tcp shared writev
	copy_case tcp private sendmsg
}

test_mapped_write_to_pipe_goes_by_splice() {
	for t in shared private; do
		for h in write writev; do
			copy_case pipe $t $h
		done
	done
}

test_mapped_write_to_file_goes_by_copy_file_range() {
	for t in shared private; do
		for h in write pwrite writev pwritev; do
			copy_case file $t $h
		done
	done
}

test_fwrite_of_a_mapping_on_a_write_only_stream() {
	copy_case file shared fwrite
	copy_case tcp private fwrite
	copy_case pipe shared fwrite
}

test_nonblocking_socket_full_gives_short_count_then_eagain() {
	both eagain
	assert_grep '^first write short: yes' s/out.txt
	assert_grep '^write with the buffer full: -1 EAGAIN' s/out.txt
	assert_payload
	# The program writes the rest again after each EAGAIN; a rest below
	# the socket minimum (16K, NOBOUNCE_MIN_CHUNK) goes plain by design,
	# and how small the last rest is depends on how fast the reader
	# drains (under load: 8387919 of 8393608 bytes by the kernel).
	assert_by_kernel $((SIZE - 65536))
}

test_signal_without_restart_gives_eintr_or_short_count() {
	both eintr
	assert_grep '^blocked write interrupted: -1 EINTR' s/out.txt
	assert_grep '^write after a partial read: short count' s/out.txt
	assert_payload
	assert_by_kernel "$SIZE"
}

test_mapping_made_writable_is_never_served_from_the_file() {
	for t in private shared; do
		both writable $t
		assert_not_by_kernel
	done
	# the private one: the changed bytes, not the file's
	both writable private
	cmp -s s/out.bin s/src.bin && fail "private change lost"
	assert_not_by_kernel
}

test_mapping_written_privately_is_never_served_from_the_file() {
	both written-private
	cmp -s s/out.bin s/src.bin && fail "private change lost"
	assert_not_by_kernel
}

test_unmapped_and_replaced_memory_is_not_the_file() {
	both remapped
	assert_not_by_kernel
	[ "$(tr -d A < s/out.bin | wc -c)" -eq 0 ] || fail "not the new memory's bytes"
}

test_writes_below_the_minimum_stay_plain() {
	both small tcp
	assert_payload
	assert_not_by_kernel
}

# The file cut after mmap: the mapping reaches past its end. Pipes and
# files count page by page: the same count as plain, then EFAULT.
test_truncated_file_behaves_like_plain_pipe_and_file() {
	for d in pipe file; do
		for cut in 300000 299008 4097; do
			both truncated $d $cut
			assert_grep '^write past the end: -1 EFAULT' s/out.txt
			# (a single page is a tiny pipe write: atomic, plain)
			[ "$cut" -gt 8192 ] && assert_by_kernel 4096
		done
	done
	both truncated file 0
	assert_grep '^write of the whole mapping: -1 EFAULT' s/out.txt
	assert_not_by_kernel
}

# Into TCP the plain call's count after a fault depends on how the socket
# cut its buffers; the preloaded count is one the plain call can give:
# a prefix of the file's bytes and the last page's zeros, all of it what
# the receiver got, then EFAULT.
test_truncated_file_into_tcp_sends_a_prefix_then_efault() {
	rm -rf p s
	mkdir -p p s
	(cd s && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/s/s.json" "$MAPW" truncated tcp 300000 \
		> out.txt 2> err.txt) || fail "status"
	(cd p && "$MAPW" truncated tcp 300000 > out.txt 2> err.txt) || fail "plain status"
	local n
	n=$(sed -n 's/^write of the whole mapping: \([0-9]*\)$/\1/p' s/out.txt)
	[ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -le 303104 ] || fail "count '$n'"
	assert_eq "$(stat -c %s s/out.bin)" "$n" "bytes received"
	head -c 300000 s/src.bin > s/expect.bin
	head -c $((303104 - 300000)) /dev/zero >> s/expect.bin
	cmp -s s/out.bin <(head -c "$n" s/expect.bin) || fail "not a prefix of the file and its zeros"
	assert_grep '^write past the end: -1 EFAULT' s/out.txt
	assert_grep '^write past the end: -1 EFAULT' p/out.txt
	assert_by_kernel 4096
}

test_observe_names_the_mapped_loop() {
	mkdir -p o
	(cd o && env LD_PRELOAD="$PRELOAD" NOBOUNCE_MODE=observe NOBOUNCE_STATS="$T/o/s.json" \
		"$MAPW" copy tcp shared writev > out.txt 2> report.txt) || fail "status"
	assert_grep 'fd [0-9]+ \(file, mapped\) -> fd [0-9]+ \(tcp\): 1 writes' o/report.txt
	assert_grep 'sendfile would serve it' o/report.txt
	grep -A2 '(file, mapped)' o/report.txt > o/mapped.txt
	assert_nogrep 'never armed' o/mapped.txt
	assert_eq "$(jget o/s.json "j['counters']['mapped_bytes']")" 0 "observe moves nothing"
	assert_eq "$(jget o/s.json "[l['mapped'] for l in j['loops'] if l['dst_kind'] == 'tcp']")" \
		"[True]" "loop marked mapped"
	# and mode on: the same loop, served
	both copy tcp shared writev
	assert_eq "$(jget s/s.json "[(l['mapped'], l['iterations'], l['bytes']) for l in j['loops'] if l['mapped']]")" \
		"[(True, 1, $SIZE)]" "served loop"
}

test_a_range_changed_after_its_mapped_write_reaches_a_slow_pipe_reader_as_written() {
	both changed-after pipe
	[ "$(report_counter mapped_bytes s/s.json)" -ge 524288 ] || fail "the write did not go by the kernel"
	# both: the reader got what plain's reader got, the bytes at the write
}

test_a_range_changed_after_its_mapped_write_reaches_a_slow_tcp_reader_as_written() {
	both changed-after tcp
	[ "$(report_counter mapped_bytes s/s.json)" -ge 524288 ] || fail "the write did not go by the kernel"
}

test_a_new_writable_mapping_after_a_mapped_write_waits_for_the_slow_reader() {
	both changed-after pipe map
	[ "$(report_counter mapped_bytes s/s.json)" -ge 524288 ] || fail "the write did not go by the kernel"
}

test_a_send_timeout_is_one_budget_for_the_whole_write_of_a_mapping() {
	mkdir -p p s
	(cd p && timeout 20 "$PROG/sndtimeo" > out.txt 2> err.txt) || fail "plain run"
	(cd s && timeout 20 env LD_PRELOAD="$PRELOAD" "$PROG/sndtimeo" > out.txt 2> err.txt) ||
		fail "preloaded run (timed out or failed)"
	assert_grep '^write short: yes, within 3 s: yes$' p/out.txt
	diff p/out.txt s/out.txt >&2 || fail "output differs"
}

run_tests
