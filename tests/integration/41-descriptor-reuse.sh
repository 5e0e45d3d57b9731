#!/usr/bin/env bash
# A source's descriptor number closed and handed out again for another
# file (tests/prog/fdreuse.c): the first read of the new file gives its
# own bytes, in memory and in what the write sends - not the bytes of the
# file the number named before, whose buffer is still guarded. Each
# scenario runs plain and preloaded (library defaults); stdout, exit
# status and the output files must be the same, and the preloaded run
# must have had a.bin's buffer guarded when the number was closed.
. "$(dirname "$0")/lib.sh"

FR=$PROG/fdreuse

# same_as_plain SCENARIO [VAR=VALUE...]
same_as_plain() {
	local sc=$1 rc_plain rc_shim
	shift
	mkdir -p plain shim
	( cd plain && "$FR" "$sc" > ../plain.out 2> ../plain.err ) 2> /dev/null; rc_plain=$?
	( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" "$@" \
		"$FR" "$sc" > ../shim.out 2> ../shim.err ) 2> /dev/null; rc_shim=$?
	assert_eq "$rc_plain" 0 "plain exit status of '$sc'"
	diff plain.out shim.out >&2 || fail "output of '$sc' differs"
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$sc'"
	assert_same plain/dst.bin shim/dst.bin
	assert_same plain/dst-a.bin shim/dst-a.bin
	assert_grep '^b.bin has a.bin.s number: yes$' shim.out
	assert_grep '^probe a-buffer-at-close guarded=0$' plain.err
	assert_grep '^probe a-buffer-at-close guarded=1$' shim.err
	[ "$(jget stats.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"
}

test_the_next_file_on_the_same_number_is_copied_with_its_own_bytes() {
	same_as_plain next-file
}

test_the_next_file_on_the_same_number_reads_its_own_bytes_into_memory() {
	same_as_plain next-file-look
	assert_grep '^first read: buffer holds the file.s bytes$' shim.out
}

test_a_file_put_on_the_number_with_dup2_is_copied_with_its_own_bytes() {
	same_as_plain dup2-over
}

test_the_next_file_on_the_same_number_is_copied_with_its_own_bytes_by_pread() {
	same_as_plain pread
}

# The number another thread closed: the old file's buffer (and its
# backing) still alive in that thread while this one copies.
test_the_number_another_thread_closed_gives_the_new_file_its_own_bytes() {
	same_as_plain threads
	assert_grep '^first thread.s buffer: a.bin.s last chunk read$' shim.out
}

test_the_next_file_on_the_same_number_is_copied_with_its_own_bytes_strict() {
	same_as_plain next-file NOBOUNCE_EXACT=strict
}

test_the_next_file_on_the_same_number_is_copied_with_its_own_bytes_exact_off() {
	same_as_plain next-file NOBOUNCE_EXACT=off
}

run_tests
