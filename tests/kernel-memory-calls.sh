#!/usr/bin/env bash
# kernel-memory-calls.sh - keeps tests/kernel-memory-calls.txt (every
# function glibc exports, classified for hazard class 5) in step with the
# libc installed here and with the library.
#
#   kernel-memory-calls.sh exports      public functions of the installed
#                                       libc, one per line (text, weak and
#                                       IFUNC symbols; GLIBC_PRIVATE ones
#                                       are not for programs)
#   kernel-memory-calls.sh check        fails, naming them, when a function
#                                       the libc exports is not classified
#   kernel-memory-calls.sh hooked LIB   fails when a function classified
#                                       exposed or served is not exported
#                                       by LIB (the hook went missing)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
list=$here/kernel-memory-calls.txt

libc_path() {
	local p
	p=$(ldd /bin/sh 2>/dev/null | awk '$1 ~ /^libc\.so/ { print $3 }')
	[ -n "$p" ] && [ -f "$p" ] || p=$(cc -print-file-name=libc.so.6)
	[ -f "$p" ] || { echo "kernel-memory-calls: cannot find libc.so.6" >&2; exit 2; }
	printf '%s\n' "$p"
}

exports() {
	nm -D --defined-only "$(libc_path)" |
		awk '$2 ~ /^[TWi]$/ && $3 !~ /@+GLIBC_PRIVATE$/ { sub(/@.*/, "", $3); print $3 }' |
		LC_ALL=C sort -u
}

classified() { grep -v '^#' "$list" | cut -f1 | LC_ALL=C sort -u; }

case "${1:-}" in
exports) exports ;;
check)
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	exports > "$tmp/exports"
	classified > "$tmp/listed"
	bad=$(grep -v '^#' "$list" | awk -F'\t' 'NF != 4 || $2 !~ /^(exposed|served|user|none|limit)$/ { print NR ": " $0 }')
	[ -z "$bad" ] || { printf 'malformed lines in %s:\n%s\n' "$list" "$bad" >&2; exit 1; }
	missing=$(LC_ALL=C comm -23 "$tmp/exports" "$tmp/listed")
	gone=$(LC_ALL=C comm -13 "$tmp/exports" "$tmp/listed" | wc -l)
	echo "$(wc -l < "$tmp/exports") functions exported by $(libc_path), $(wc -l < "$tmp/listed") classified ($gone not in this libc)"
	if [ -n "$missing" ]; then
		echo "not classified in tests/kernel-memory-calls.txt (does it hand memory to the kernel?):" >&2
		printf '  %s\n' $missing >&2
		exit 1
	fi
	;;
hooked)
	[ $# -eq 2 ] || { echo "usage: $0 hooked LIB" >&2; exit 2; }
	missing=$(LC_ALL=C comm -23 \
		<(grep -v '^#' "$list" | awk -F'\t' '$2 == "exposed" || $2 == "served" { print $1 }' | LC_ALL=C sort -u) \
		<(nm -D --defined-only "$2" | awk '$2 ~ /^[TWi]$/ { sub(/@.*/, "", $3); print $3 }' | LC_ALL=C sort -u))
	if [ -n "$missing" ]; then
		echo "classified exposed or served but not exported by $2:" >&2
		printf '  %s\n' $missing >&2
		exit 1
	fi
	echo "every exposed or served function is interposed by $2"
	;;
*) echo "usage: $0 exports|check|hooked LIB" >&2; exit 2 ;;
esac
