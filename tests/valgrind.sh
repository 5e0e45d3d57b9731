#!/usr/bin/env bash
# valgrind.sh - memcheck over the library (make check-valgrind).
#
# 1. The unit tests of the mechanisms under memcheck, leaks included.
#    test_phantom is left out: its fault-and-fill cases write the guarded
#    pages through /proc/self/mem, behind memcheck's back, and two of them
#    fail under it for that reason alone.
# 2. Test programs with the library preloaded, differentially: each runs
#    under memcheck plain and preloaded (mode on), and the preloaded run
#    must print the same output and report no more errors than the plain
#    one - several programs make invalid calls on purpose (passlog's
#    EFAULT cases), which memcheck counts in both runs. No error may name
#    the library. Under memcheck the library keeps the zero-copy path off
#    (valgrind's heap is not memory it will guard): the hooks, the
#    detector, the pool bookkeeping and the exit report are what run.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite --child-silent-after-fork=yes)
command -v valgrind > /dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
fails=0

for t in test_config test_detect test_fdtab test_pair test_xfer; do
	if "${VG[@]}" --error-exitcode=99 "build/unit/$t" > /dev/null 2> "/tmp/nb-vg.$$.err"; then
		echo "  ok   memcheck: unit $t"
	else
		echo "  FAIL memcheck: unit $t"
		sed 's/^/      | /' "/tmp/nb-vg.$$.err" | head -20
		fails=$((fails + 1))
	fi
done

# memcheck_errors LOG: the errors memcheck reported (one header line each).
memcheck_errors() {
	grep -Ec '^==[0-9]+== (Invalid |Conditional jump|Syscall param|Use of uninitialised|Mismatched|Source and destination overlap|.* definitely lost)' "$1"
}

# differential NAME PROGRAM ARGS...
differential() {
	local name=$1 w side
	shift
	w=$(mktemp -d /tmp/nb-vg.XXXXXX)
	for side in plain shim; do
		(
			cd "$w" || exit 1
			if [ $side = plain ]; then
				timeout 300 "${VG[@]}" "$@" > $side.out 2> $side.err
			else
				timeout 300 env LD_PRELOAD="$ROOT/build/libnobounce.so" NOBOUNCE_MODE=on \
					NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_MIN_CHUNK_STREAM=4K \
					"${VG[@]}" "$@" > $side.out 2> $side.err
			fi
			echo $? > $side.rc
		)
	done
	local why=""
	cmp -s "$w/plain.out" "$w/shim.out" || why="output differs"
	cmp -s "$w/plain.rc" "$w/shim.rc" || why="${why:+$why; }exit status differs"
	grep -q 'libnobounce' "$w/shim.err" && why="${why:+$why; }an error names the library"
	local pe se
	pe=$(memcheck_errors "$w/plain.err")
	se=$(memcheck_errors "$w/shim.err")
	[ "$se" -le "$pe" ] || why="${why:+$why; }$se memcheck errors preloaded, $pe plain"
	if [ -z "$why" ]; then
		echo "  ok   memcheck: $name (errors: $pe plain, $se preloaded; none in the library)"
		rm -rf "$w"
	else
		echo "  FAIL memcheck: $name: $why (kept in $w)"
		grep -B2 -A12 'libnobounce' "$w/shim.err" | head -30 | sed 's/^/      | /'
		fails=$((fails + 1))
	fi
}

P=$ROOT/build/prog
differential passlog "$P/passlog"
differential "zc tcp-src-file" "$P/zc" tcp-src-file
differential "zc gauntlet-69 (tcp -> tcp)" "$P/zc" gauntlet-69
differential "zc gauntlet-76 (file -> pipe)" "$P/zc" gauntlet-76
differential "zc stdio-fwrite" "$P/zc" stdio-fwrite
differential "threads 4 x 16" "$P/threads" 4 16

[ "$fails" -eq 0 ] && echo "memcheck: clean" || echo "memcheck: $fails failed"
[ "$fails" -eq 0 ]
