#!/usr/bin/env bash
# demo.sh - nobounce on real, unmodified programs (`make demo`).
#
# A 256 MiB random file is served over loopback TCP by programs that copy
# it with read()+write()/sendto() through a user-space buffer:
#   python3 -m http.server   read(64K) + sendto(), downloaded by curl
#   socat -u FILE:f TCP:..   read(8K) + write()
#   GNU cat f > tcp socket   read(128K) + write()
# each run plain, with the library preloaded (mode "on": zero-copy where
# the loop qualifies) and in observe
# mode, interleaved over DEMO_ROUNDS rounds (default 5). Every transfer is
# checked (byte count and sha256 against the source); the table shows the
# medians of throughput and of the sending process's CPU time per GB.
# Then it prints what observe mode found in each sender.
#
# Environment: DEMO_ROUNDS (default 5), DEMO_SIZE_MB (default 256).
# Servers bind 127.0.0.1 only, run under `timeout`, and are stopped by
# their recorded PIDs. Needs python3, curl, socat, coreutils, iproute2
# (scripts/deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIB=$ROOT/build/libnobounce.so
ROUNDS=${DEMO_ROUNDS:-5}
SIZE_MB=${DEMO_SIZE_MB:-256}
PY=/usr/bin/python3 # Debian's, not a pyenv shim: the program under test
LIMIT=170           # seconds any server or sender may live

case $ROUNDS in '' | *[!0-9]* | 0) echo "demo.sh: DEMO_ROUNDS must be a positive integer" >&2; exit 2 ;; esac
case $SIZE_MB in '' | *[!0-9]* | 0) echo "demo.sh: DEMO_SIZE_MB must be a positive integer" >&2; exit 2 ;; esac
for t in "$PY" curl socat timeout ss; do
	command -v "$t" > /dev/null 2>&1 || { echo "demo.sh: needs $t (run: make deps)" >&2; exit 1; }
done
[ -f "$LIB" ] || make -s lib

# ---- scratch space and cleanup -------------------------------------------

need_kb=$((SIZE_MB * 1024 * 7)) # source + up to 4 received copies + slack
base=/dev/shm
avail=$(df -Pk "$base" 2> /dev/null | awk 'NR == 2 { print $4 }')
if [ -z "$avail" ] || [ "$avail" -lt "$need_kb" ]; then base=/tmp; fi
W=$(mktemp -d "$base/nb-demo.XXXXXX")
# `timeout` wrappers of the servers we started and have not reaped yet:
# only these PIDs are ever signalled (a reaped PID may be reused).
declare -A LIVE=()
started() { LIVE[$1]=1; }
reaped() { unset "LIVE[$1]"; }
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local p
	for p in "${!LIVE[@]}"; do kill "$p" 2> /dev/null || true; done
	for p in "${!LIVE[@]}"; do wait "$p" 2> /dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CLEAN=(env -u LD_PRELOAD)
for v in $(env | sed -n 's/^\(NOBOUNCE_[A-Za-z0-9_]*\)=.*/\1/p'); do CLEAN+=(-u "$v"); done

