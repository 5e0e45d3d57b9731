#!/usr/bin/env bash
# differential.sh - runs any command twice, plain and with the library
# preloaded, each in a fresh directory of its own, and compares what the
# program itself made observable: its exit status (or the signal it died
# of), its standard output, and every file it left in its directory.
#
#   tests/differential.sh [options] -- COMMAND [ARGS...]
#
#   --env NAME=VALUE   a setting for the preloaded run (repeatable; the
#                      default is NOBOUNCE_MODE=on with the pair armed at
#                      the first bounce and every minimum at 4K, so that
#                      the zero-copy paths engage wherever they can)
#   --stdout-only RE   compare only the parts of stdout that match the
#                      extended regular expression RE (grep -oE), for
#                      programs that also print timings
#   --setup CMD        run CMD (bash) once in a directory whose files
#                      both runs then start with, e.g. to create inputs
#   --keep             keep both directories even when they agree
#
# The test programs log every return value and errno they observe
# (passlog, xferlog, segv, zc, bounce's copies): identical logs mean
# identical behaviour. Prints one line: "same: ..." or "DIFFERENT: ..."
# with the directories kept for a look; exit status 0 or 1 (2: bad usage).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=${NB_TEST_PRELOAD:-$ROOT/build/libnobounce.so}
envs=() only="" setup="" keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--env) envs+=("$2"); shift 2 ;;
	--stdout-only) only=$2; shift 2 ;;
	--setup) setup=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--) shift; break ;;
	*) echo "differential.sh: unknown option '$1' (see the top of the script)" >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "differential.sh: no command after --" >&2; exit 2; }
[ ${#envs[@]} -gt 0 ] || envs=(NOBOUNCE_MODE=on NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=4K
	NOBOUNCE_MIN_CHUNK_FILE=4K NOBOUNCE_MIN_CHUNK_STREAM=4K NOBOUNCE_MIN_CHUNK_PIPE=4K)

W=$(mktemp -d "${TMPDIR:-/tmp}/nb-diff.XXXXXX")
mkdir "$W/input"
if [ -n "$setup" ] && ! (cd "$W/input" && bash -c "$setup"); then
	echo "differential.sh: the setup failed: $setup" >&2
	exit 2
fi
for side in plain preloaded; do
	cp -a "$W/input" "$W/$side"
	(
		cd "$W/$side" || exit 1
		if [ $side = plain ]; then
			timeout 300 "$@" > ../$side.stdout 2> ../$side.stderr
		else
			timeout 300 env "${envs[@]}" LD_PRELOAD="$LIB" "$@" > ../$side.stdout 2> ../$side.stderr
		fi
		echo $? > ../$side.status
	) 2> /dev/null # the shell's notice of a death by signal
done

why=()
cmp -s "$W/plain.status" "$W/preloaded.status" ||
	why+=("exit status $(cat "$W/plain.status") plain, $(cat "$W/preloaded.status") preloaded")
if [ -n "$only" ]; then
	grep -oE -- "$only" "$W/plain.stdout" > "$W/plain.compared"
	grep -oE -- "$only" "$W/preloaded.stdout" > "$W/preloaded.compared"
else
	cp "$W/plain.stdout" "$W/plain.compared"
	cp "$W/preloaded.stdout" "$W/preloaded.compared"
fi
cmp -s "$W/plain.compared" "$W/preloaded.compared" || why+=("stdout differs")
files=0
while IFS= read -r f; do
	files=$((files + 1))
	[ -f "$W/preloaded/$f" ] || { why+=("$f missing preloaded"); continue; }
	cmp -s "$W/plain/$f" "$W/preloaded/$f" || why+=("$f differs")
done < <(cd "$W/plain" && find . -type f | sort)
extra=$(cd "$W/preloaded" && find . -type f | sort | while IFS= read -r f; do
	[ -f "$W/plain/$f" ] || echo "$f"; done)
[ -z "$extra" ] || why+=("files only preloaded: $(echo $extra)")

if [ ${#why[@]} -eq 0 ]; then
	echo "same: status $(cat "$W/plain.status"), $(wc -l < "$W/plain.compared") lines of" \
		"output, $files files: $*"
	[ $keep = 1 ] || rm -rf "$W"
	exit 0
fi
echo "DIFFERENT: $(IFS=';'; echo "${why[*]}") (both runs kept in $W): $*"
diff "$W/plain.compared" "$W/preloaded.compared" | head -10 | sed 's/^/    | /'
exit 1
