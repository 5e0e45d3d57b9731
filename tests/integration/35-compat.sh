#!/usr/bin/env bash
# Compatibility: real programs from Debian packages under the library in
# mode on with its defaults, as an operator would run them. Every result
# is byte-identical to the input (or to a plain run of the same command),
# exit statuses match the plain run, servers serve every byte and stop
# cleanly. Whether the library armed (writes served by the kernel) is
# recorded, not required: it depends on each program's read size against
# the NOBOUNCE_MIN_CHUNK* defaults. With NB_COMPAT_OUT set, each test
# appends its row of the README's compatibility table there.
. "$(dirname "$0")/lib.sh"

SIZE=48M

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2> /dev/null || echo "?"; }

# armed_from STATS...: how many writes the kernel served, summed over the
# JSON exit reports of every preloaded process.
served_by_kernel() {
	local n=0 f
	for f in "$@"; do
		[ -s "$f" ] && n=$((n + $(jget "$f" "j['counters']['forwarded_writes']")))
	done
	echo "$n"
}

# row PROGRAM PACKAGE DIRECTION SERVED: one line of the table.
row() {
	local armed="no (plain path)"
	[ "$4" -gt 0 ] && armed="yes ($4 writes by the kernel)"
	[ -n "${NB_COMPAT_OUT:-}" ] &&
		echo "| $1 | $2 $(pkg_version "$2") | $3 | identical | $armed |" >> "$NB_COMPAT_OUT"
	return 0
}

