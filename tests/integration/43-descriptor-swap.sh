#!/usr/bin/env bash
# A copy loop whose source number another thread replaces while it copies
# (tests/prog/fdswap.c): every read returns bytes of one file at that
# file's own position, as plainly, where the library defers reads. The
# threaded scenarios are races; each run makes about 400 reads against
# about 300 replacements, and before the number was held by deferred
# reads (fdtab.c "A deferred read holds its number") nearly every run
# mixed the files. Each scenario runs preloaded with library defaults and
# must verify, with reads deferred; own-lseek (deterministic) must also
# print what the plain run prints.
. "$(dirname "$0")/lib.sh"

FS=$PROG/fdswap

# swapped DST SWAP: the threaded scenario, preloaded.
swapped() {
	local rc
	env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" \
		"$FS" thread "$1" "$2" > shim.out 2> shim.err; rc=$?
	assert_grep '^verify: ok$' shim.out
	assert_eq "$rc" 0 "exit status of thread $1 $2"
	[ "$(jget stats.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"
}

test_a_source_number_another_thread_dup2s_over_gives_one_file_per_read() {
	swapped file dup2
}

test_a_source_number_another_thread_dup3s_over_gives_one_file_per_read() {
	swapped file dup3
}

test_a_source_number_another_thread_closes_and_reopens_gives_one_file_per_read() {
	swapped file reopen
}

test_a_source_number_another_thread_close_ranges_and_reopens_gives_one_file_per_read() {
	swapped file closerange
}

test_a_source_number_replaced_under_a_copy_to_a_pipe_gives_one_file_per_read() {
	swapped pipe dup2
}

test_a_source_number_replaced_under_a_copy_to_a_unix_socket_gives_one_file_per_read() {
	swapped unix reopen
}

test_the_library_moves_the_position_without_the_programs_own_lseek() {
	runs_as_plain "$FS" own-lseek
	assert_grep '^verify: ok$' shim.out
	assert_same plain/out.bin shim/out.bin
	[ "$(jget stats.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"
}

# A close of a number the library never met waits for no reader and
# keeps nothing: a daemon closing every number up to 2^20 stays small
# (the replacement guard once made a table slot per close: 320 MiB).
test_closing_every_number_keeps_no_state_for_numbers_never_met() {
	local mib
	mib=$(env LD_PRELOAD="$PRELOAD" "$PROG/closeall" | sed -n 's/^maxrss_mib //p')
	[ -n "$mib" ] || fail "closeall printed no size"
	[ "$mib" -lt 32 ] || fail "peak resident size $mib MiB after closing 2^20 numbers"
}

run_tests
