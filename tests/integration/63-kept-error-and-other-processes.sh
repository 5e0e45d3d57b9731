#!/usr/bin/env bash
# A socket error a served write took away and kept for the next send
# (shim/fdtab.c "Socket errors a served write took away") is one error,
# reported once, by the process that kept it - whatever another process
# sharing the socket does (tests/prog/keptatk.c).
#  - A forked child inherited the kept error: the parent's send and the
#    child's both failed with ECONNRESET, where plainly the first send takes
#    the socket's error and the second gets EPIPE (and SIGPIPE).
#  - A vfork child runs the hooks on its parent's memory: its close (or
#    closefrom) of the socket before exec dropped the parent's kept error,
#    and the parent's next send got EPIPE and SIGPIPE where plainly
#    ECONNRESET.
# All three fail on 51412cd and on 78c52a4 (which kept no error) every run.
. "$(dirname "$0")/lib.sh"

KA=$PROG/keptatk

both_wrote_short() { grep -q '^short write' plain.out && grep -q '^short write' shim.out; }

# same_as_plain SCENARIO: plain and preloaded stdout and status must
# match, in a pair of runs where both writers met a short write (the
# reset cut a write: its error left pending). A run whose reset came
# between two writes (the write fails outright) is run again, up to 5
# times.
same_as_plain() {
	paired_runs 5 "a short write" both_wrote_short "$KA" "$@"
	assert_eq "$rc_shim" "$rc_plain" "exit status (plain: $(cat plain.err))"
	diff plain.out shim.out >&2 || fail "output of '$*' differs"
	[ "$(jget stats.json "j['counters']['forwarded_writes']")" -gt 0 ] || fail "no write was served"
}

test_a_kept_error_is_not_reported_again_by_a_forked_child() {
	same_as_plain fork-parent-first
	assert_grep "^child's write: EPIPE$" shim.out
}

test_a_vfork_childs_close_leaves_the_parents_kept_error() {
	same_as_plain vfork-close
	assert_grep "^parent's write after the child closed: ECONNRESET$" shim.out
}

test_a_vfork_childs_closefrom_leaves_the_parents_kept_error() {
	same_as_plain vfork-closefrom
	assert_grep "^parent's write after the child closed: ECONNRESET$" shim.out
}

run_tests
