# lib.sh - helpers for integration tests. Source it, define functions
# named test_*, then call `run_tests`. Each test runs in a subshell with
# its own scratch directory ($T) and a time limit.
#
#   PRE            env prefix that preloads the built library
#   nb_run ...     runs a command with the library preloaded
#   serve NAME CMD starts a background server (bounded by timeout), records
#                  its PID in $T/NAME.pid; stop NAME kills it by that PID
#   port           a free TCP port on 127.0.0.1
#   assert_same A B     files identical;  assert_grep RE FILE;  assert_eq A B
set -u
NB_ROOT=${NB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NB_RESULTS=${NB_RESULTS:-$(mktemp -d)}
LIB=$NB_ROOT/build/libnobounce.so
# NB_TEST_PROG: where the test programs are (make check-sanitize points it
# at ASan+UBSan builds); NB_TEST_PRELOAD_FIRST: a library that must come
# before the shim in LD_PRELOAD (the sanitizer runtime of such builds).
PROG=${NB_TEST_PROG:-$NB_ROOT/build/prog}
PRELOAD=${NB_TEST_PRELOAD_FIRST:+$NB_TEST_PRELOAD_FIRST:}$LIB
PRE="LD_PRELOAD=$LIB"
TEST_TIMEOUT=${TEST_TIMEOUT:-120}

nb_run() { env LD_PRELOAD="$LIB" "$@"; }

fail() { echo "    FAIL: $*" >&2; exit 1; }
assert_same() { cmp -s "$1" "$2" || fail "$1 and $2 differ"; }
assert_eq() { [ "$1" = "$2" ] || fail "expected '$2', got '$1'${3:+ ($3)}"; }
assert_grep() { grep -Eq -- "$1" "$2" || { sed 's/^/      | /' "$2" >&2; fail "no /$1/ in $2"; }; }
assert_nogrep() { ! grep -Eq -- "$1" "$2" || { sed 's/^/      | /' "$2" >&2; fail "unexpected /$1/ in $2"; }; }

port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (max 10 s).
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.1
	done
	fail "nothing listens on port $1"
}

serve() {
	local name=$1; shift
	timeout 60 "$@" &
	echo $! > "$T/$name.pid"
}