# both 'COMMAND ... OUT': the command plain (OUT = plain.out), then
# preloaded in mode on with stats per process (OUT = shim.out); the exit
# statuses must match.
both() {
	local rp rs
	bash -c "${1//OUT/plain.out}"
	rp=$?
	env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/s-%p.json" \
		bash -c "${1//OUT/shim.out}"
	rs=$?
	assert_eq "$rs" "$rp" "exit status (preloaded vs plain)"
	assert_eq "$rp" 0 "exit status of the plain run"
}

# receiver NAME PORT FILE: a plain socat writing what one connection
# sends to FILE.
receiver() {
	serve "$1" socat -u "TCP-LISTEN:$2,bind=127.0.0.1,reuseaddr" "OPEN:$3,creat,trunc"
	wait_listen "$2"
}

# ---- coreutils and tar ----

test_cat_file_to_file() {
	mkdata in.bin $SIZE
	both 'cat in.bin > OUT'
	assert_same in.bin plain.out
	assert_same in.bin shim.out
	row cat coreutils "file → file (its own copy_file_range)" "$(served_by_kernel s-*.json)"
}

test_cat_file_through_a_pipe_to_cat_to_file() {
	mkdata in.bin $SIZE
	both 'cat in.bin | cat > OUT'
	assert_same in.bin shim.out
	row "cat \| cat" coreutils "file → pipe → file" "$(served_by_kernel s-*.json)"
}

test_dd_file_to_file_at_three_block_sizes() {
	mkdata in.bin $SIZE
	local bs n=0
	for bs in 4K 64K 1M; do
		rm -f s-*.json
		both "dd if=in.bin of=OUT bs=$bs status=none"
		assert_same in.bin shim.out
		row "dd bs=$bs" coreutils "file → file" "$(served_by_kernel s-*.json)"
		n=$((n + 1))
	done
	assert_eq "$n" 3 "block sizes"
}

test_dd_file_to_pipe() {
	mkdata in.bin $SIZE
	both 'dd if=in.bin bs=1M status=none | cat > OUT'
	assert_same in.bin shim.out
	row "dd bs=1M \| cat" coreutils "file → pipe" "$(served_by_kernel s-*.json)"
}

test_cp_file_to_file() {
	mkdata in.bin $SIZE
	both 'cp in.bin OUT'
	assert_same in.bin shim.out
	# cp copies with copy_file_range itself: nothing passes through a buffer
	row cp coreutils "file → file (its own copy_file_range)" "$(served_by_kernel s-*.json)"
}

test_tar_to_cat_archive_identical_to_the_plain_one() {
	mkdir src
	mkdata src/a.bin 20M
	mkdata src/b.bin 7M
	touch -d '2020-01-01 00:00:00' src src/a.bin src/b.bin
	both 'tar -C src -cf - . | cat > OUT'
	assert_same plain.out shim.out
	row "tar \| cat" tar "files → pipe → file" "$(served_by_kernel s-*.json)"
}

# ---- socat and netcat ----

# sender_case PROGRAM PACKAGE 'COMMAND with PORT': COMMAND, preloaded, sends
# in.bin to a plain receiver on PORT; what arrives is in.bin.
sender_case() {
	mkdata in.bin $SIZE
	local p
	p=$(port)
	receiver rcv "$p" got.bin
	env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/s-%p.json" \
		bash -c "${3//PORT/$p}" || fail "$1 failed"
	finish rcv || fail "receiver failed"
	assert_same in.bin got.bin
	row "$1" "$2" "file → tcp" "$(served_by_kernel s-*.json)"
}

test_socat_file_to_tcp() {
	sender_case socat socat 'socat -u FILE:in.bin TCP:127.0.0.1:PORT'
}

test_socat_tcp_relay() {
	mkdata in.bin $SIZE
	local p1 p2
	p1=$(port)
	p2=$(port)
	receiver rcv "$p2" got.bin
	serve relay env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/s-%p.json" \
		socat "TCP-LISTEN:$p1,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.1:$p2"
	wait_listen "$p1"
	socat -u FILE:in.bin "TCP:127.0.0.1:$p1" || fail "sender failed"
	finish relay || fail "relay failed"
	finish rcv || fail "receiver failed"
	assert_same in.bin got.bin
	row socat socat "tcp → tcp (relay, non-blocking)" "$(served_by_kernel s-*.json)"
}

test_nc_sending_a_file() {
	sender_case nc netcat-openbsd 'nc -N 127.0.0.1 PORT < in.bin'
}

test_nc_receiving_into_a_file() {
	mkdata in.bin $SIZE
	local p
	p=$(port)
	serve nc env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/s-%p.json" \
		nc -l 127.0.0.1 "$p" < /dev/null > got.bin
	wait_listen "$p"
	socat -u FILE:in.bin "TCP:127.0.0.1:$p" || fail "sender failed"
	finish nc || fail "nc failed"
	assert_same in.bin got.bin
	row nc netcat-openbsd "tcp → file" "$(served_by_kernel s-*.json)"
}

# ---- HTTP clients, against a plain python3 http.server ----

# http_site: www/big.bin served by a plain python3 on $HP.
http_site() {
	mkdir www
	mkdata www/big.bin $SIZE
	HP=$(port)
	(cd www && exec "$PY" -m http.server --bind 127.0.0.1 "$HP" > "$T/py.out" 2> "$T/py.err") &
	echo $! > "$T/py.pid"
	wait_port "$HP"
}

test_curl_download() {
	http_site
	env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/s-%p.json" \
		curl -s --max-time 30 -o got.bin "http://127.0.0.1:$HP/big.bin" || fail "curl failed"
	stop py
	assert_same www/big.bin got.bin
	row curl curl "tcp → file (fwrite)" "$(served_by_kernel s-*.json)"
}

test_wget_download() {
	http_site
	env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/s-%p.json" \
		wget -q -T 30 -O got.bin "http://127.0.0.1:$HP/big.bin" || fail "wget failed"
	stop py
	assert_same www/big.bin got.bin
	row wget wget "tcp → file" "$(served_by_kernel s-*.json)"
}

# ---- HTTP servers under the library, downloaded by a plain curl ----

# get_twice PORT: two downloads of big.bin, both identical to it.
get_twice() {
	local i
	for i in 1 2; do
		curl -s --max-time 30 -o "got$i.bin" "http://127.0.0.1:$1/big.bin" || fail "download $i failed"
		assert_same www/big.bin "got$i.bin"
	done
}

# armed_in_log LOG: the library's info line when a pair arms, as a count
# (servers stopped by a signal write no exit report).
armed_in_log() { grep -c 'armed: file -> tcp' "$1"; }

test_python3_http_server() {
	mkdir www
	mkdata www/big.bin $SIZE
	local p
	p=$(port)
	(cd www && exec env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/s-%p.json" \
		"$PY" -m http.server --bind 127.0.0.1 "$p" > "$T/py.out" 2> "$T/py.err") &
	echo $! > "$T/py.pid"
	wait_port "$p"
	get_twice "$p"
	kill -INT "$(cat py.pid)"
	wait "$(cat py.pid)"
	rm -f py.pid
	[ -s "$(echo s-*.json)" ] || fail "python3 wrote no exit report: $(tail -3 py.err)"
	row "python3 -m http.server" python3 "file → tcp" "$(served_by_kernel s-*.json)"
}

test_nginx_with_sendfile_off() {
	command -v nginx > /dev/null || fail "nginx is not installed (scripts/deps.sh installs it)"
	mkdir www tmp
	mkdata www/big.bin $SIZE
	local p
	p=$(port)
	nginx_conf "$p" "master_process off; worker_processes 1;" ""
	serve nginx env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_LOG=info \
		NOBOUNCE_STATS="$T/s-%p.json" nginx -e "$T/nginx.err" -p "$T" -c "$T/nginx.conf" 2> nginx.log
	wait_port "$p"
	get_twice "$p"
	stop nginx
	assert_nogrep 'nobounce.*(error|EFAULT)' nginx.log
	[ "$(armed_in_log nginx.log)" -ge 1 ] || fail "nginx's loop never armed: $(cat nginx.log)"
	[ -s "$(echo s-*.json)" ] || fail "nginx wrote no exit report (stopped by SIGTERM, it exits)"
	row "nginx (sendfile off)" nginx "file → tcp (pread + writev)" "$(served_by_kernel s-*.json)"
}

test_busybox_httpd() {
	mkdir www
	mkdata www/big.bin $SIZE
	local p
	p=$(port)
	serve httpd env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_LOG=info \
		busybox httpd -f -p "127.0.0.1:$p" -h www 2> httpd.log
	wait_port "$p"
	get_twice "$p"
	stop httpd
	assert_nogrep 'nobounce.*(error|EFAULT)' httpd.log
	# it sends files with sendfile(2) itself: no loop to find
	assert_eq "$(armed_in_log httpd.log)" 0 "armed pairs in busybox httpd"
	row "busybox httpd" busybox "file → tcp (its own sendfile)" 0
}

# Apache httpd as Debian ships it: EnableMMAP On, EnableSendfile Off - a
# static file goes out as writev(header, 4 MiB mapping), mapping after
# mapping. A private configuration in $T (its own ServerRoot, PidFile,
# DocumentRoot, Listen on 127.0.0.1), prefork, one worker (-X), bounded
# by serve's timeout and stopped by its recorded PID. Plain and preloaded
# must serve the same bytes for a large file, a Range, HEAD, two
# requests on one kept-alive connection and a file below the minimum;
# preloaded, the bodies go by the kernel (the report's mapped_bytes).
apache_conf() { # PORT NAME
	local user=""
	[ "$(id -u)" -eq 0 ] && user="User www-data
Group www-data"
	mkdir -p "$T/run-$2"
	cat > "$T/$2.conf" <<-EOF
		ServerRoot $T
		ServerName 127.0.0.1
		PidFile $T/run-$2/httpd.pid
		DefaultRuntimeDir $T/run-$2
		Mutex file:$T/run-$2 default
		LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
		LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
		LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
		$user
		Listen 127.0.0.1:$1
		ErrorLog $T/run-$2/error.log
		LogLevel warn
		TypesConfig /dev/null
		DocumentRoot $T/www
		<Directory $T/www>
		    Require all granted
		</Directory>
		EnableMMAP On
		EnableSendfile Off
		KeepAlive On
		MaxKeepAliveRequests 100
	EOF
}

apache_fetch() { # PORT DIR
	local u=http://127.0.0.1:$1
	mkdir -p "$2"
	curl -s --max-time 60 -o "$2/big.bin" "$u/big.bin" || fail "GET big.bin"
	curl -s --max-time 60 -r 1000-20000000 -o "$2/range.bin" "$u/big.bin" || fail "Range"
	curl -s --max-time 60 -r 33554432- -o "$2/tail.bin" "$u/big.bin" || fail "Range to the end"
	curl -s --max-time 60 -I "$u/big.bin" | grep -v '^Date:' > "$2/head.txt" || fail "HEAD"
	# two requests on one connection (curl reuses it), then a small file
	curl -s --max-time 60 -o "$2/ka1.bin" "$u/mid.bin" -o "$2/ka2.bin" "$u/big.bin" \
		-w '%{num_connects}\n' > "$2/connects.txt" || fail "keep-alive"
	curl -s --max-time 60 -o "$2/small.bin" "$u/small.bin" || fail "GET small.bin"
}

test_apache2_default_mmap_path() {
	command -v apache2 > /dev/null || fail "apache2 is not installed (scripts/deps.sh installs it)"
	mkdir -p www stats
	chmod 755 "$T" www
	chmod 1777 stats
	mkdata www/big.bin $SIZE
	mkdata www/mid.bin 300000
	mkdata www/small.bin 1000
	chmod 644 www/*
	# apache2 marks the ETag of a file changed in the last second weak:
	# both runs must see files of the same age.
	touch -d '1 hour ago' www/*
	local p q
	p=$(port)
	apache_conf "$p" plain
	serve apache-plain apache2 -X -f "$T/plain.conf"
	wait_port "$p"
	apache_fetch "$p" plain
	stop apache-plain
	q=$(port)
	apache_conf "$q" shim
	serve apache-shim env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/stats/s-%p.json" \
		apache2 -X -f "$T/shim.conf"
	wait_port "$q"
	apache_fetch "$q" shim
	stop apache-shim
	for f in big.bin range.bin tail.bin head.txt ka1.bin ka2.bin connects.txt small.bin; do
		cmp -s "plain/$f" "shim/$f" || { diff "plain/$f" "shim/$f" >&2; fail "$f differs between plain and preloaded"; }
	done
	assert_same www/big.bin shim/big.bin
	assert_same www/small.bin shim/small.bin
	assert_same www/mid.bin shim/ka1.bin
	assert_same www/big.bin shim/ka2.bin
	cmp -s shim/range.bin <(tail -c +1001 www/big.bin | head -c 19999001) || fail "Range bytes"
	cmp -s shim/tail.bin <(tail -c +33554433 www/big.bin) || fail "Range to the end bytes"
	assert_grep '^HTTP/1.1 200 OK' shim/head.txt
	assert_eq "$(tr '\n' ' ' < shim/connects.txt)" '1 0 ' "one connection for two requests"
	assert_nogrep 'nobounce.*(error|EFAULT)' "$T/run-shim/error.log"
	local reports=("$T"/stats/s-*.json) mb=0 f
	[ -s "${reports[0]}" ] || fail "apache2 wrote no exit report"
	for f in "${reports[@]}"; do
		mb=$((mb + $(jget "$f" "j['counters']['mapped_bytes']")))
	done
	# the two full bodies of big.bin and mid.bin, by the kernel (the small
	# file stays plain; Apache reads the file for a Range that starts
	# inside a page, heap buckets of 8000 bytes: no mapping there)
	[ "$mb" -ge $((48 * 1024 * 1024 * 2 + 300000)) ] ||
		fail "mapped_bytes $mb: the bodies did not go by the kernel"
	row "apache2 (EnableMMAP On, EnableSendfile Off)" apache2 \
		"mapping → tcp (mmap + writev)" "$(served_by_kernel "${reports[@]}")"
}

run_tests
