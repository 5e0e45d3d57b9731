#!/usr/bin/env bash
# NOT in the suite: reproducer of an open finding; move it into
# tests/integration/ with the fix. Run (after make progs):
#   bash tests/findings/64-kept-error-taken-by-another-process.sh
# Fails on 51412cd and after (and on 78c52a4), every run.
#
# A socket error a served write took away is kept in the memory of the
# process that made the write (shim/fdtab.c "Socket errors a served write
# took away"). Plainly the error stays on the socket, and the first send
# by any process sharing it - a forked child, a program the child execs -
# takes it (ECONNRESET); the next gets EPIPE and SIGPIPE. Preloaded the
# keeping process reports it whenever it sends, and the other process
# finds the connection closed: when the child sends first, the child gets
# EPIPE (SIGPIPE) and the parent ECONNRESET - a parent that plainly dies of
# SIGPIPE (status 141) exits 0 (fork-dfl). See tests/prog/keptatk.c.
. "$(dirname "$0")/../integration/lib.sh"

KA=$PROG/keptatk

both_wrote_short() { grep -q '^short write' plain.out && grep -q '^short write' shim.out; }

same_as_plain() {
	paired_runs 5 "a short write" both_wrote_short "$KA" "$@"
	assert_eq "$rc_shim" "$rc_plain" "exit status (plain: $(cat plain.err))"
	diff plain.out shim.out >&2 || fail "output of '$*' differs"
}

test_a_forked_child_that_sends_first_takes_the_error() {
	same_as_plain fork-child-first
}

test_a_parent_that_sends_after_its_child_took_the_error_dies_of_sigpipe() {
	same_as_plain fork-dfl
}

test_a_program_the_child_execs_takes_the_error() {
	same_as_plain exec
}

run_tests