stop() {
	local pid
	pid=$(cat "$T/$1.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

PY=/usr/bin/python3 # Debian's, not whatever python3 is first in PATH

# jloop FILE SRC_KIND DST_KIND FIELD: FIELD (dotted: misses.modified) of the
# one loop in stats FILE with those kinds; fails if there is not exactly one.
jloop() {
	"$PY" - "$@" <<'EOF'
import json, sys
f, sk, dk, field = sys.argv[1:5]
j = json.load(open(f))
ls = [l for l in j["loops"] if l["src_kind"] == sk and l["dst_kind"] == dk]
if len(ls) != 1:
    sys.exit("%s: %d %s -> %s loops in %s" % (f, len(ls), sk, dk, j["loops"]))
v = ls[0]
for k in field.split("."):
    v = v[k]
print(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
EOF
}

# jget FILE EXPR: a python expression over the JSON document j.
jget() { "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# report_counter NAME [REPORT]: counter NAME of a preloaded run's JSON
# report (REPORT, by default stats.json in the test's directory).
report_counter() { jget "${2:-stats.json}" "j['counters']['$1']"; }

# broke_a_lease [N]: the report (stats.json) shows the change met a
# phantom: reads were deferred and at least N (1) read leases broken.
broke_a_lease() {
	[ "$(report_counter deferred_reads)" -gt 0 ] || fail "nothing was deferred"
	[ "$(report_counter leases_broken)" -ge "${1:-1}" ] || fail "no lease was broken"
}

# wait_listen PORT: until a socket listens on 127.0.0.1:PORT, without
# connecting to it (a server that accepts one connection would take a
# probe for its client).
wait_listen() {
	local hex
	hex=$(printf ':%04X' "$1")
	for _ in $(seq 100); do
		awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
			/proc/net/tcp && return 0
		sleep 0.1
	done
	fail "nothing listens on port $1"
}

# finish NAME: wait for a served process to end by itself (bounded by the
# timeout serve put around it); returns its status.
finish() {
	local pid rc
	pid=$(cat "$T/$1.pid") || fail "no server $1"
	wait "$pid"
	rc=$?
	rm -f "$T/$1.pid"
	return $rc
}

# mkdata FILE SIZE: random content of SIZE bytes.
# runs_as_plain PROG SCENARIO [VAR=VALUE...]: PROG SCENARIO in ./plain
# without the library and in ./shim preloaded (VAR=VALUE... added, the
# report in $T/stats.json): both exit 0 and print the same stdout.
runs_as_plain() {
	local prog=$1 sc=$2 rc_plain rc_shim
	shift 2
	mkdir -p plain shim
	( cd plain && "$prog" "$sc" > ../plain.out 2> ../plain.err ) 2> /dev/null; rc_plain=$?
	( cd shim && env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" "$@" \
		"$prog" "$sc" > ../shim.out 2> ../shim.err ) 2> /dev/null; rc_shim=$?
	assert_eq "$rc_plain" 0 "plain exit status of '$sc'"
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$sc'"
	diff plain.out shim.out >&2 || fail "output of '$sc' differs"
}

mkdata() { head -c "$2" /dev/urandom > "$1"; }

# nginx_conf PORT MAIN HTTP: ./nginx.conf for nginx serving $T/www on
# 127.0.0.1:PORT in the foreground, with sendfile off (the copy loop the
# library serves), its pid file, error log and temporary files ($T/tmp,
# which must exist) in $T. MAIN and HTTP: more directives for the main
# context and the http block.
nginx_conf() {
	cat > nginx.conf <<-EOF
		$2
		daemon off;
		pid $T/nginx.pid.file;
		error_log $T/nginx.err;
		events { worker_connections 64; }
		http {
		    access_log off;
		    sendfile off;
		    $3
		    client_body_temp_path $T/tmp/body;
		    proxy_temp_path $T/tmp/proxy;
		    fastcgi_temp_path $T/tmp/fastcgi;
		    uwsgi_temp_path $T/tmp/uwsgi;
		    scgi_temp_path $T/tmp/scgi;
		    server { listen 127.0.0.1:$1; root $T/www; }
		}
	EOF
}

# haproxy_cfg MODE PORT ORIGIN_PORT: ./haproxy.cfg for one haproxy thread
# relaying 127.0.0.1:PORT to 127.0.0.1:ORIGIN_PORT in MODE (tcp, http).
haproxy_cfg() {
	cat > haproxy.cfg <<CFG
global
	maxconn 64
	nbthread 1
defaults
	mode $1
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend f
	bind 127.0.0.1:$2
	default_backend b
backend b
	server origin 127.0.0.1:$3
CFG
}

# paired_runs TRIES WHAT MET PROG ARGS...: PROG ARGS plain (stdout in
# ./plain.out) and preloaded (./shim.out, the report in $T/stats.json),
# each under a 60 s limit, as a pair, again until the command MET says the
# pair met WHAT (the race the test is about) - at most TRIES pairs; fails
# if none did. Leaves the exit statuses in rc_plain and rc_shim.
paired_runs() {
	local tries=$1 what=$2 met=$3 try
	shift 3
	for try in $(seq 1 "$tries"); do
		rc_plain=0 rc_shim=0
		timeout 60 "$@" > plain.out 2> plain.err || rc_plain=$?
		rm -f "$T/stats.json"
		env LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$T/stats.json" timeout 60 "$@" \
			> shim.out 2> shim.err || rc_shim=$?
		"$met" && return 0
	done
	fail "no pair of runs met $what in $tries tries"
}

run_tests() {
	local pass=0 failc=0 t
	for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
		T=$(mktemp -d /tmp/nb-t.XXXXXX)
		if ( cd "$T" && T=$T && timeout_guard "$t" ); then
			echo "  ok   $t"; pass=$((pass + 1))
		else
			echo "  FAIL $t"; failc=$((failc + 1))
		fi
		# Stop anything the test left behind, by recorded PID only.
		for p in "$T"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
		rm -rf "$T"
	done
	echo $(( $(cat "$NB_RESULTS/pass" 2>/dev/null || echo 0) + pass )) > "$NB_RESULTS/pass"
	echo $(( $(cat "$NB_RESULTS/fail" 2>/dev/null || echo 0) + failc )) > "$NB_RESULTS/fail"
}

timeout_guard() {
	( "$1" ) &
	local pid=$! rc
	# The guard's sleep must die with the guard, or it holds the output
	# pipe of whoever runs the suite open for TEST_TIMEOUT seconds.
	(
		trap 'kill "$s" 2>/dev/null; exit 0' TERM
		sleep "$TEST_TIMEOUT" & s=$!
		wait "$s" && kill -TERM "$pid" 2>/dev/null
	) &
	local guard=$!
	wait "$pid"; rc=$?
	kill "$guard" 2>/dev/null; wait "$guard" 2>/dev/null
	return $rc
}
