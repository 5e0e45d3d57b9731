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

same_as_plain() {
	local rc prc try
	for try in 1 2 3 4 5; do
		rc=0 prc=0
		timeout 60 "$KA" "$@" > plain.out 2> plain.err || prc=$?
		rm -f "$T/stats.json"
		env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" timeout 60 "$KA" "$@" \
			> shim.out 2> shim.err || rc=$?
		grep -q '^short write' plain.out && grep -q '^short write' shim.out && break
	done
	grep -q '^short write' plain.out && grep -q '^short write' shim.out ||
		fail "no pair of runs met a short write in 5 tries"
	assert_eq "$rc" "$prc" "exit status (plain: $(cat plain.err))"
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
