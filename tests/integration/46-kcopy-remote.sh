#!/usr/bin/env bash
# kcopy's receiver at an address (kcopy -S) and the copier sending to it
# (kcopy -D), what scripts/bench-netns.sh measures across a veth pair:
# every byte arrives and is counted by the server, plain and preloaded
# alike, and the preloaded loop is served by the kernel (armed, writes
# forwarded). Here on 127.0.0.1; the script's namespaces need root.
. "$(dirname "$0")/lib.sh"

KC=$PROG/kcopy

# start_server: a kcopy -S on 127.0.0.1, its address in $ADDR.
start_server() {
	serve kserver "$KC" -T 50 -S 127.0.0.1:0 > server.log
	for _ in $(seq 50); do
		grep -q status=listening server.log && break
		sleep 0.1
	done
	assert_grep '^kcopy-server listen=127\.0\.0\.1:[0-9]+ status=listening$' server.log
	ADDR=$(sed -n 's/^kcopy-server listen=\([^ ]*\) .*/\1/p' server.log)
}

# fields LINE: what does not depend on timing.
fields() { tr ' ' '\n' < "$1" | grep -E '^(dir|method|chunk|bytes|dest|status)=' | sort; }

test_remote_receiver_counts_every_byte_plain_and_preloaded() {
	"$KC" -s 8M -f "$T/src" -p
	start_server
	for c in 64K 1M; do
		"$KC" -s 8M -f "$T/src" -D "$ADDR" file-tcp plain "$c" > plain.out ||
			fail "plain run failed"
		env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.$c.json" NOBOUNCE_SEND_CHUNK=64K \
			"$KC" -s 8M -f "$T/src" -D "$ADDR" file-tcp plain "$c" > shim.out ||
			fail "preloaded run failed"
		fields plain.out > plain.f
		fields shim.out > shim.f
		assert_same plain.f shim.f
		assert_grep "^dest=$ADDR\$" plain.f
		assert_grep '^bytes=8388608$' plain.f
		assert_grep ' peer_cpu_s=[0-9.]+ ' shim.out
		[ "$(jget "stats.$c.json" "j['counters']['forwarded_writes']")" -gt 0 ] ||
			fail "preloaded run was not served by the kernel"
	done
	"$KC" -s 8M -f "$T/src" -D "$ADDR" file-tcp sendfile 64K > sf.out || fail "sendfile run failed"
	# Without -D the line is what it always was.
	"$KC" -s 4M -f "$T/src" file-tcp plain 64K > local.out || fail "loopback run failed"
	assert_nogrep 'dest=|peer_cpu_s=' local.out
	assert_grep ' cpus=-1,-1 status=ok$' local.out
	stop kserver
	assert_eq "$(grep -c '^kcopy-server bytes=8388608 cpu_s=[0-9.]* status=ok$' server.log)" 5 \
		"server lines: $(cat server.log)"
}

test_remote_receiver_serves_the_next_connection_after_a_broken_one() {
	"$KC" -s 64M -f "$T/src" -p
	start_server
	# A copier killed mid-copy: its connection ends short of the size.
	"$KC" -s 64M -f "$T/src" -D "$ADDR" -T 1 file-tcp plain 1K > /dev/null 2>&1 &
	local pid=$!
	sleep 0.05
	kill -9 "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	"$KC" -s 1M -f "$T/src" -D "$ADDR" file-tcp plain 64K > next.out || fail "next run failed"
	assert_grep ' bytes=1048576 .*status=ok$' next.out
	stop kserver
	assert_grep '^kcopy-server bytes=1048576 cpu_s=[0-9.]* status=ok$' server.log
}

test_remote_receiver_options_are_checked() {
	"$KC" -D 127.0.0.1 file-tcp plain 64K > /dev/null 2> err.txt
	assert_eq $? 2 "exit status of a -D without a port"
	assert_grep 'bad -D' err.txt
	"$KC" -D 127.0.0.1:9 file-pipe plain 64K > /dev/null 2> err.txt
	assert_eq $? 2 "exit status of -D with a direction to a pipe"
	"$KC" -S 127.0.0.1:0 file-tcp plain 64K > /dev/null 2> err.txt
	assert_eq $? 2 "exit status of -S with operands"
}

run_tests
