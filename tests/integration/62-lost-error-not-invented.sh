#!/usr/bin/env bash
# A served write keeps a socket error for the program's next send only where
# the kernel's send would have reported one (shim/xfer.c reset_behind,
# is_tcp). A UNIX stream socket's send never reports the pending error (it
# says EPIPE with SIGPIPE once the peer closed); a TCP reset after the
# peer's FIN leaves EPIPE, also with SIGPIPE. Keeping ECONNRESET for these
# turned a program that plainly dies of SIGPIPE into one that exits 0.
. "$(dirname "$0")/lib.sh"

LA=$PROG/lostatk

# same_as_plain SCENARIO: plain and preloaded stdout and status must match.
same_as_plain() {
	local rc=0 prc=0
	timeout 60 "$LA" "$@" 2> plain.err | grep -v '^recv at the end' > plain.out || true
	prc=${PIPESTATUS[0]}
	rm -f "$T"/stats.*.json
	env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.%p.json" timeout 60 "$LA" "$@" \
		2> shim.err | grep -v '^recv at the end' > shim.out || true
	rc=${PIPESTATUS[0]}
	assert_eq "$rc" "$prc" "exit status (plain: $(cat plain.err))"
	assert_same plain.out shim.out
}

test_a_unix_peer_gone_gives_epipe_and_sigpipe_as_plain() {
	same_as_plain unix-dfl
	same_as_plain unix-ign
	# the writer's report (the peer wrote nothing): writes were served
	cat "$T"/stats.*.json | grep -Eq '"forwarded_writes": *[1-9]' || fail "no write was served"
}

test_a_reset_after_the_peers_fin_gives_sigpipe_as_plain() {
	local i
	for i in 1 2 3 4 5 6; do
		same_as_plain finrst-dfl
	done
}

run_tests
