#!/usr/bin/env bash
# Reports that tell the truth: the final report (observe text and the
# NOBOUNCE_STATS JSON) is written however a process ends - exit, _exit,
# _Exit, exit_group, a termination signal it leaves at SIG_DFL - and to a
# file when its stderr is gone; a forked child reports only its own loops;
# a loop whose buffer can never be guarded (stack, shared mapping) is
# neither armed nor promised; a loop never armed names the right reason;
# the reports of a multi-process server sum into one table, and `nobounce
# stat` shows its processes as a tree. Each case runs plain and preloaded
# with the same output, exit status or signal, and bytes.
. "$(dirname "$0")/lib.sh"

NB=$NB_ROOT/scripts/nobounce
R=$PROG/reports

# plain_and_preloaded SCENARIO [ENV...]: runs tests/prog/reports both ways
# (preloaded with ENV, stderr into shim.err); the same stdout, status and
# copied bytes. Leaves the status in $rc.
plain_and_preloaded() {
	local sc=$1 rc_plain
	shift
	# (A command after it keeps the subshell from exec'ing the program:
	# bash's "Quit" notice then goes to the subshell's /dev/null.)
	( "$R" "$sc" in.bin plain.bin > plain.out 2> plain.err; exit $? ) 2> /dev/null; rc_plain=$?
	( env "$@" LD_PRELOAD="$LIB" "$R" "$sc" in.bin shim.bin > shim.out 2> shim.err; exit $? ) \
		2> /dev/null; rc=$?
	assert_eq "$rc" "$rc_plain" "exit status of '$sc'"
	diff plain.out shim.out >&2 || fail "output of '$sc' differs"
	assert_same in.bin plain.bin
	assert_same in.bin shim.bin
}

# the_json PATTERN: the one file matching, else fail.
the_json() {
	local f n
	n=$(ls $1 2> /dev/null | wc -l)
	[ "$n" -eq 1 ] || fail "$n reports match $1: $(ls)"
	f=$(ls $1)
	echo "$f"
}

test_exit_through__exit__Exit_and_exit_group_writes_the_report() {
	mkdata in.bin 4M
	for sc in _exit _Exit exit_group; do
		rm -f j-*.json
		plain_and_preloaded $sc NOBOUNCE_MODE=observe NOBOUNCE_STATS="$T/j-%p.json"
		local j
		j=$(the_json 'j-*.json')
		assert_eq "$(jget "$j" 'j["counters"]["bounces"]')" 32 "bounces in the report of $sc"
		assert_eq "$(jget "$j" 'j["program"]')" reports
		assert_grep '^nobounce: reports\[[0-9]+\] observe report: 1 copy loop found' shim.err
	done
}

test_termination_signal_writes_the_report_and_ends_by_that_signal() {
	mkdata in.bin 4M
	# term: the dispositions the program reads back (sigaction, signal,
	# sigset, siginterrupt, raw rt_sigaction) are part of the output.
	for sc in term quit; do
		rm -f j-*.json
		plain_and_preloaded $sc NOBOUNCE_MODE=observe NOBOUNCE_STATS="$T/j-%p.json"
		case $sc in
		term) assert_eq "$rc" 143 "SIGTERM"
			grep -q '^handler got 10$' shim.out || fail "the program's own handler did not run" ;;
		quit) assert_eq "$rc" 131 "SIGQUIT" ;;
		esac
		local j
		j=$(the_json 'j-*.json')
		assert_eq "$(jget "$j" 'j["counters"]["bounces"]')" 32 "bounces in the report of $sc"
		assert_grep 'observe report: 1 copy loop found' shim.err
	done
}

