#!/usr/bin/env bash
# Every test program of the project under the differential harness
# (tests/differential.sh): each run plain and preloaded (mode on, armed at
# the first bounce, every minimum at 4K), in fresh directories; exit
# status, standard output (the return values and errno the program
# logged) and every file it left must be identical. overhead is the one
# program left out: it prints nothing but timings.
. "$(dirname "$0")/lib.sh"

DIFF=$NB_ROOT/tests/differential.sh

# differ ARGS...: the harness must find the runs the same.
differ() {
	local out
	out=$(NB_TEST_PRELOAD=$LIB bash "$DIFF" "$@") || fail "$out"
	echo "$out" | grep -q '^same: ' || fail "no verdict: $out"
}

# The harness itself: a program whose output depends on the preload is
# reported, with status 1; a bad option is one line and status 2.
test_the_harness_reports_a_program_that_behaves_differently() {
	local out rc
	out=$(NB_TEST_PRELOAD=$LIB bash "$DIFF" -- sh -c 'echo "$LD_PRELOAD" > seen.txt')
	rc=$?
	assert_eq "$rc" 1 "status for a difference"
	echo "$out" | grep -q '^DIFFERENT: ./seen.txt differs' || fail "not reported: $out"
	rm -rf "$(echo "$out" | sed -n 's/.*kept in \([^)]*\)).*/\1/p')"
	out=$(bash "$DIFF" --bogus -- true 2>&1)
	assert_eq "$?" 2 "status for a bad option"
	assert_eq "$(echo "$out" | wc -l)" 1 "lines for a bad option"
}

test_passlog_script_of_calls() {
	differ -- "$PROG/passlog"
}

# bounce: every read and write method, one and two buffers, unaligned,
# partial writes, touched bytes, to a file and to stdout (a pipe).
test_bounce_every_way_of_copying() {
	local setup='head -c 9M /dev/urandom > in.bin' opts n=0
	while IFS= read -r opts; do
		# shellcheck disable=SC2086 # OPTS: a word list
		differ --setup "$setup" -- "$PROG/bounce" $opts in.bin out.bin
		# shellcheck disable=SC2086
		differ --setup "$setup" -- "$PROG/bounce" $opts in.bin -
		n=$((n + 2))
	done <<-EOF
		--chunk 64K
		--chunk 16K --read pread --write pwrite
		--chunk 128K --read readv --write writev
		--chunk 64K --write writev-hdr --buffers 2
		--chunk 64K --unaligned --partial
		--chunk 64K --touch head --touch-every 3
		--chunk 1M --touch tail --buffers 2 --unaligned
		--chunk 64K --transform --xor 0
	EOF
	assert_eq "$n" 16 "bounce runs"
}

test_segv_every_scenario() {
	local sc
	for sc in null query sigaction signal resethand mask raise ignored-fault longjmp bus; do
		differ -- "$PROG/segv" "$sc"
	done
}

# zc: every scenario it has (the names are read from its source).
test_zc_every_scenario() {
	local sc n=0
	for sc in $(grep -o 'strcmp(s, "[a-z0-9-]*")' "$NB_ROOT/tests/prog/zc.c" |
		sed 's/strcmp(s, "\(.*\)")/\1/'); do
		differ -- "$PROG/zc" "$sc"
		n=$((n + 1))
	done
	[ "$n" -ge 70 ] || fail "only $n zc scenarios found"
}

test_xferlog_cases_in_plain_mode() {
	local c
	for c in tcp_block unix_block pipe_block pipe_nonblock file_same_fs file_pwrite tcp_reset_ign \
		tcp_fin_handler eintr_tcp eintr_pipe_partial short_source; do
		differ -- "$PROG/xferlog" plain "$c"
	done
}

test_threads_with_descriptor_churn() {
	differ -- "$PROG/threads" 4 32
}

# kcopy prints timings too: compared are the direction, method, chunk,
# byte count and verdict (-V checks a file destination byte for byte).
test_kcopy_every_direction() {
	local d
	for d in file-pipe file-tcp file-file tcp-file tcp-tcp pipe-file; do
		differ --stdout-only 'dir=[^ ]* method=[^ ]* chunk=[0-9]* bytes=[0-9]*|status=[a-z]*' \
			-- "$PROG/kcopy" -V -s 24M -f "$T/kcopy.src" "$d" plain 64K
	done
}

run_tests
