#!/usr/bin/env bash
# A Node.js static server (tests/prog/node-static.js: stat, headers,
# fs.createReadStream({start, end}).pipe(res), as serve-static does) under
# the library with its defaults: whole files, single ranges, HEAD, eight
# downloads at once and clients that go away mid-transfer all give what
# the same server gives without the library, and the server keeps serving
# exact bytes afterwards. Node's copy loop reads on libuv pool threads and
# writes on the main thread; whether the library serves any of it is
# recorded in the exit report, not required here.
. "$(dirname "$0")/lib.sh"

NODE_JS="$NB_ROOT/tests/prog/node-static.js"

# node_up NAME PORT [preloaded]: the server on PORT serving ./www.
node_up() {
	command -v node > /dev/null || fail "node is not installed (scripts/deps.sh installs nodejs)"
	if [ "${3:-}" = preloaded ]; then
		serve "$1" env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_LOG=info \
			NOBOUNCE_STATS="$T/s-$1.json" node "$NODE_JS" "$2" "$T/www" > "$1.out" 2> "$1.err"
	else
		serve "$1" node "$NODE_JS" "$2" "$T/www" > "$1.out" 2> "$1.err"
	fi
	wait_port "$2"
}

# node_down NAME: SIGTERM by recorded PID; the server must exit 0.
node_down() {
	local pid rc
	pid=$(cat "$T/$1.pid")
	kill -TERM "$pid"
	wait "$pid"; rc=$?
	rm -f "$T/$1.pid"
	assert_eq "$rc" 0 "exit status of the $1 server"
	assert_nogrep 'nobounce.*(error|EFAULT|fatal)' "$1.err"
}

# two_servers: the same ./www served plain on $PP and preloaded on $PS.
two_servers() {
	PP=$(port); PS=$(port)
	node_up plain "$PP"
	node_up shim "$PS" preloaded
}

# fetch PORT OUT [curl options]: status line and headers to OUT.h (date
# removed), body to OUT.
fetch() {
	local p=$1 out=$2
	shift 2
	curl -s --max-time 60 -D "$out.h" -o "$out" "$@" "http://127.0.0.1:$p/big.bin" ||
		fail "curl $* on port $p failed"
	grep -iv '^date:' "$out.h" | tr -d '\r' > "$out.hh"
}

# same_answer NAME [curl options]: both servers give the same headers and
# body for this request.
same_answer() {
	local n=$1
	shift
	fetch "$PP" "p-$n" "$@"
	fetch "$PS" "s-$n" "$@"
	diff "p-$n.hh" "s-$n.hh" >&2 || fail "headers differ for $n ($*)"
	assert_same "p-$n" "s-$n"
}

setup_www() {
	mkdir -p www
	mkdata www/big.bin "${1:-24M}"
}

test_node_serves_a_whole_file_as_without_the_library() {
	setup_www
	two_servers
	same_answer whole1
	same_answer whole2
	assert_same www/big.bin s-whole2
	node_down shim
	node_down plain
	[ -s s-shim.json ] || fail "the preloaded server wrote no exit report"
}

test_node_range_requests_return_the_same_bytes() {
	setup_www 5000001
	two_servers
	local r i=0
	for r in 0-0 1-4096 4095-4096 100-131171 65535-2000000 4999999- -1 -70000 123456- 0-99999999; do
		i=$((i + 1))
		same_answer "r$i" -r "$r"
		grep -q '^HTTP/1.1 206' "s-r$i.hh" || fail "range $r: not 206: $(head -1 "s-r$i.hh")"
	done
	# An unsatisfiable range: 416 from both.
	same_answer bad -H 'Range: bytes=6000000-'
	grep -q '^HTTP/1.1 416' s-bad.hh || fail "range past the end: $(head -1 s-bad.hh)"
	# Cross-check one range against the file itself.
	tail -c +101 www/big.bin | head -c 131072 > want
	assert_same want s-r4
	node_down shim
	node_down plain
}

test_node_head_sends_the_headers_and_no_body() {
	setup_www
	two_servers
	same_answer head -I
	# curl -I writes the headers as its output: nothing may follow them.
	assert_same s-head.h s-head
	grep -qi '^content-length: 25165824' s-head.hh || fail "HEAD headers: $(cat s-head.hh)"
	# The connection is still good for a full GET afterwards.
	same_answer after
	node_down shim
	node_down plain
}

test_node_eight_downloads_at_once_are_each_exact() {
	setup_www 16M
	mkdata www/small.bin 300001
	local p i
	p=$(port)
	node_up shim "$p" preloaded
	for i in 1 2 3 4 5 6 7 8; do
		if [ $((i % 3)) = 0 ]; then
			curl -s --max-time 60 -o "got$i" -r 1000-9000000 "http://127.0.0.1:$p/big.bin" &
		elif [ $((i % 4)) = 0 ]; then
			curl -s --max-time 60 -o "got$i" "http://127.0.0.1:$p/small.bin" &
		else
			curl -s --max-time 60 -o "got$i" "http://127.0.0.1:$p/big.bin" &
		fi
		echo $! > "c$i.pid"
	done
	for i in 1 2 3 4 5 6 7 8; do
		wait "$(cat "c$i.pid")" || fail "download $i failed"
		rm -f "c$i.pid"
	done
	tail -c +1001 www/big.bin | head -c 8999001 > want-range
	for i in 1 2 3 4 5 6 7 8; do
		if [ $((i % 3)) = 0 ]; then assert_same want-range "got$i"
		elif [ $((i % 4)) = 0 ]; then assert_same www/small.bin "got$i"
		else assert_same www/big.bin "got$i"
		fi
	done
	node_down shim
}

test_node_keeps_serving_exact_bytes_after_clients_go_away() {
	setup_www 64M
	local p i
	p=$(port)
	node_up shim "$p" preloaded
	# Clients that read slowly and are cut off mid-transfer: the server
	# sees its writes fail or the connection close while reads are queued.
	for i in 1 2 3 4; do
		curl -s --max-time 1 --limit-rate 2M -o "cut$i" "http://127.0.0.1:$p/big.bin" &
		echo $! > "c$i.pid"
	done
	# A client that reads the headers and a little, then resets.
	"$PY" - "$p" <<-'PYEOF'
		import socket, struct, sys
		for _ in range(4):
		    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
		    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
		    s.recv(70000)
		    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
		    s.close()
	PYEOF
	for i in 1 2 3 4; do
		wait "$(cat "c$i.pid")"
		rm -f "c$i.pid"
		# What a cut client got is a prefix of the file.
		cmp -s "cut$i" <(head -c "$(stat -c %s "cut$i")" www/big.bin) ||
			fail "cut download $i is not a prefix of the file"
	done
	for i in 1 2; do
		curl -s --max-time 60 -o "full$i" "http://127.0.0.1:$p/big.bin" || fail "download $i after the aborts failed"
		assert_same www/big.bin "full$i"
	done
	node_down shim
	grep -q '^aborted [1-9]' shim.out || fail "the server saw no aborted response: $(cat shim.out)"
}

run_tests