VARIANTS=(plain preloaded observe)
variant_env() { # variant tag -> VAR=value words for env
	case $1 in
	plain) echo "" ;;
	preloaded) echo "LD_PRELOAD=$LIB NOBOUNCE_STATS=$W/stats.$2.%p.json" ;;
	observe) echo "LD_PRELOAD=$LIB NOBOUNCE_MODE=observe" ;;
	esac
}

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
listening() { [ -n "$(ss -Hltn "sport = :$1" 2> /dev/null)" ]; }
wait_listen() {
	for _ in $(seq 200); do listening "$1" && return 0; sleep 0.05; done
	echo "demo.sh: nothing listens on 127.0.0.1:$1" >&2
	return 1
}
ticks() { # utime+stime of a live process, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
HZ=$(getconf CLK_TCK)
# sha256 with Python's hashlib (OpenSSL, SHA-NI where present): several
# times faster than sha256sum, which keeps the demo short.
sha256() {
	"$PY" -c '
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    while b := f.read(1 << 20):
        h.update(b)
print(h.hexdigest())' "$1"
}

# ---- the data ---------------------------------------------------------------

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "## nobounce demo: copy loops in unmodified programs"
echo
echo "machine: kernel $(uname -r), ${cpu:-$(uname -m)}, nproc $(nproc); scratch: $W"
echo "library: $LIB ($(git -C "$ROOT" describe --always --dirty 2> /dev/null || echo '?'))"
echo
mkdir -p "$W/www"
SRC=$W/www/data.bin
SIZE=$((SIZE_MB * 1024 * 1024))
printf 'creating %d MiB of random data ... ' "$SIZE_MB"
head -c "$SIZE" /dev/urandom > "$SRC"
SRC_SHA=$(sha256 "$SRC")
echo "sha256 ${SRC_SHA:0:16}..."
echo

RES=$W/results.txt # workload variant round transfers verified bytes seconds cpu_seconds
: > "$RES"
OUT=$W/recv.bin

verify() { # file -> prints "bytes ok" for a received copy, then empties it
	local bytes sha
	bytes=$(stat -c %s "$1" 2> /dev/null || echo 0)
	sha=$(sha256 "$1" 2> /dev/null || echo none)
	if [ "$sha" = "$SRC_SHA" ] && [ "$bytes" = "$SIZE" ]; then echo "$bytes 1"; else echo "$bytes 0"; fi
	: > "$1" # a failed transfer must not leave a previous good copy behind
}

# ---- workload 1: python3 -m http.server, one server per variant ------------

declare -A HTTP_PORT HTTP_PID HTTP_WRAP
for v in "${VARIANTS[@]}"; do
	port=$(free_port)
	# shellcheck disable=SC2046 # variant_env is a list of VAR=value words
	(cd "$W/www" && exec timeout "$LIMIT" "${CLEAN[@]}" $(variant_env "$v" http) \
		"$PY" -m http.server --bind 127.0.0.1 "$port") > "$W/http.$v.log" 2>&1 &
	HTTP_WRAP[$v]=$!
	started $!
	HTTP_PORT[$v]=$port
done
for v in "${VARIANTS[@]}"; do
	wait_listen "${HTTP_PORT[$v]}"
	# timeout's only child is the server (env execs python3).
	HTTP_PID[$v]=$(awk '{ print $1 }' "/proc/${HTTP_WRAP[$v]}/task/${HTTP_WRAP[$v]}/children")
	# Warm-up, not measured: the first request imports modules and
	# touches the source's pages.
	curl -s -o /dev/null "http://127.0.0.1:${HTTP_PORT[$v]}/data.bin"
done

# One measurement = one curl fetching the file HTTP_REPEAT times (one
# connection and one server thread each): the server's CPU time comes from
# /proc/PID/stat in clock ticks (10 ms), so it needs about a second of
# transfer to be read to a few percent.
HTTP_REPEAT=${DEMO_HTTP_REPEAT:-4}
run_http() { # variant round
	local v=$1 r=$2 c0 c1 out args=() i bytes=0 ok=0 secs=0 b o code t
	for ((i = 0; i < HTTP_REPEAT; i++)); do
		args+=(-o "$OUT.$i" "http://127.0.0.1:${HTTP_PORT[$v]}/data.bin")
	done
	c0=$(ticks "${HTTP_PID[$v]}")
	out=$(curl -s -w '%{http_code} %{size_download} %{time_total}\n' "${args[@]}")
	c1=$(ticks "${HTTP_PID[$v]}")
	while read -r code _ t; do
		[ "$code" = 200 ] || echo "demo.sh: http $v: HTTP $code" >&2
		secs=$(awk -v a="$secs" -v b="$t" 'BEGIN { print a + b }')
	done <<< "$out"
	for ((i = 0; i < HTTP_REPEAT; i++)); do
		read -r b o <<< "$(verify "$OUT.$i")"
		bytes=$((bytes + b))
		ok=$((ok + o))
	done
	echo "http $v $r $HTTP_REPEAT $ok $bytes $secs $(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { print (b - a) / hz }')" >> "$RES"
}

# ---- workloads 2 and 3: socat and GNU cat send to a plain socat receiver ---

# The receiver is never preloaded; the measured process is the sender.
TIMEFORMAT='%R %U %S'
run_sender() { # workload variant round
	local w=$1 v=$2 r=$3 port rpid t b o
	port=$(free_port)
	timeout "$LIMIT" "${CLEAN[@]}" socat -u \
		"TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$OUT,creat,trunc" &
	rpid=$!
	started "$rpid"
	wait_listen "$port"
	# shellcheck disable=SC2046
	case $w in
	socat)
		{ time timeout "$LIMIT" "${CLEAN[@]}" $(variant_env "$v" socat) \
			socat -u "FILE:$SRC" "TCP:127.0.0.1:$port" 2> "$W/$w.$v.err"; } 2> "$W/time" ;;
	cat)
		# shellcheck disable=SC2016 # expanded by the inner bash
		{ time timeout "$LIMIT" "${CLEAN[@]}" $(variant_env "$v" cat) bash -c \
			'exec 3<>"/dev/tcp/127.0.0.1/$1" && exec cat "$2" >&3' _ "$port" "$SRC" \
			2> "$W/$w.$v.err"; } 2> "$W/time" ;;
	esac
	local rc=0
	wait "$rpid" || rc=$?
	reaped "$rpid"
	[ "$rc" = 0 ] || echo "demo.sh: $w receiver exited with $rc" >&2
	read -r t user sys < "$W/time"
	read -r b o <<< "$(verify "$OUT")"
	echo "$w $v $r 1 $o $b $t $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" >> "$RES"
}

