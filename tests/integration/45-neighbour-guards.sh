#!/usr/bin/env bash
# A buffer right above guarded pages, driven by build/prog/neighbours:
# the library refuses a buffer whose mapping starts just above a small
# PROT_NONE mapping that is not one of its phantoms (a thread stack's
# guard: defer.c private_anon), and must never take another loop's
# phantom - present, being replaced, or just opened - for such a guard.
# Runs plain and preloaded (arming at the first bounce of 4K or more;
# both loops copy file to file); the same stdout, status and files, and
# the probes ("probe B it N guarded=G", from /proc/self/maps) show what
# the library did with the buffer. Part of the sanitizer stage too
# (make check-sanitize runs every 45- script).
. "$(dirname "$0")/lib.sh"

NB=$PROG/neighbours
RUN_TIMEOUT=60

# nb_both SCENARIO: runs it in plain/ and, preloaded, in shim/ (stats in
# shim/s.json): out.txt, err.txt, rc and the files each run wrote.
nb_both() {
	local run
	for run in plain shim; do
		mkdir -p "$T/$run"
		(
			cd "$T/$run" || exit 1
			if [ $run = plain ]; then
				timeout "$RUN_TIMEOUT" "$NB" "$1" > out.txt 2> err.txt
			else
				timeout "$RUN_TIMEOUT" env LD_PRELOAD="$PRELOAD" NOBOUNCE_MODE=on \
					NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_MIN_CHUNK_FILE=4K \
					NOBOUNCE_STATS="$T/$run/s.json" "$NB" "$1" > out.txt 2> err.txt
			fi
			echo $? > rc
		) 2> /dev/null
	done
	cd "$T" || exit 1
	[ -s plain/out.txt ] || fail "the plain run printed nothing: $(head -3 plain/err.txt)"
	assert_eq "$(cat plain/rc)" 0 "plain exit status"
	assert_eq "$(cat shim/rc)" 0 "preloaded exit status"
	diff plain/out.txt shim/out.txt >&2 || fail "stdout differs ('<' plain, '>' preloaded)"
	assert_same plain/bd.bin shim/bd.bin
	assert_nogrep 'DIFFERS' shim/out.txt
	assert_nogrep 'guarded=1' plain/err.txt
}

# B's loop is armed at its first bounce; from its second read on, every
# read is a phantom in the same pages, whatever A's loop below it does
# (its guard is replaced at every read: 64 and 60 KiB by turns) and
# although the layout is read again before each of B's reads (B maps and
# unmaps a page per iteration). Before, the scan of /proc/self/maps and
# the look-up of the guard below in the phantom table were made at two
# moments: A's guard seen, then A's entry found gone (opened for the
# next read), and B's buffer was refused as if it sat on a thread stack -
# that read plain, the phantom filled, zero-copy lost for the iteration
# (and, in the sanitizer stage, where every thread's start and end calls
# sigaltstack, the eight-thread zero-copy test's rare failure).
test_buffer_above_another_loops_changing_guard_stays_guarded_at_every_read() {
	nb_both churn-below
	assert_grep '^A: [1-9][0-9]* passes$' shim/err.txt
	local all on
	all=$(grep -c '^probe B it ' shim/err.txt)
	on=$(grep -Ec '^probe B it [0-9]+ guarded=1$' shim/err.txt)
	assert_eq "$all" 1024 "probes of B"
	# it 0 is the read that armed the pair: plain
	assert_grep '^probe B it 0 guarded=0$' shim/err.txt
	[ "$on" -eq 1023 ] ||
		fail "B guarded at $on of 1023 probes after arming: $(grep -E 'guarded=0' shim/err.txt | sed -n '2,4p' | tr '\n' ' ')"
	# and A's loop, below it, was really replacing its guard meanwhile
	[ "$(report_counter deferred_reads shim/s.json)" -gt $((1023 + 1023)) ] ||
		fail "A's loop was not served as phantoms: deferred_reads=$(report_counter deferred_reads shim/s.json)"
}

# The refusal that the test above must not trigger by mistake still
# holds where it belongs: a buffer in another thread's stack, right above
# that stack's guard page, is never guarded.
test_buffer_lent_from_another_threads_stack_is_never_guarded() {
	nb_both other-stack
	assert_grep '^the lender.s frame kept 4096 of 4096 bytes$' shim/out.txt
	assert_grep '^probe B it ' shim/err.txt
	assert_nogrep 'guarded=1' shim/err.txt
	assert_eq "$(report_counter deferred_reads shim/s.json)" 0 "reads deferred into another thread's stack"
}

run_tests
