#!/usr/bin/env bash
# A vfork child runs the library's hooks on its parent's memory while it
# closes numbers in its own descriptor table. Its close or closefrom must
# leave the parent's state alone: before, the child's close of a copy
# loop's destination let go of the library's kept reopen of that file in
# the parent's memory while the parent still had it open - one leaked
# descriptor per file (tests/prog/vforkclose.c: 40 files, 7 -> 52 open).
. "$(dirname "$0")/lib.sh"

PROG="$NB_ROOT/build/prog/vforkclose"

# same_open_count SCENARIO [VAR=VALUE...]: the preloaded run copies the
# same bytes as the plain one and holds as many descriptors after the
# 40th file as after the 5th.
same_open_count() {
	local sc=$1
	shift
	"$PROG" "$sc" "$T" > plain.out || fail "plain run of $sc failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" "$@" "$PROG" "$sc" "$T" > shim.out ||
		fail "preloaded run of $sc failed"
	assert_eq "$(grep sum shim.out)" "$(grep sum plain.out)" "checksum of the copied bytes"
	local early late
	early=$(sed -n 's/^open after 5 files: //p' shim.out)
	late=$(sed -n 's/^open after 40 files: //p' shim.out)
	assert_eq "$late" "$early" "descriptors open after 40 files vs after 5"
	[ "$(jget stats.json "j['counters']['forwarded_writes']")" -gt 0 ] || fail "nothing was served"
}

test_a_vfork_childs_close_of_the_destination_leaks_nothing_in_the_parent() {
	same_open_count pipe NOBOUNCE_MIN_CHUNK_PIPE=16K NOBOUNCE_MIN_CHUNK_STREAM=16K
}

test_a_vfork_childs_close_of_the_source_leaks_nothing_in_the_parent() {
	same_open_count close
}

test_a_vfork_childs_closefrom_leaks_nothing_in_the_parent() {
	same_open_count closefrom
}

run_tests
