#!/usr/bin/env bash
# send(2), sendto(2) and sendmsg(2) work on sockets only: with a pipe or a
# regular file as destination they fail with ENOTSOCK before reading the
# buffer - also when the buffer holds bytes the library deferred (a
# phantom) or a file mapping. The program here then falls back to write()
# or not (NOFALLBACK); stdout has every call's result.
. "$(dirname "$0")/lib.sh"

SN=$PROG/send_notsock

same_as_plain() {
	local rc_plain rc_shim
	"$SN" "$@" > plain.out 2>&1; rc_plain=$?
	env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" "$SN" "$@" > shim.out 2>&1; rc_shim=$?
	assert_eq "$rc_shim" "$rc_plain" "exit status"
	diff plain.out shim.out >&2 || fail "output differs"
}

for d in pipe file; do
	for c in send sendto sendmsg; do
		eval "test_${c}_with_flags_0_of_a_deferred_buffer_on_a_${d}_fails_with_enotsock() {
			NOFALLBACK=1 same_as_plain $d phantom $c
			[ \"\$(jget stats.json \"j['counters']['deferred_reads']\")\" -gt 0 ] || fail 'nothing was deferred'
		}"
	done
done

run_tests
