#!/usr/bin/env bash
# More of hazard class 6, from an adversarial round: the program changes
# its source through pkey_mprotect, dprintf, stdio and descriptor flag
# games and mremap; and waits for bytes in flight never stall a pipeline.
# Each scenario of tests/prog/haz_same2.c runs plain and preloaded
# (library defaults): same stdout, same exit status.
. "$(dirname "$0")/lib.sh"

HAZ=$PROG/haz_same2

same_as_plain() {
	local rc_plain rc_shim
	mkdir -p plain shim
	( cd plain && timeout 60 "$HAZ" "$1" > ../plain.out 2> ../plain.err ) 2> /dev/null; rc_plain=$?
	( cd shim && timeout 60 env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" \
		"$HAZ" "$1" > ../shim.out 2> ../shim.err ) 2> /dev/null; rc_shim=$?
	assert_eq "$rc_plain" 0 "plain exit status of '$1'"
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$1'"
	diff plain.out shim.out >&2 || fail "output of '$1' differs"
}

# Where the program holds an unseen writer of the source from the start,
# the file is never deferred; the point is that it stays exact after the
# writer changes shape (mremap, F_SETFL).
deferred() { [ "$(jget stats.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"; }

test_pkey_mprotect_making_a_shared_mapping_of_the_source_writable() { same_as_plain pkey; deferred; }
test_pkey_mprotect_on_the_copy_buffer_fills_it_first() { same_as_plain pkeybuf; deferred; }
test_dprintf_into_the_source() { same_as_plain dprintf; deferred; }
test_an_append_stream_on_the_source_that_loses_o_append() { same_as_plain appendflip; }
test_o_append_cleared_through_a_dup_then_pwrite_into_the_source() { same_as_plain dupfl; deferred; }
test_a_writable_shared_mapping_moved_with_dontunmap() { same_as_plain dontunmap; }
test_part_of_a_writable_shared_mapping_moved_away() { same_as_plain partremap; }
test_a_truncating_openat_with_a_directory_descriptor() { same_as_plain openat-dirfd; deferred; }
test_a_truncating_open_of_the_sources_hard_link() { same_as_plain hardlink; deferred; }

test_closing_a_filter_childs_input_does_not_wait_for_it() {
	same_as_plain filter
	assert_grep '^filter: got 524288 back; close of its input fast$' shim.out
}

test_closing_our_own_pipe_before_reading_it_back_does_not_wait() {
	same_as_plain selfpipe
	assert_grep '^close of the write end: fast' shim.out
}

test_a_pipe_whose_reader_is_gone_is_not_waited_for() {
	same_as_plain epipe
	assert_grep '^epipe after EPIPE: fast' shim.out
}

test_one_change_waits_once_however_many_readers_hold_the_pages() {
	same_as_plain multi
	assert_grep '^multi: the truncating open waited at most once$' shim.out
}

run_tests
