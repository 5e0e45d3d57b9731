#!/usr/bin/env bash
# Attacks on two mechanisms: the detector's repeating-loop shortcut
# (detect.c "Repeating loops") and a deferred read holding its number
# (fdtab.c "A deferred read holds its number"). Each scenario runs plain
# and preloaded and must agree; the report must say what the general path
# would say.
. "$(dirname "$0")/lib.sh"

RX=$PROG/repeatx

# The source's pair is shared by the threads reading the source; a loop
# whose writes go where another thread's loop moved the pair must be
# counted for that destination. Before, the shortcut counted them through
# the slot of its earlier destination and, at arming, revalidated the new
# destination's number against that slot: the earlier destination was
# declared replaced ("stale"), its slot reset, and the arming undone.
test_a_loop_writing_to_another_threads_destination_of_its_source_sees_no_replaced_descriptor() {
	runs_as_plain "$RX" cross
	assert_same plain/d.bin shim/d.bin
	assert_same plain/x.bin shim/x.bin
	assert_eq "$(jget stats.json "j['counters']['stale']")" 0 "descriptors found replaced"
	[ "$(jget stats.json "j['counters']['deferred_reads']")" -gt 0 ] || fail "nothing was deferred"
}

run_tests
