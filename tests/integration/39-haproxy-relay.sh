#!/usr/bin/env bash
# haproxy 2.6 as a relay with the minimum lowered to 8K
# (NOBOUNCE_MIN_CHUNK=8K NOBOUNCE_MIN_CHUNK_STREAM=8K), so that its reads
# of at most 16320 bytes are served: recvfrom from the origin, then
# sendto(MSG_DONTWAIT|MSG_NOSIGNAL[|MSG_MORE]) to the client. In HTTP
# mode every body chunk but the last is sent with MSG_MORE; TCP mode
# sends without it. An origin (python3 http.server) on 127.0.0.1 serves a
# 32 MiB file; curl fetches it through haproxy 100 times, four at a time.
# Every download must be whole and identical (curl's exit status, size,
# bytes) - as in the plain run of the same relay - and the preloaded
# haproxy must really have moved most of the bytes by the kernel path
# (stats: forwarded_bytes, at least half of everything relayed).
# Also rinetd (16K relay reads into an unaligned buffer): with the
# minimum at 16K its 12K of whole pages are too small to arm.
. "$(dirname "$0")/lib.sh"

SIZE=$((32 * 1024 * 1024))
TEST_TIMEOUT=240

# serve_long NAME CMD: serve, with room for 100 downloads on a busy machine.
serve_long() {
	local name=$1; shift
	timeout 200 "$@" &
	echo $! > "$T/$name.pid"
}

# relay MODE PRELOAD(yes|no) DOWNLOADS: starts origin and haproxy, runs
# the downloads four at a time, checks each, stops both by recorded PID.
relay() {
	local mode=$1 pre=$2 n=$3 p1 p2 i j hp
	p1=$(port); p2=$(port)
	[ -f in.bin ] || mkdata in.bin "$SIZE"
	mkdir -p www && ln -sf ../in.bin www/in.bin
	serve_long origin "$PY" -m http.server --bind 127.0.0.1 --directory www "$p1" > origin.log 2>&1
	wait_listen "$p1"
	haproxy_cfg "$mode" "$p2" "$p1"
	if [ "$pre" = yes ]; then
		serve_long hap env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/hap-%p.json" \
			NOBOUNCE_MIN_CHUNK=8K NOBOUNCE_MIN_CHUNK_STREAM=8K haproxy -q -db -f haproxy.cfg
	else
		serve_long hap haproxy -q -db -f haproxy.cfg
	fi
	wait_listen "$p2"
	local bad=0
	for ((i = 0; i < n; i += 4)); do
		for j in 0 1 2 3; do
			curl -s --max-time 40 -o "out$j.bin" "http://127.0.0.1:$p2/in.bin" &
			echo $! > "$T/dl$j.pid"
		done
		for j in 0 1 2 3; do
			finish "dl$j"; local rc=$?
			if [ "$rc" != 0 ] || ! cmp -s in.bin "out$j.bin"; then
				echo "    download $((i + j)): curl exit $rc, $(stat -c %s "out$j.bin" 2>/dev/null) bytes" \
					"$(cmp in.bin "out$j.bin" 2>&1 | head -1)" >&2
				bad=$((bad + 1))
			fi
			rm -f "out$j.bin"
		done
	done
	# A soft stop (SIGUSR1) lets haproxy exit normally, which writes the
	# report; it is the child of the timeout whose PID serve recorded.
	hp=$(pgrep -P "$(cat "$T/hap.pid")")
	[ -n "$hp" ] && kill -USR1 "$hp"
	finish hap
	stop origin
	assert_eq "$bad" 0 "wrong downloads of $n ($mode mode, preload $pre)"
}

# kernel_share: bytes the preloaded haproxy moved by the kernel path, in
# percent of the bytes it relayed to the clients; prints the counters.
kernel_share() {
	local st
	st=$(grep -l '"program": "haproxy"' "$T"/hap-*.json | head -1)
	[ -n "$st" ] || fail "no stats report from haproxy"
	jget "$st" '{k: j["counters"][k] for k in ("deferred_reads", "forwarded_writes", "forwarded_bytes", "arms", "disarms")}' >&2
	jget "$st" "j['counters']['forwarded_bytes'] * 100 // ($1 * $SIZE)"
}