# ---- the rounds ---------------------------------------------------------------

echo "commands (variants: plain; preloaded = LD_PRELOAD=$LIB;"
echo "          observe = LD_PRELOAD=$LIB NOBOUNCE_MODE=observe):"
echo "  (cd $W/www; $PY -m http.server --bind 127.0.0.1 PORT)"
echo "      + curl -s -o $OUT.0 http://127.0.0.1:PORT/data.bin ... ($HTTP_REPEAT downloads per measurement)"
echo "  socat -u FILE:$SRC TCP:127.0.0.1:PORT      (receiver, never preloaded: socat -u TCP-LISTEN:PORT,bind=127.0.0.1 OPEN:$OUT,creat,trunc)"
echo "  bash -c 'exec 3<>/dev/tcp/127.0.0.1/PORT && exec cat $SRC >&3'   (same receiver)"
echo
echo "running $ROUNDS interleaved rounds of 3 workloads x 3 variants ($((ROUNDS * 3 * (HTTP_REPEAT + 2))) transfers of $SIZE_MB MiB) ..."
start=$SECONDS
for ((r = 0; r < ROUNDS; r++)); do
	order=()
	for ((i = 0; i < 3; i++)); do order+=("${VARIANTS[$(((r + i) % 3))]}"); done
	printf '  round %d/%d (%s) ...' $((r + 1)) "$ROUNDS" "${order[*]}"
	for v in "${order[@]}"; do run_http "$v" "$r"; done
	for v in "${order[@]}"; do run_sender socat "$v" "$r"; done
	for v in "${order[@]}"; do run_sender cat "$v" "$r"; done
	printf ' %ds\n' $((SECONDS - start))
done

# Stop the HTTP servers with SIGINT: http.server exits cleanly on it, so the
# library's exit report runs (SIGTERM would kill python without it).
for v in "${VARIANTS[@]}"; do kill -INT "${HTTP_PID[$v]}" 2> /dev/null || true; done
for v in "${VARIANTS[@]}"; do
	for _ in $(seq 100); do kill -0 "${HTTP_WRAP[$v]}" 2> /dev/null || break; sleep 0.05; done
	kill "${HTTP_WRAP[$v]}" 2> /dev/null || true # still there: TERM via timeout
	wait "${HTTP_WRAP[$v]}" 2> /dev/null || true
	reaped "${HTTP_WRAP[$v]}"
done
echo

# ---- the table ------------------------------------------------------------------

status=0
"$PY" - "$RES" "$ROUNDS" "$SIZE" <<'EOF' || status=$?
import statistics, sys
res, rounds, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {}
for line in open(res):
    w, v, r, n, ok, b, secs, cpu = line.split()
    rows.setdefault((w, v), []).append((int(n), int(ok), int(b), float(secs), float(cpu)))