test_forked_child_that__exits_reports_only_its_own_loop() {
	mkdata in.bin 4M
	plain_and_preloaded fork NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/j-%p.json"
	assert_same in.bin shim.bin.child
	# The parent and the child that copied: one report each, each with
	# its own 32 bounces; the child that _exited at once wrote none.
	local n
	n=$(ls j-*.json | wc -l)
	assert_eq "$n" 2 "reports: $(ls j-*.json)"
	for j in j-*.json; do
		assert_eq "$(jget "$j" 'j["counters"]["bounces"]')" 32 "bounces in $j"
	done
	assert_eq "$(cat j-*.json | grep -c '"ppid"')" 2
}

test_observe_report_goes_to_a_file_when_stderr_is_gone() {
	mkdata in.bin 4M
	mkdir -m 700 live
	local pid f
	# stderr on /dev/null: DIR/PROG-PID.report in the live stats directory.
	NOBOUNCE_MODE=observe NOBOUNCE_LIVE_DIR="$T/live" nb_run "$R" exit in.bin out.bin \
		> out.txt 2> /dev/null
	assert_same in.bin out.bin
	f=$(ls live/reports-*.report 2> /dev/null)
	[ -n "$f" ] || fail "no report file in live/: $(ls live)"
	assert_grep 'observe report: 1 copy loop found' "$f"
	[ "$(stat -c %a "$f")" = 600 ] || fail "report file mode $(stat -c %a "$f")"
	rm -f live/*.report
	# stderr closed, ended by _exit.
	( NOBOUNCE_MODE=observe NOBOUNCE_LIVE_DIR="$T/live" nb_run "$R" _exit in.bin out.bin \
		> out.txt 2>&- )
	f=$(ls live/reports-*.report 2> /dev/null)
	[ -n "$f" ] || fail "no report file in live/ with stderr closed"
	assert_grep 'copy loop found' "$f"
	# NOBOUNCE_REPORT: there, not on stderr.
	NOBOUNCE_MODE=observe NOBOUNCE_REPORT="$T/rep-%p.txt" nb_run "$R" exit in.bin out.bin \
		> out.txt 2> err.txt
	assert_nogrep 'copy loop' err.txt
	f=$(ls rep-*.txt 2> /dev/null)
	[ -n "$f" ] || fail "no NOBOUNCE_REPORT file"
	assert_grep 'copy loop found' "$f"
}

test_buffers_that_are_never_guarded_are_not_armed_nor_promised() {
	mkdata in.bin 8M
	for sc in stack shared; do
		plain_and_preloaded $sc NOBOUNCE_MODE=observe
		assert_nogrep 'would serve it' shim.err
		case $sc in
		stack) assert_grep 'not served: the buffer is on the stack' shim.err ;;
		shared) assert_grep 'not served: the buffer is in a shared or file mapping' shim.err ;;
		esac
		rm -f j.json
		plain_and_preloaded $sc NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/j.json"
		assert_eq "$(jloop j.json file file arms)" 0 "arms of the $sc loop"
		assert_eq "$(jget j.json 'j["counters"]["arms"]')" 0
		assert_eq "$(jget j.json 'j["counters"]["deferred_reads"]')" 0
		assert_eq "$(jloop j.json file file bytes_not_copied)" 0
		case $sc in
		stack) assert_eq "$(jloop j.json file file not_served)" stack ;;
		shared) assert_eq "$(jloop j.json file file not_served)" shared ;;
		esac
	done
	# A heap buffer still arms (the control).
	rm -f j.json
	plain_and_preloaded exit NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/j.json"
	[ "$(jloop j.json file file arms)" -ge 1 ] || fail "the heap loop did not arm"
}

# ---- real programs ----

# serve_status NAME: stops a served process (SIGTERM by recorded PID to
# the timeout around it, which passes it on) and prints its status.
serve_status() {
	local pid rc
	pid=$(cat "$T/$1.pid")
	kill "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	rc=$?
	rm -f "$T/$1.pid"
	echo "$rc"
}

need_cmd() { command -v "$1" > /dev/null || fail "$1 is not installed (scripts/deps.sh installs it)"; }

test_haproxy_ended_by_sigterm_writes_both_reports() {
	need_cmd haproxy
	mkdir www
	mkdata www/f.bin 16M
	local pb ph st_plain st_shim
	pb=$(port)
	serve backend busybox httpd -f -p "127.0.0.1:$pb" -h www
	wait_port "$pb"
	ph=$(port)
	cat > hap.cfg <<-EOF
		global
		    maxconn 64
		defaults
		    mode http
		    timeout connect 5s
		    timeout client 30s
		    timeout server 30s
		frontend f
		    bind 127.0.0.1:$ph
		    default_backend b
		backend b
		    server s1 127.0.0.1:$pb
	EOF
	serve hap haproxy -db -f hap.cfg 2> /dev/null
	wait_port "$ph"
	curl -s -o plain.bin "http://127.0.0.1:$ph/f.bin" || fail "curl through plain haproxy"
	st_plain=$(serve_status hap)
	serve hap env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe NOBOUNCE_STATS="$T/h-%p.json" \
		haproxy -db -f hap.cfg 2> hap.err
	wait_port "$ph"
	curl -s -o shim.bin "http://127.0.0.1:$ph/f.bin" || fail "curl through preloaded haproxy"
	st_shim=$(serve_status hap)
	stop backend
	assert_same www/f.bin plain.bin
	assert_same www/f.bin shim.bin
	assert_eq "$st_shim" "$st_plain" "haproxy's end"
	local j
	j=$(the_json 'h-*.json')
	assert_eq "$(jget "$j" 'j["program"]')" haproxy
	# (the response headers and the first reads are not bounces)
	[ "$(jget "$j" 'j["counters"]["bounce_bytes"]')" -ge $((15 << 20)) ] ||
		fail "haproxy's report counts $(jget "$j" 'j["counters"]["bounce_bytes"]') bytes"
	assert_grep '^nobounce: haproxy\[[0-9]+\] observe report: ' hap.err
	assert_grep 'fd [0-9]+ \(tcp\) -> fd [0-9]+ \(tcp\)' hap.err
}

test_busybox_httpd_ended_by_sigterm_writes_its_report() {
	need_cmd busybox
	mkdir www
	mkdata www/f.bin 4M
	local p st_plain st_shim
	p=$(port)
	serve httpd busybox httpd -f -p "127.0.0.1:$p" -h www
	wait_port "$p"
	curl -s -o plain.bin "http://127.0.0.1:$p/f.bin"
	st_plain=$(serve_status httpd)
	serve httpd env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/b-%p.json" \
		busybox httpd -f -p "127.0.0.1:$p" -h www
	wait_port "$p"
	curl -s -o shim.bin "http://127.0.0.1:$p/f.bin"
	st_shim=$(serve_status httpd)
	assert_same www/f.bin plain.bin
	assert_same www/f.bin shim.bin
	assert_eq "$st_shim" "$st_plain" "busybox httpd's end"
	# The server itself (its per-connection children moved no loop of
	# their own: busybox sends files with sendfile).
	grep -l '"program": "busybox"' b-*.json > /dev/null 2>&1 ||
		fail "busybox httpd wrote no report: $(ls)"
}

# lighttpd with the writev backend: pread 16K into a stack buffer, then
# write. Never served: observe says why, mode on does not count it armed.
# Its stderr on /dev/null: the observe report goes to the live directory.
test_lighttpd_writev_backend_is_reported_not_served_stack_buffer() {
	need_cmd lighttpd
	mkdir www live
	chmod 700 live
	mkdata www/f.bin 8M
	local p
	p=$(port)
	cat > lt.conf <<-EOF
		server.document-root = "$T/www"
		server.port = $p
		server.bind = "127.0.0.1"
		server.network-backend = "writev"
		server.errorlog = "$T/lt.err"
	EOF
	serve lt env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe NOBOUNCE_LIVE_DIR="$T/live" \
		lighttpd -D -f lt.conf 2> /dev/null
	wait_port "$p"
	curl -s -o obs.bin "http://127.0.0.1:$p/f.bin"
	stop lt
	assert_same www/f.bin obs.bin
	local f
	f=$(grep -l 'copy loop found' live/lighttpd-*.report 2> /dev/null | head -1)
	[ -n "$f" ] || fail "no observe report of lighttpd in live/: $(ls live)"
	assert_grep 'fd [0-9]+ \(file\) -> fd [0-9]+ \(tcp\)' "$f"
	assert_grep 'not served: the buffer is on the stack' "$f"
	assert_nogrep 'would serve it' "$f"

	serve lt env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/l-%p.json" \
		lighttpd -D -f lt.conf 2> lt.stderr
	wait_port "$p"
	curl -s -o on.bin "http://127.0.0.1:$p/f.bin"
	stop lt
	assert_same www/f.bin on.bin
	local j
	j=$(grep -l '"src_kind": "file", "dst_fd": [0-9]*, "dst_kind": "tcp"' l-*.json | head -1)
	[ -n "$j" ] || fail "no report with lighttpd's loop: $(cat l-*.json)"
	assert_eq "$(jloop "$j" file tcp arms)" 0 "lighttpd's loop armed"
	assert_eq "$(jloop "$j" file tcp not_served)" stack
	assert_eq "$(jget "$j" 'j["counters"]["arms"]')" 0
	assert_eq "$(jget "$j" 'j["counters"]["forwarded_bytes"]')" 0
}

# rinetd relays 16K socket reads: never armed because of the stream
# minimum (128K), and the report must say so - in observe mode as text,
# in mode on in the JSON's why_not.
test_rinetd_unarmed_reason_is_the_stream_minimum() {
	need_cmd rinetd
	mkdir www
	mkdata www/f.bin 16M
	local pb pr
	pb=$(port)
	serve backend busybox httpd -f -p "127.0.0.1:$pb" -h www
	wait_port "$pb"
	pr=$(port)
	echo "127.0.0.1 $pr 127.0.0.1 $pb" > rinetd.conf
	serve rin env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe rinetd -f -c rinetd.conf 2> rin.err
	wait_port "$pr"
	curl -s -o obs.bin "http://127.0.0.1:$pr/f.bin"
	stop rin
	assert_same www/f.bin obs.bin
	assert_grep 'fd [0-9]+ \(tcp\) -> fd [0-9]+ \(tcp\)' rin.err
	assert_grep 'never armed: its chunks are below NOBOUNCE_MIN_CHUNK_STREAM \(128.0 KiB\)' rin.err
	assert_nogrep 'too few iterations' rin.err

	serve rin env LD_PRELOAD="$LIB" NOBOUNCE_MODE=on NOBOUNCE_STATS="$T/r-%p.json" \
		rinetd -f -c rinetd.conf 2> /dev/null
	wait_port "$pr"
	curl -s -o on.bin "http://127.0.0.1:$pr/f.bin"
	stop rin
	stop backend
	assert_same www/f.bin on.bin
	local j
	j=$(grep -l '"program": "rinetd"' r-*.json | head -1)
	[ -n "$j" ] || fail "rinetd wrote no report"
	assert_eq "$(jget "$j" 'j["counters"]["arms"]')" 0
	jget "$j" '[l.get("why_not", "") for l in j["loops"] if l["src_kind"] == "tcp"]' > why.txt
	assert_grep 'below NOBOUNCE_MIN_CHUNK_STREAM' why.txt
}

# A loop whose kernel path a descriptor flag or a setting rules out says
# which (it said "no kernel path serves file -> pipe", which is false).
test_o_direct_source_is_the_reason_a_loop_stays_plain() {
	mkdata in.bin 8M
	NOBOUNCE_MODE=observe nb_run dd if=in.bin iflag=direct bs=1M status=none 2> report.txt |
		cat > out.bin
	assert_same in.bin out.bin
	assert_grep 'fd 0 \(file\) -> fd 1 \(pipe\)' report.txt
	assert_grep 'not served: the source is opened with O_DIRECT; stays plain' report.txt
	assert_nogrep 'no kernel path serves' report.txt
	NOBOUNCE_STATS="$T/s.json" nb_run dd if=in.bin iflag=direct bs=1M status=none | cat > on.bin
	assert_same in.bin on.bin
	assert_eq "$(jloop s.json file pipe why_not)" "the source is opened with O_DIRECT"
}

test_a_path_left_out_by_nobounce_paths_is_the_reason_a_loop_stays_plain() {
	mkdata in.bin 8M
	NOBOUNCE_MODE=observe NOBOUNCE_PATHS=sendfile nb_run dd if=in.bin bs=1M status=none \
		2> report.txt | cat > out.bin
	assert_same in.bin out.bin
	assert_grep 'not served: NOBOUNCE_PATHS leaves out the kernel path for it; stays plain' report.txt
}

test_char_to_char_loop_still_has_no_kernel_path() {
	NOBOUNCE_MODE=observe nb_run dd if=/dev/zero of=/dev/null bs=64K count=64 status=none \
		2> report.txt
	assert_grep 'no kernel path serves char -> char here; stays plain' report.txt
}

# nginx with a master and two workers: one report per process, summed by
# `nobounce report DIR` into one table with the processes as a tree;
# while it runs, `nobounce stat` shows the workers under the master.
test_nginx_workers_sum_into_one_report_and_stat_shows_the_tree() {
	need_cmd nginx
	mkdir www tmp live rep
	chmod 700 live
	mkdata www/f.bin 8M
	local p user=""
	p=$(port)
	[ "$(id -u)" = 0 ] && user="user root;" # workers that can write their reports
	nginx_conf "$p" "$user master_process on; worker_processes 2;" "output_buffers 2 256k;"
	serve nginx env LD_PRELOAD="$LIB" NOBOUNCE_LIVE_DIR="$T/live" NOBOUNCE_STATS="$T/rep/%p.json" \
		nginx -e "$T/nginx.err" -p "$T" -c "$T/nginx.conf"
	wait_port "$p"
	local i
	for i in 1 2 3 4 5 6; do curl -s -o "got$i.bin" "http://127.0.0.1:$p/f.bin" & done
	wait $(jobs -p | grep -vx "$(cat nginx.pid)")
	for i in 1 2 3 4 5 6; do assert_same www/f.bin "got$i.bin"; done
	local master
	master=$(cat nginx.pid.file)
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" stat > stat.txt
	# The master at the left, its two workers indented under it.
	assert_grep "^$master +nginx " stat.txt
	[ "$(grep -Ec '^  [0-9]+ +nginx ' stat.txt)" = 2 ] || { cat stat.txt >&2; fail "workers not under the master"; }
	kill -QUIT "$master"
	finish nginx
	[ "$(ls rep/*.json | wc -l)" -eq 3 ] || fail "reports: $(ls rep)"
	"$NB" report rep > table.txt || fail "report of a directory failed"
	assert_grep '^nobounce report: nginx, 3 processes, mode on$' table.txt
	assert_grep "^    $master\$" table.txt
	[ "$(grep -Ec '^      [0-9]+$' table.txt)" = 2 ] || { cat table.txt >&2; fail "no process tree"; }
	local sum
	sum=$(cat rep/*.json | sed -n 's/.*"bounces": \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s }')
	[ "$sum" -gt 0 ] || fail "no bounces in nginx's reports"
	assert_grep "^  bounces $sum \\(" table.txt
	assert_grep '^  file +tcp +[0-9]+ ' table.txt
	# The same from the files named one by one.
	"$NB" report rep/*.json > table2.txt || fail "report of several files failed"
	diff table.txt table2.txt >&2 || fail "a directory and its files differ"
}

run_tests