test_haproxy_http_mode_relays_100_downloads_exactly_and_by_the_kernel_path() {
	command -v haproxy > /dev/null || fail "haproxy is not installed (scripts/deps.sh)"
	relay http no 4
	relay http yes 100
	local pct
	pct=$(kernel_share 100)
	[ "$pct" -ge 50 ] || fail "only $pct% of the relayed bytes went by the kernel path"
}

test_haproxy_tcp_mode_relays_100_downloads_exactly_and_by_the_kernel_path() {
	command -v haproxy > /dev/null || fail "haproxy is not installed (scripts/deps.sh)"
	relay tcp no 4
	relay tcp yes 100
	local pct
	pct=$(kernel_share 100)
	[ "$pct" -ge 50 ] || fail "only $pct% of the relayed bytes went by the kernel path"
}

# rinetd relays with recv/send of 16K into a buffer that is not page
# aligned: a deferred read serves its 3 whole pages (12K) and pays a
# dozen more system calls per chunk than the plain loop. With the
# minimum at 16K that is too small: it must not arm, the bytes are the
# plain run's, and both reports say why (JSON counter small_served, the
# observe report's "never armed" line).
rinetd_relay() { # OUT PRELOAD-ENV...
	local out=$1 p1 p2; shift
	p1=$(port); p2=$(port)
	[ -f in.bin ] || mkdata in.bin $((8 * 1024 * 1024))
	mkdir -p www && ln -sf ../in.bin www/in.bin
	serve_long origin "$PY" -m http.server --bind 127.0.0.1 --directory www "$p1" > origin.log 2>&1
	wait_listen "$p1"
	echo "127.0.0.1 $p2 127.0.0.1 $p1" > rinetd.conf
	serve_long rin env "$@" rinetd -f -c rinetd.conf 2> "$out.err"
	wait_listen "$p2"
	curl -s --max-time 40 -o "$out" "http://127.0.0.1:$p2/in.bin" || fail "curl through rinetd failed"
	stop rin # SIGTERM: rinetd exits normally and the reports are written
	stop origin
	assert_same in.bin "$out"
}

test_rinetd_16k_reads_into_an_unaligned_buffer_do_not_arm_below_their_whole_pages() {
	command -v rinetd > /dev/null || fail "rinetd is not installed (scripts/deps.sh)"
	rinetd_relay plain.bin A=1
	rinetd_relay shim.bin LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/rin-%p.json" \
		NOBOUNCE_MIN_CHUNK=16K NOBOUNCE_MIN_CHUNK_STREAM=16K
	local st
	st=$(grep -l '"program": "rinetd"' "$T"/rin-*.json | head -1)
	[ -n "$st" ] || fail "no stats report from rinetd"
	jget "$st" 'j["counters"]' >&2
	assert_eq "$(jget "$st" 'j["counters"]["arms"]')" 0 "arms"
	assert_eq "$(jget "$st" 'j["counters"]["deferred_reads"]')" 0 "deferred reads"
	[ "$(jget "$st" 'j["counters"]["small_served"]')" -gt 100 ] || fail "small_served not counted"
	rinetd_relay obs.bin LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe \
		NOBOUNCE_MIN_CHUNK=16K NOBOUNCE_MIN_CHUNK_STREAM=16K
	assert_grep 'never armed: the whole pages of its buffer .* below NOBOUNCE_MIN_CHUNK' obs.bin.err
	# With the minimum at 8K the same 12K are enough: it arms, and exactly.
	rinetd_relay eight.bin LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/r8-%p.json" \
		NOBOUNCE_MIN_CHUNK=8K NOBOUNCE_MIN_CHUNK_STREAM=8K
	st=$(grep -l '"program": "rinetd"' "$T"/r8-*.json | head -1)
	[ "$(jget "$st" 'j["counters"]["deferred_reads"]')" -gt 0 ] || fail "not served at 8K"
}

run_tests
