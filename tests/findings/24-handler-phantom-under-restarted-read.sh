#!/usr/bin/env bash
# NOT in the suite: reproducer of an open finding (hazard class 1, signal
# delivery); move it into tests/integration/ with the fix.
# Run (after make lib progs):
#   bash tests/findings/24-handler-phantom-under-restarted-read.sh
#
# A thread blocks in read(pipe, buf) (or is between a hook's phantom
# check and its real call - read_full's EXPOSE_READ, the settled loop's
# epoch check, write_full's may_forward). A signal handler runs on that
# thread and makes a phantom of the same buffer: its own file -> file
# copy loop through buf, armed, whose last read is deferred (the pages
# stay PROT_NONE in the steady state). The handler returns; the kernel
# restarts the read (SA_RESTART) with no hook in between, and its copy
# into the guarded pages fails: read returns -1 EFAULT, where plainly it
# returns 4096. Deterministic with the restart; without SA_RESTART or a
# blocking call the same happens when the signal lands in the few
# instructions between a hook's check and the syscall (seen once in about
# 3000 handler runs with a 500 us timer on a settled 4 KiB loop).
# Not the settled loop's doing: the full path, e5ea549^ and e5ea549 all
# fail it alike.
. "$(dirname "$0")/../integration/lib.sh"

test_a_read_restarted_after_a_handler_deferred_into_its_buffer_gets_the_bytes() {
	mkdata src.bin 524288
	"$PROG/sigrestart" src.bin dst.plain > plain.out 2> plain.err || fail "plain run failed"
	env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/stats.json" \
		"$PROG/sigrestart" src.bin dst.shim > shim.out 2> shim.err || fail "preloaded run failed"
	assert_grep '^read 4096 errno=- first=M$' plain.out
	assert_eq "$(jloop stats.json file file arms)" 1
	cmp dst.plain dst.shim || fail "copies differ"
	diff plain.out shim.out >&2 || fail "output differs"
}

run_tests
