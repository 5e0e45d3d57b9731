#!/usr/bin/env bash
# The library's own descriptors (hazard class 3): closefrom, a raw
# close_range, the numbers coming back as the program's, and references
# that must not pile up. Each scenario of tests/prog/haz_fd.c runs plain
# and preloaded: same stdout, exit status and output file, and the
# preloaded run really met a phantom (probe or counters).
. "$(dirname "$0")/lib.sh"

HZ=$PROG/haz_fd

# both SCENARIO [ARGS...]: runs plain in plain/, preloaded in shim/.
both() {
	local run
	for run in plain shim; do
		mkdir -p "$T/$run"
		(
			cd "$T/$run" || exit 1
			if [ $run = plain ]; then
				timeout 120 "$HZ" "$@" > out.txt 2> err.txt
			else
				timeout 120 env LD_PRELOAD="$PRELOAD" NOBOUNCE_MODE=on NOBOUNCE_ARM_AFTER=1 \
					NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_MIN_CHUNK_STREAM=4K \
					NOBOUNCE_STATS="$T/$run/s.json" "$HZ" "$@" > out.txt 2> err.txt
			fi
			echo $? > rc
		) 2> /dev/null
	done
	cd "$T" || exit 1
}

same_as_plain() {
	[ -s plain/out.txt ] || fail "the plain run printed nothing: $(cat plain/err.txt)"
	assert_eq "$(cat shim/rc)" "$(cat plain/rc)" "exit status (preloaded vs plain): $(grep -v '^probe' shim/err.txt | head -2)"
	if ! cmp -s plain/out.txt shim/out.txt; then
		diff plain/out.txt shim/out.txt | head -20 | sed 's/^/      | /' >&2
		fail "stdout differs ('<' plain, '>' preloaded)"
	fi
	cmp plain/out.bin shim/out.bin >&2 || fail "out.bin differs (plain vs preloaded)"
}

met_phantom() {
	assert_grep '^probe taken it 4 guarded=1$' shim/err.txt
}

test_closefrom_keeps_the_library_descriptors_and_fills_stay_exact() {
	both closefrom
	same_as_plain
	met_phantom
	# Zero-copy carries on after closefrom: the reads after it are served too.
	[ "$(report_counter deferred_reads shim/s.json)" -gt 5 ] || fail "deferred_reads=$(report_counter deferred_reads shim/s.json)"
}

test_raw_close_range_over_library_descriptors_still_gives_the_right_bytes() {
	both close-range
	same_as_plain
	met_phantom
}

test_numbers_reused_by_the_program_are_never_read_as_the_source() {
	both reuse
	same_as_plain
	met_phantom
}

test_untouched_buffer_written_after_its_descriptor_was_reused_sends_the_source_bytes() {
	both reuse-write
	same_as_plain
	met_phantom
}

test_program_holding_the_top_of_its_table_still_gets_zero_copy() {
	both top-held
	same_as_plain
	met_phantom
}

test_thousand_files_through_one_buffer_stay_zero_copy_and_free_deleted_files() {
	both many 1000
	same_as_plain
	assert_grep '^deleted files open at the end: 0$' shim/out.txt
	assert_grep '^most deleted files open at once: 0$' shim/out.txt
	# Every file: three whole chunks and a short tail; the first read of
	# each new descriptor arms the pair, the rest are deferred.
	local d
	d=$(report_counter deferred_reads shim/s.json)
	[ "$d" -ge 2000 ] || fail "deferred_reads=$d for 1000 files: zero-copy stopped"
}

test_pipe_bytes_lost_with_their_descriptor_stop_the_process_loudly() {
	both pipe-range
	assert_eq "$(cat plain/rc)" 0 "plain run"
	met_phantom
	# The bytes of a pipe source exist only in the library's pool pipe: a
	# raw close_range took them. No stale byte may reach the program or
	# the output: one clear line, then death by SIGABRT.
	assert_eq "$(cat shim/rc)" $((128 + 6)) "death by SIGABRT: $(head -3 shim/err.txt)"
	assert_grep '^nobounce\[[0-9]+\]: fatal: .*out of reach' shim/err.txt
	assert_nogrep '^chunk 4' shim/out.txt
	local n
	n=$(stat -c %s shim/out.bin)
	cmp -n "$n" plain/out.bin shim/out.bin >&2 || fail "out.bin is not a prefix of plain's"
}

test_close_range_through_libcs_syscall_skips_the_library_descriptors() {
	both pipe-range-libc
	assert_eq "$(cat plain/rc)" 0 "plain run"
	met_phantom
	# Where a served pipe read ends may differ from plain (a stream read
	# may return less), so the chunk's checksum is not compared; the
	# stream must arrive whole and the process live on.
	assert_eq "$(cat shim/rc)" 0 "preloaded run: $(grep -v '^probe' shim/err.txt | head -2)"
	assert_nogrep 'fatal' shim/err.txt
	cmp plain/out.bin shim/out.bin >&2 || fail "out.bin differs (plain vs preloaded)"
}

run_tests
