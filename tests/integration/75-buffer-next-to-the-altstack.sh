#!/usr/bin/env bash
# A copy loop's buffer next to the thread's alternate signal stack
# (tests/prog/altnear.c). Signal frames go there from the top down and
# never past its bottom: only the stack itself is refused (haz_mem
# altstack-buffer), a buffer next to it is an ordinary one. A buffer up
# to 256 KiB over its top was refused: one a page over a sanitizer
# runtime's per-thread alternate stack stayed plain (the flake of
# 45-neighbour-guards' churn test under ASan and load: "A's loop was not
# served as phantoms").
. "$(dirname "$0")/lib.sh"

AN=$PROG/altnear

copy_next_to_altstack() { # above|below
	mkdata src.bin 4194304
	"$AN" "$1" src.bin plain.bin > plain.out 2> plain.err || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$AN" "$1" src.bin shim.bin > shim.out 2> shim.err || fail "preloaded run failed"
	diff plain.out shim.out >&2 || fail "output differs"
	assert_same src.bin plain.bin
	assert_same src.bin shim.bin
}

test_a_buffer_over_the_alternate_stacks_top_is_deferred() {
	copy_next_to_altstack above
	[ "$(jget stats.json 'j["counters"]["deferred_reads"]')" -gt 0 ] || fail "nothing was deferred"
}

test_a_buffer_under_the_alternate_stacks_bottom_is_deferred() {
	copy_next_to_altstack below
	[ "$(jget stats.json 'j["counters"]["deferred_reads"]')" -gt 0 ] || fail "nothing was deferred"
}

# A buffer that still holds a phantom made the alternate stack: the
# kernel pushes the next signal frame there without a fault anyone can
# handle. The phantom is filled first (it died of SIGSEGV before).
test_a_former_copy_buffer_made_the_alternate_stack_takes_a_signal() {
	mkdata src.bin 4194304
	"$AN" reuse src.bin plain.bin > plain.out 2> plain.err || fail "plain run failed"
	local rc=0
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$AN" reuse src.bin shim.bin > shim.out 2> shim.err || rc=$?
	assert_eq "$rc" 0 "exit status preloaded"
	assert_grep '^handled 1$' shim.out
	diff plain.out shim.out >&2 || fail "output differs"
	cmp plain.bin shim.bin || fail "copies differ"
	[ "$(jget stats.json 'j["counters"]["deferred_reads"]')" -gt 0 ] || fail "nothing was deferred"
}

run_tests
