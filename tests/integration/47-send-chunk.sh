#!/usr/bin/env bash
# The size of the sendfile calls a served write to TCP is cut into
# (NOBOUNCE_SEND_CHUNK, xfer.c chunk_for): 32K over loopback, where the
# receiver's protocol work runs on the sender's CPU and small calls win;
# 64K over a link with Ethernet-sized segments (here: loopback with the
# receiver's MSS clamped to 1400, which is what the library looks at);
# a size given in the environment for every connection. Each case copies
# an 8 MiB file with build/prog/bounce (256K reads) to a receiver on
# 127.0.0.1 that checks what it got; the calls are counted with strace.
. "$(dirname "$0")/lib.sh"

command -v strace > /dev/null || { echo "47-send-chunk.sh: strace is not installed (scripts/deps.sh)" >&2; exit 1; }

# sends MSS [VAR=VALUE...]: copies src.bin to a receiver advertising MSS
# (0: the link's own); leaves got.txt (bytes, sha256) and calls.txt (the
# size of every sendfile call the copy made, one per line).
sends() {
	local mss=$1 p
	shift
	[ -f src.bin ] || mkdata src.bin $((8 << 20))
	p=$(port)
	serve rcv "$PY" -c '
import socket, sys, hashlib
mss = int(sys.argv[2])
s = socket.socket()
if mss:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
c, _ = s.accept()
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest())' "$p" "$mss" > got.txt
	wait_listen "$p"
	strace -f -qq -e trace=sendfile -o strace.txt env LD_PRELOAD="$PRELOAD" \
		NOBOUNCE_STATS="$T/stats.json" "$@" "$PROG/bounce" --chunk 256K src.bin \
		"tcp:127.0.0.1:$p" || fail "bounce failed"
	finish rcv || fail "the receiver failed"
	assert_eq "$(cat got.txt)" "$(stat -c %s src.bin) $(sha256sum < src.bin | cut -d' ' -f1)" "bytes received"
	sed -n 's/^.*sendfile(.* = \([0-9]*\)$/\1/p' strace.txt > calls.txt
	[ "$(jget stats.json "j['counters']['forwarded_writes']")" -gt 0 ] || fail "no write was served"
}

# most_calls: the size most calls had.
most_calls() { sort calls.txt | uniq -c | sort -rn | awk 'NR == 1 { print $2 }'; }

test_a_loopback_connection_gets_32k_sendfile_calls() {
	sends 0
	assert_eq "$(most_calls)" 32768 "sendfile call size"
}

test_a_connection_with_ethernet_sized_segments_gets_64k_sendfile_calls() {
	sends 1400
	assert_eq "$(most_calls)" 65536 "sendfile call size"
}

test_a_send_chunk_given_holds_over_a_link_too() {
	sends 1400 NOBOUNCE_SEND_CHUNK=32K
	assert_eq "$(most_calls)" 32768 "sendfile call size"
}

test_a_send_chunk_given_holds_over_loopback_too() {
	sends 0 NOBOUNCE_SEND_CHUNK=128K
	assert_eq "$(most_calls)" 131072 "sendfile call size"
}

run_tests
