#!/usr/bin/env bash
# Runs every tests/integration/*.sh script. Each one is a bash file of
# test functions (see lib.sh); this prints one closing line over them all.
set -u
cd "$(dirname "$0")/.." || exit 1
export NB_ROOT=$PWD
export NB_RESULTS=$(mktemp -d /tmp/nb-it.XXXXXX)
total_pass=0 total_fail=0
only=${NB_ONLY_TEST:-}
for f in tests/integration/[0-9]*.sh; do
	[ -n "$only" ] && [[ $f != *"$only"* ]] && continue
	echo "== $f"
	bash "$f"
	p=$(cat "$NB_RESULTS/pass" 2>/dev/null || echo 0)
	q=$(cat "$NB_RESULTS/fail" 2>/dev/null || echo 0)
	rm -f "$NB_RESULTS/pass" "$NB_RESULTS/fail"
	total_pass=$((total_pass + p)); total_fail=$((total_fail + q))
done
rm -rf "$NB_RESULTS"
echo "integration: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]
