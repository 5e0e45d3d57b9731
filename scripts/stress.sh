#!/usr/bin/env bash
# stress.sh - a time-bounded soak: the zero-copy scenarios of make check,
# over and over with new seeds, each run twice (plain, then preloaded
# with the library armed at once), and every run's stdout, exit status
# and output files compared between the two.
#
#   scripts/stress.sh [SECONDS]        (default 600; make stress)
#
# The total of reads the library served as phantoms (its exit stats) shows
# the soak exercised the zero-copy path, not only the plain one.
# The scenarios (tests/prog/zc.c) print only what the program itself
# observed: counts, errors, whether every byte it looked at was right.
# A run whose two sides differ in any of that, or that prints WRONG,
# SHORT or a nonzero wrong count, or whose plain side failed, is a
# divergence: its directory is kept
# under $TMPDIR and named at the end, and the exit status is 1.
#
# Rotation: seeded random operation sequences (a new seed every turn,
# programs that look at their buffers and programs that never do, TCP and
# pipe sources), the gauntlet (every source and destination kind, blocking
# and not, EINTR storms), six threads with their own streams (also under a
# storm of signals), descriptors taken over by another thread, buffers written to
# a file and looked at afterwards, a write cut by RLIMIT_FSIZE, the
# non-blocking epoll relay, eight threads copying files.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_MAX=${1:-${STRESS_SECONDS:-600}}
case $SECONDS_MAX in
'' | *[!0-9]*)
	echo "stress.sh: SECONDS must be a whole number of seconds, not '$SECONDS_MAX'" >&2
	exit 2
	;;
esac
ZC=$ROOT/build/prog/zc
LIB=$ROOT/build/libnobounce.so
[ -x "$ZC" ] && [ -e "$LIB" ] || make -s all progs || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nb-stress.XXXXXX")
RUN_TIMEOUT=120

runs=0 divergences=0 served=0 kept=()

# one SCENARIO [ARG]: plain then preloaded, in their own directories.
# A scenario named PROG:NAME runs tests/prog/PROG instead of zc.
one() {
	local sc=$1 arg=${2:-} d=$WORK/run.$runs side prog=$ZC
	case $sc in *:*) prog=$ROOT/build/prog/${sc%%:*}; sc=${sc#*:} ;; esac
	runs=$((runs + 1))
	for side in plain shim; do
		mkdir -p "$d/$side"
		(
			cd "$d/$side" || exit 1
			if [ $side = plain ]; then
				timeout $RUN_TIMEOUT "$prog" "$sc" $arg > out.txt 2> err.txt
			else
				timeout $RUN_TIMEOUT env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on \
					NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=4K \
					NOBOUNCE_MIN_CHUNK_STREAM=4K NOBOUNCE_MIN_CHUNK_PIPE=4K \
					NOBOUNCE_STATS="$d/shim/s.%p.json" "$prog" "$sc" $arg > out.txt 2> err.txt
			fi
			echo $? > rc
		) 2> /dev/null
	done
	local why="" n
	# a plain run that failed says nothing about the library
	[ "$(cat "$d/plain/rc")" = 0 ] && [ -s "$d/plain/out.txt" ] ||
		why="the plain run failed (status $(cat "$d/plain/rc"))"
	for n in $(cat "$d"/shim/s.*.json 2> /dev/null | grep -o '"deferred_reads": [0-9]*' | grep -o '[0-9]*$'); do
		served=$((served + n))
	done
	cmp -s "$d/plain/rc" "$d/shim/rc" || why="exit status $(cat "$d/plain/rc") vs $(cat "$d/shim/rc")"
	cmp -s "$d/plain/out.txt" "$d/shim/out.txt" || why="${why:+$why; }stdout differs"
	grep -Eq 'WRONG|SHORT|DIFFERS|wrong [1-9]|!= the last' "$d/shim/out.txt" && why="${why:+$why; }wrong bytes seen"
	local f
	for f in "$d"/plain/*.bin; do
		[ -e "$f" ] || continue
		cmp -s "$f" "$d/shim/${f##*/}" || why="${why:+$why; }${f##*/} differs"
	done
	if [ -n "$why" ]; then
		divergences=$((divergences + 1))
		kept+=("$d ($sc: $why)")
		echo "DIVERGENCE $sc: $why (kept in $d)"
	else
		rm -rf "$d"
	fi
}

echo "stress: ${SECONDS_MAX}s, work in $WORK"
start=$(date +%s)
seed=$((1000 + RANDOM))
turn=0
while [ $(($(date +%s) - start)) -lt "$SECONDS_MAX" ]; do
	case $((turn % 10)) in
	0 | 4) one "random-$((seed % 100))" ;;   # looks at its buffers
	1 | 5) one "random-$((100 + seed))" ;;   # never looks
	2 | 8 | 9) one "gauntlet-$seed" ;;       # every kind, seed picks which
	3) one tcp-src-file-after-write ;;
	6) case $((turn / 10 % 4)) in
		0) one "tcp-src-threads$( ((turn / 40 % 2)) && echo -connections)" ;;
		1) one tcp-src-file-fsize ;;
		2) one tcp-src-threads-signals ;;
		3) one "tcp-src-$( ((turn / 40 % 2)) && echo src || echo dst)-taken-over" ;;
		esac ;;
	7) case $((turn / 10 % 4)) in
		0) one tcp-epoll-relay ;;
		1) one threads8 ;;
		2) one haz_sig:fork-mid-op 200 ;;   # forks while threads copy
		3) one "haz_sig:handler-$( ((turn / 40 % 2)) && echo reads || echo writes)" 2 ;;
		esac ;;
	esac
	seed=$((seed + 1))
	turn=$((turn + 1))
done
echo "stress: $runs scenario runs (each plain and preloaded) in $(($(date +%s) - start))s," \
	"$served reads served as phantoms, $divergences divergences"
for k in "${kept[@]+"${kept[@]}"}"; do
	echo "  kept: $k"
done
[ "$divergences" -eq 0 ] && rmdir "$WORK" 2> /dev/null
[ "$divergences" -eq 0 ]