names = {
    "http": "python3 -m http.server -> curl (read 64K + sendto)",
    "socat": "socat -u FILE: TCP: (read 8K + write)",
    "cat": "GNU cat file > TCP socket (read 128K + write)",
}
variants = ["plain", "preloaded", "observe"]
print(f"median (min-max) over {rounds} interleaved rounds; MB = 10^6 bytes, GB = 10^9 bytes")
print("CPU = user+system time of the sending process (the server for http.server)")
print()
print("| workload | metric | plain | preloaded (mode on) | observe |")
print("|---|---|---:|---:|---:|")
bad = 0
total = 0
for w in ["http", "socat", "cat"]:
    mbs, cpu = [], []
    for v in variants:
        runs = rows.get((w, v), [])
        total += sum(n for n, ok, b, s, c in runs)
        bad += sum(n - ok for n, ok, b, s, c in runs)
        good = [x for x in runs if x[0] == x[1]]  # measurements whose every transfer verified
        if good:
            t = [b / s / 1e6 for n, ok, b, s, c in good]
            u = [c / (b / 1e9) for n, ok, b, s, c in good]
            mbs.append(f"{statistics.median(t):.0f} ({min(t):.0f}-{max(t):.0f})")
            cpu.append(f"{statistics.median(u):.2f} ({min(u):.2f}-{max(u):.2f})")
        else:
            mbs.append("FAILED")
            cpu.append("FAILED")
    print(f"| {names[w]} | throughput MB/s | " + " | ".join(mbs) + " |")
    print(f"| | CPU s/GB | " + " | ".join(cpu) + " |")
print()
print(f"verified: {total - bad}/{total} transfers received exactly {size} bytes "
      f"with the source's sha256")
sys.exit(1 if bad else 0)
EOF

cat <<'EOF'

In mode "on" an armed loop whose source is a regular file is served by
the kernel (sendfile here): the read leaves the buffer guarded instead of
copying, the write moves the file's bytes. Loops with chunks below
NOBOUNCE_MIN_CHUNK (16K by default; socat's 8K, for one) are left plain.
"observe" changes nothing and reports what it found. On loopback the
receiver often sets the pace, so the CPU per GB of the sender is the
figure to watch: with sendfile it is the receiver that reads the file's
pages from memory first (write(2) had copied them, cache-hot, into the
socket), so a receiver that is the slower side gets slower - a
hand-written sendfile loop does the same (README, "Measured").
EOF

# ---- what the library saw ----------------------------------------------------------

armed() { # tag -> "pairs armed: N" from the mode-on stats files
	"$PY" - "$W" "$1" <<'EOF'
import glob, json, sys
arms = loops = 0
min_chunk = None
chunks = set()
for f in glob.glob(f"{sys.argv[1]}/stats.{sys.argv[2]}.*.json"):
    try:
        j = json.load(open(f))
    except ValueError:
        continue
    arms += j.get("counters", {}).get("arms", 0)
    min_chunk = j.get("config", {}).get("min_chunk", min_chunk)
    for l in j.get("loops", []):
        loops += 1
        chunks.update(l.get("chunks", {}).keys())
print(f"mode on (NOBOUNCE_STATS of every round): pairs armed {arms} times, "
      f"{loops} loop record{'' if loops == 1 else 's'}")
if loops and arms == 0 and min_chunk:
    print(f"  not armed: its chunks ({', '.join(sorted(chunks))}) are below NOBOUNCE_MIN_CHUNK "
          f"({min_chunk // 1024} KiB by default), so mode on leaves this loop alone even "
          "though observe mode names a kernel path for it")
EOF
}

echo
echo "### observe report: python3 -m http.server (one server: all its downloads, warm-up included)"
grep '^nobounce:' "$W/http.observe.log" || echo "(no report: the server did not exit cleanly)"
armed http
for w in socat cat; do
	echo
	echo "### observe report: $w (last round)"
	grep '^nobounce:' "$W/$w.observe.err" || echo "(no report)"
	armed "$w"
done
echo
echo "demo took $((SECONDS))s"
exit "$status"
