#!/usr/bin/env bash
# The hooks' hot path (issue 15): with nothing armed, a small read or
# write costs a few instructions more than the call itself; beside a live
# phantom, the same small calls still take the full path (they would get
# EFAULT from a guarded page, or send the wrong bytes, if they did not).
# Instruction counts come from valgrind's callgrind: deterministic, not
# timings.
. "$(dirname "$0")/lib.sh"

HP=$PROG/hotpath
BARE=$NB_ROOT/build/testlib/libpassthru.so

# ir OUT [VAR=value...] -- CMD...: instructions of the run (callgrind),
# its stdout in OUT.
ir() {
	local out=$1 envs=()
	shift
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$PWD/cg.%p" \
		env "${envs[@]}" "$@" > "$out" 2> vg.txt || fail "valgrind run failed: $(tail -3 vg.txt)"
	sed -n 's/.*Collected : \([0-9]*\).*/\1/p' vg.txt | awk '{ s += $1 } END { print s }'
	rm -f cg.*
}

test_one_byte_copy_costs_at_most_40_instructions_per_call_over_plain() {
	head -c 4000 /dev/urandom > a.bin
	head -c 8000 /dev/urandom > b.bin
	local p1 p2 l1 l2 t1 t2
	p1=$(ir plain1.out -- "$HP" small a.bin pa.out)
	p2=$(ir plain2.out -- "$HP" small b.bin pb.out)
	l1=$(ir shim1.out NOBOUNCE_STATS="$PWD/s1.json" LD_PRELOAD="$LIB" -- "$HP" small a.bin sa.out)
	l2=$(ir shim2.out NOBOUNCE_STATS="$PWD/s2.json" LD_PRELOAD="$LIB" -- "$HP" small b.bin sb.out)
	t1=$(ir bare1.out LD_PRELOAD="$BARE" -- "$HP" small a.bin ta.out)
	t2=$(ir bare2.out LD_PRELOAD="$BARE" -- "$HP" small b.bin tb.out)
	# Same results, and the library was active in the measured runs.
	assert_same plain1.out shim1.out
	assert_same plain2.out shim2.out
	assert_same b.bin sb.out
	assert_grep '^reads 8001 writes 8000 errno-changed 0$' shim2.out
	assert_grep '"mode": "on"' s2.json
	# 4000 more bytes: 4000 more reads and 4000 more writes.
	local per bare
	per=$(( ((l2 - l1) - (p2 - p1)) / 8000 ))
	bare=$(( ((t2 - t1) - (p2 - p1)) / 8000 ))
	echo "    instructions per hooked call over plain: $per (a bare pass-through preload: $bare)"
	[ "$per" -le 40 ] || fail "$per instructions per hooked call over plain (at most 40)"
}

test_small_calls_beside_a_live_phantom_see_and_send_the_file_bytes() {
	mkdir plain shim
	(cd plain && "$HP" beside-phantom > out.txt 2> err.txt); local rc_plain=$?
	(cd shim && env LD_PRELOAD="$LIB" NOBOUNCE_STATS=s.json "$HP" beside-phantom > out.txt 2> err.txt)
	local rc_shim=$?
	assert_eq "$rc_shim" "$rc_plain" "exit status"
	diff plain/out.txt shim/out.txt >&2 || fail "output differs"
	assert_same plain/out.bin shim/out.bin
	assert_same plain/small.bin shim/small.bin
	# The small calls met a phantom: the buffer was guarded after the
	# last read, and reads were served as phantoms.
	assert_grep '^probe last-read guarded=1$' shim/err.txt
	[ "$(jget shim/s.json 'j["counters"]["deferred_reads"]')" -gt 0 ] || fail "no deferred read"
}

run_tests
