#!/usr/bin/env bash
# Reads below NOBOUNCE_MIN_CHUNK (shim/hook_io.c read_light, init.c
# track_min): while the process has recorded no read, a read below the
# minimum is the real call plus the EFAULT retry of "A phantom made after
# the look", and it no longer marks the process as one that moved data
# (nb_g.tracked). tests/findings/77-fwrite-restarted-after-a-handler.sh
# has the same scenario through an unbuffered fwrite (glibc's own
# write(2), past every hook: failing). Each scenario of tests/prog/trackmin.c runs plain and
# preloaded with the defaults: same output, same exit status, same files,
# and the preloaded run really deferred reads.
. "$(dirname "$0")/lib.sh"

TM=$PROG/trackmin

# same_as_plain SCENARIO EXPECTED-PLAIN-LINE-REGEX [ENV...]
same_as_plain() {
	local sc=$1 want=$2 rc_plain rc_shim
	shift 2
	[ -f src.bin ] || mkdata src.bin 2097152
	"$TM" src.bin dst.plain "$sc" > plain.out 2> plain.err; rc_plain=$?
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" "$@" \
		"$TM" src.bin dst.shim "$sc" > shim.out 2> shim.err; rc_shim=$?
	assert_eq "$rc_plain" 0 "plain exit status"
	assert_grep "$want" plain.out
	assert_eq "$rc_shim" "$rc_plain" "exit status"
	[ "$(jget stats.json 'j["counters"]["deferred_reads"]')" -gt 0 ] || fail "nothing was deferred"
	cmp dst.plain dst.shim || fail "copies differ"
	if [ -f dst.plain.small ]; then cmp dst.plain.small dst.shim.small || fail "warm-up copies differ"; fi
	diff plain.out shim.out >&2 || fail "output differs"
}

# A write() blocked on a full pipe; a SIGALRM handler runs an armed
# 64 KiB loop through the written buffer and leaves its last read
# deferred; the kernel restarts the write (SA_RESTART) with no hook in
# between and meets the guarded pages. read(), readv, recv and writev
# retry such an EFAULT (70-phantom-made-after-the-look.sh); write()'s hot
# path - taken while no read was ever recorded - did not: "write -1
# errno=Bad address" (before write_light; after a 4 KiB loop only since
# read() stopped looking at reads below the minimum).
test_a_write_restarted_after_a_handler_deferred_into_its_buffer_sends_them() {
	same_as_plain write '^write 4096 errno=- sum=[0-9]+$'
}

# The same after a 4 KiB read()/write() copy loop of the program's own.
# Before the change to read() that loop's reads were recorded, the
# process counted as tracked and write() took the full path, which
# retries; now a loop below the minimum leaves it untracked, write()
# takes the hot path and the restarted write fails with EFAULT. FAILS on
# main; passed before read_light (e0fc8dc).
test_a_write_restarted_after_a_4k_loop_and_a_handler_deferred_into_its_buffer_sends_them() {
	same_as_plain small-write '^write 4096 errno=- sum=[0-9]+$'
}

# The same through fwrite() of an unbuffered stream: glibc makes the
# write(2) of the caller's memory itself, past every hook, so nothing can
# retry it; the stream reports the error. Not caused by read_light: FAILS
# on main and before it, with and without the 4 KiB loop.
# Guards (pass): the read below the minimum that a handler defers into
# while it waits is made again (read_light_failed), with and without the
# 4 KiB loop before it; an 8 KiB read, in the range read_light serves.
test_an_8k_read_restarted_after_a_handler_deferred_into_its_buffer_gets_the_bytes() {
	same_as_plain read '^read 8192 errno=- first=M last=M$'
}

test_an_8k_read_restarted_after_a_4k_loop_and_a_handler_deferred_into_its_buffer_gets_the_bytes() {
	same_as_plain small-read '^read 8192 errno=- first=M last=M$'
}

# Guards (pass): an armed 64 KiB file -> file loop that reads 4, 8 and
# 12 KiB pieces of its source into its buffer (at 0, 100 and 4096 bytes
# in) every fourth turn, an lseek there and back before each, a pread
# after it: same bytes, same positions, with the defaults and with the
# minimum at 512, 4K, 8K and 1M.
test_4k_to_12k_pieces_inside_an_armed_loop_keep_bytes_and_positions() {
	same_as_plain mixed '^end pos 2097152 all [0-9]+$'
}

test_4k_to_12k_pieces_after_a_4k_loop_inside_an_armed_loop_keep_bytes_and_positions() {
	same_as_plain small-mixed '^end pos 2097152 all [0-9]+$'
}

test_4k_to_12k_pieces_inside_an_armed_loop_with_other_minimums() {
	local m
	for m in 512 4K 8K; do
		rm -f stats.json
		same_as_plain small-mixed '^end pos 2097152 all [0-9]+$' NOBOUNCE_MIN_CHUNK=$m
	done
}

# Guard (pass): observe mode still looks from 512 bytes: a 4 KiB dd is
# reported as a loop whose chunks are below the minimum.
test_observe_mode_still_reports_a_4k_loop() {
	mkdata src.bin 1048576
	dd if=src.bin of=dst.plain bs=4k status=none
	env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe NOBOUNCE_STATS="$T/stats.json" \
		dd if=src.bin of=dst.shim bs=4k status=none 2> shim.err || fail "preloaded dd failed"
	cmp dst.plain dst.shim || fail "copies differ"
	assert_eq "$(jloop stats.json file file iterations)" 256
}

# Guard (pass): with the minimum at 1G every read of the program is below
# it; the 64 KiB loop and the 4 KiB loop copy as plain, nothing deferred.
test_a_minimum_of_1g_leaves_every_loop_plain() {
	mkdata src.bin 2097152
	"$TM" src.bin dst.plain small-mixed > plain.out || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_MIN_CHUNK=1G NOBOUNCE_STATS="$T/stats.json" \
		"$TM" src.bin dst.shim small-mixed > shim.out || fail "preloaded run failed"
	assert_eq "$(jget stats.json 'j["counters"]["deferred_reads"]')" 0
	cmp dst.plain dst.shim || fail "copies differ"
	cmp dst.plain.small dst.shim.small || fail "warm-up copies differ"
	diff plain.out shim.out >&2 || fail "output differs"
}

run_tests
