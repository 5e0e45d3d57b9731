#!/usr/bin/env bash
# NOT in the suite: reproducer of an open finding (hazard class 1, signal
# delivery); move it into tests/integration/ with the fix.
# Run (after make lib progs):
#   bash tests/findings/77-fwrite-restarted-after-a-handler.sh
#
# An fwrite on an unbuffered stream blocks on a full pipe; a SIGALRM
# handler (SA_RESTART) runs an armed 64 KiB loop through the buffer being
# written and leaves its last read deferred; the kernel restarts glibc's
# own write(2) - no hook sees it, nothing can make it again - and it fails
# with EFAULT: fwrite returns 0 with the stream's error set where plainly
# it writes 4096 bytes (tests/prog/trackmin.c fwrite, small-fwrite). Fails
# on 78c52a4 too. The exact fix is the one tests/findings/70-* names: no
# deferral while the thread runs a program handler. README Known limits.
. "$(dirname "$0")/../integration/lib.sh"

TM=$PROG/trackmin

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
	diff plain.out shim.out >&2 || fail "output differs"
}

test_an_fwrite_restarted_after_a_handler_deferred_into_its_buffer_sends_them() {
	same_as_plain fwrite '^write 4096 errno=- sum=[0-9]+$'
}

test_an_fwrite_restarted_after_a_4k_loop_and_a_handler_deferred_into_its_buffer_sends_them() {
	same_as_plain small-fwrite '^write 4096 errno=- sum=[0-9]+$'
}

run_tests
