#!/usr/bin/env bash
# bench-netns.sh - NOBOUNCE_SEND_CHUNK (the largest single sendfile of a
# deferred buffer into a stream socket) on a link that is not loopback:
# the copier in one network namespace, its receiver in another, joined by
# a veth pair. Loopback has a 64K MTU and no offloads; a veth has the
# 1500-byte MTU, GSO/TSO/GRO and a qdisc of a real interface. (It is still
# not a NIC: without RPS the receiver's protocol work runs in softirq on
# the sending CPU, as on loopback; the "rps" link moves it to the second
# CPU, as a NIC's interrupt on another CPU would.)
#
# Per run: build/prog/kcopy in namespace A sends a warm tmpfs file to a
# `kcopy -S` server in namespace B (10.231.0.1 -> 10.231.0.2, private,
# nothing leaves the namespaces) that splices to /dev/null; the clock
# stops when the server has answered with its byte count (kcopy -D).
# Methods, interleaved in every round (the order rotates from round to
# round, as do the links, placements and chunk sizes):
#   plain      kcopy file-tcp plain CHUNK (read into a malloc'd buffer,
#              write it)
#   SC=N       the same, preloaded (build/libnobounce.so, library defaults
#              but NOBOUNCE_SEND_CHUNK=N), one per BENCH_SEND_CHUNKS size
#   sendfile   kcopy file-tcp sendfile CHUNK (the hand-written loop)
# Link variants (BENCH_LINKS):
#   default    veth defaults (GSO/TSO on, GRO off)
#   nooffload  ethtool -K gso off tso off gro off on both ends
#   rps        defaults, and B's receive queue steered (rps_cpus) to the
#              second CPU
#   delay:T    tc netem delay T on A's end (the data direction): needs
#              CONFIG_NET_SCH_NETEM; left out, with a notice, when the
#              kernel lacks it and BENCH_LINKS was not given
#   rate:R     tc tbf rate R (e.g. 4gbit) on A's end: a link slower than
#              the CPU, as most NICs are for one flow
# Placements (BENCH_AFFINITY): same (copier and server on the first
# allowed CPU) and split (server on the second), by taskset.
#
# Writes results/bench-netns.md (BENCH_OUT): medians of MB/s and CPU s/GB
# of the copying process per variant with [per-round ranges], the
# server's CPU s/GB, the ratios to the hand-written sendfile loop and to
# plain, the best NOBOUNCE_SEND_CHUNK per variant, and results/...json.
#
# Requires root (namespaces, veth, ethtool, tc). Namespaces are named
# nb-bench-a.PID / nb-bench-b.PID and removed on exit, also on error or a
# signal; the two servers are stopped by their recorded PIDs.
#
# Environment:
#   BENCH_ROUNDS       rounds (default 5)
#   BENCH_SIZE_MB      MiB per run (default 512; 128 with BENCH_QUICK=1)
#   BENCH_CHUNKS       the loop's read/write size (default "64K 1M")
#   BENCH_SEND_CHUNKS  NOBOUNCE_SEND_CHUNK values (default
#                      "16K 32K 64K 128K 256K 1M")
#   BENCH_LINKS        default "default nooffload rps rate:4gbit delay:1ms"
#                      (BENCH_QUICK=1: "default nooffload rps")
#   BENCH_AFFINITY     default "same split"
#   BENCH_OUT          output name (default results/bench-netns)
set -euo pipefail
cd "$(dirname "$0")/.."
ME=bench-netns.sh
die() { echo "$ME: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, veth, ethtool, tc)"
command -v ip > /dev/null && ip netns list > /dev/null 2>&1 || die "'ip netns' is unavailable"
command -v ethtool > /dev/null || sh scripts/deps.sh
command -v ethtool > /dev/null || die "ethtool is missing (scripts/deps.sh)"
command -v tc > /dev/null || die "tc is missing (iproute2)"

QUICK=${BENCH_QUICK:-0}
[[ $QUICK =~ ^[01]$ ]] || die "BENCH_QUICK must be 0 or 1"
ROUNDS=${BENCH_ROUNDS:-5}
SIZE_MB=${BENCH_SIZE_MB:-$([ "$QUICK" = 1 ] && echo 128 || echo 512)}
CHUNKS=${BENCH_CHUNKS:-64K 1M}
SEND_CHUNKS=${BENCH_SEND_CHUNKS:-16K 32K 64K 128K 256K 1M}
LINKS_GIVEN=${BENCH_LINKS:+1}
LINKS=${BENCH_LINKS:-$([ "$QUICK" = 1 ] && echo "default nooffload rps" ||
	echo "default nooffload rps rate:4gbit delay:1ms")}
AFFINITY=${BENCH_AFFINITY:-same split}
OUT=${BENCH_OUT:-results/bench-netns}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MB must be a positive integer"
for c in $CHUNKS $SEND_CHUNKS; do
	[[ $c =~ ^[1-9][0-9]*[KM]?$ ]] || die "size '$c' is not N, NK or NM (BENCH_CHUNKS, BENCH_SEND_CHUNKS)"
done
[ -n "$CHUNKS" ] && [ -n "$SEND_CHUNKS" ] && [ -n "$LINKS" ] && [ -n "$AFFINITY" ] ||
	die "BENCH_CHUNKS, BENCH_SEND_CHUNKS, BENCH_LINKS and BENCH_AFFINITY must not be empty"
for a in $AFFINITY; do
	[[ $a =~ ^(same|split)$ ]] || die "BENCH_AFFINITY: '$a' is not same or split"
done
for l in $LINKS; do
	[[ $l =~ ^(default|nooffload|rps|delay:[0-9]+(\.[0-9]+)?(us|ms)|rate:[0-9]+[kmg]?bit)$ ]] ||
		die "BENCH_LINKS: '$l' is not default, nooffload, rps, delay:Nms or rate:Ngbit"
done
read -r -a CPUS <<< "$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0))[:2])')"
if [ "${#CPUS[@]}" -lt 2 ]; then
	[[ " $AFFINITY " != *" split "* ]] || die "placement split needs two CPUs, this process may use one"
	[[ " $LINKS " != *" rps "* ]] || die "link rps needs two CPUs, this process may use one"
	CPUS[1]=${CPUS[0]}
fi
avail_mb=$(( $(stat -f -c '%a * %S' /dev/shm) / 1048576 ))
[ "$avail_mb" -gt $((SIZE_MB + 64)) ] || [ -e /dev/shm/nb-kcopy.src ] ||
	die "/dev/shm lacks room for $SIZE_MB MiB (lower BENCH_SIZE_MB)"
[ -x build/prog/kcopy ] && [ -e build/libnobounce.so ] || make -s lib progs

NSA=nb-bench-a.$$ NSB=nb-bench-b.$$
DEVA=nbb$$a DEVB=nbb$$b
ADDRA=10.231.0.1 ADDRB=10.231.0.2
TMP=$(mktemp -d /tmp/nb-bench-netns.XXXXXX)
SRV_PIDS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for p in "${SRV_PIDS[@]}"; do
		kill "$p" 2> /dev/null || :
		wait "$p" 2> /dev/null || :
	done
	ip netns del "$NSA" 2> /dev/null || :
	ip netns del "$NSB" 2> /dev/null || :
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Is netem there at all? (A kernel without CONFIG_NET_SCH_NETEM says
# "Specified qdisc kind is unknown".) Probed on the pair made below.
ip netns add "$NSA"
ip netns add "$NSB"
ip link add "$DEVA" netns "$NSA" type veth peer name "$DEVB" netns "$NSB"
ip -n "$NSA" addr add "$ADDRA/24" dev "$DEVA"
ip -n "$NSB" addr add "$ADDRB/24" dev "$DEVB"
for ns in "$NSA" "$NSB"; do ip -n "$ns" link set lo up; done
ip -n "$NSA" link set "$DEVA" up
ip -n "$NSB" link set "$DEVB" up
NETEM=1
if ip netns exec "$NSA" tc qdisc add dev "$DEVA" root netem delay 1ms 2> /dev/null; then
	ip netns exec "$NSA" tc qdisc del dev "$DEVA" root
else
	NETEM=0
fi
DROPPED=""
if [ "$NETEM" = 0 ]; then
	keep=""
	for l in $LINKS; do
		if [[ $l == delay:* ]]; then
			[ -z "$LINKS_GIVEN" ] || die "BENCH_LINKS: '$l' needs tc netem, which this kernel lacks (CONFIG_NET_SCH_NETEM)"
			DROPPED="$DROPPED $l"
		else
			keep="$keep $l"
		fi
	done
	LINKS=${keep# }
	[ -z "$DROPPED" ] || echo "$ME: no tc netem in this kernel (CONFIG_NET_SCH_NETEM): left out$DROPPED"
fi

# The two receiving servers, one per CPU; alive for the whole run (the
# -T bound is generous: they are stopped by PID at the end).
for i in 0 1; do
	ip netns exec "$NSB" taskset -c "${CPUS[$i]}" build/prog/kcopy -T 36000 \
		-S "$ADDRB:$((5001 + i))" > "$TMP/server$i.log" 2>&1 &
	SRV_PIDS+=($!)
done
for i in 0 1; do
	for _ in $(seq 50); do
		grep -q status=listening "$TMP/server$i.log" && break
		sleep 0.1
	done
	grep -q status=listening "$TMP/server$i.log" || die "server $i did not start: $(cat "$TMP/server$i.log")"
	ip netns exec "$NSA" build/prog/kcopy -s 4K -f "$TMP/probe" -T 10 -D "$ADDRB:$((5001 + i))" \
		file-tcp plain 4K > /dev/null 2>&1 || die "no connection $ADDRA -> $ADDRB:$((5001 + i)) over the veth pair"
done

export NB_ROUNDS=$ROUNDS NB_SIZE_MB=$SIZE_MB NB_CHUNKS=$CHUNKS NB_SEND_CHUNKS=$SEND_CHUNKS \
	NB_LINKS=$LINKS NB_DROPPED=$DROPPED NB_AFFINITY=$AFFINITY NB_OUT=$OUT NB_NSA=$NSA NB_NSB=$NSB \
	NB_DEVA=$DEVA NB_DEVB=$DEVB NB_ADDRB=$ADDRB NB_CPU0=${CPUS[0]} NB_CPU1=${CPUS[1]} NB_TMP=$TMP
python3 - <<'EOF'
import json, os, statistics, subprocess, sys, time

E = os.environ
ROOT = os.getcwd()
KCOPY = os.path.join(ROOT, "build/prog/kcopy")
LIB = os.path.join(ROOT, "build/libnobounce.so")
rounds, size_mb = int(E["NB_ROUNDS"]), int(E["NB_SIZE_MB"])
chunks, send_chunks = E["NB_CHUNKS"].split(), E["NB_SEND_CHUNKS"].split()
links, affs = E["NB_LINKS"].split(), E["NB_AFFINITY"].split()
dropped = E["NB_DROPPED"].split()
out, tmp = E["NB_OUT"], E["NB_TMP"]
nsa, nsb, deva, devb = E["NB_NSA"], E["NB_NSB"], E["NB_DEVA"], E["NB_DEVB"]
cpu0, cpu1 = E["NB_CPU0"], E["NB_CPU1"]
port = {"same": 5001, "split": 5002}
src = "/dev/shm/nb-kcopy.src"
size = f"{size_mb}M"
methods = ["plain"] + [f"SC={c}" for c in send_chunks] + ["sendfile"]

def sh(ns, *cmd):
    subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True)

def tc_del(ns, dev):
    subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"],
                   capture_output=True)

def set_link(l):
    """Back to the veth defaults, then the variant."""
    for ns, dev in ((nsa, deva), (nsb, devb)):
        tc_del(ns, dev)
        sh(ns, "ethtool", "-K", dev, "gso", "on", "tso", "on", "gro", "off")
    sh(nsb, "sh", "-c", f"echo 0 > /sys/class/net/{devb}/queues/rx-0/rps_cpus")
    if l == "nooffload":
        for ns, dev in ((nsa, deva), (nsb, devb)):
            sh(ns, "ethtool", "-K", dev, "gso", "off", "tso", "off", "gro", "off")
    elif l == "rps":
        sh(nsb, "sh", "-c", f"printf %x {1 << int(cpu1)} > /sys/class/net/{devb}/queues/rx-0/rps_cpus")
    elif l.startswith("delay:"):
        # limit: netem's default of 1000 packets would cap the window
        sh(nsa, "tc", "qdisc", "add", "dev", deva, "root", "netem", "delay", l[6:], "limit", "100000")
    elif l.startswith("rate:"):
        sh(nsa, "tc", "qdisc", "add", "dev", deva, "root", "tbf", "rate", l[5:], "burst", "512kb",
           "latency", "20ms")

def run(l, a, chunk, m, r):
    kmethod = "sendfile" if m == "sendfile" else "plain"
    pre = []
    stats = None
    if m.startswith("SC="):
        stats = os.path.join(tmp, f"stats.{r}.json")
        pre = ["env", f"LD_PRELOAD={LIB}", f"NOBOUNCE_STATS={stats}",
               f"NOBOUNCE_SEND_CHUNK={m[3:]}"]
    cmd = ["ip", "netns", "exec", nsa, "taskset", "-c", cpu0, *pre, KCOPY, "-s", size, "-f", src,
           "-T", "120", "-D", f"{E['NB_ADDRB']}:{port[a]}", "file-tcp", kmethod, chunk]
    e = {k: v for k, v in E.items() if not k.startswith(("NOBOUNCE_", "NB_")) and k != "LD_PRELOAD"}
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=300)
    kv = dict(w.split("=", 1) for w in p.stdout.split() if "=" in w)
    res = {"round": r, "link": l, "affinity": a, "chunk": chunk, "method": m,
           "status": kv.get("status", f"failed rc={p.returncode}")}
    if res["status"] == "ok":
        gb = int(kv["bytes"]) / 1e9
        res.update(MBps=float(kv["MBps"]), cpu_s_per_GB=float(kv["cpu_s_per_GB"]),
                   peer_cpu_s_per_GB=float(kv["peer_cpu_s"]) / gb, calls=int(kv["calls"]))
    else:
        print(f"\n  {l} {a} {chunk} {m}: {res['status']}: {p.stderr.strip()[:300]}", flush=True)
    if stats:
        try:
            c = json.load(open(stats))["counters"]
            res["armed"] = c["arms"] > 0 and c["forwarded_writes"] > 0
            os.unlink(stats)
        except (OSError, ValueError, KeyError):
            res["armed"] = None
    return res

def rot(xs, k):
    k %= len(xs)
    return xs[k:] + xs[:k]

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), os.uname().machine)
machine = f"kernel {os.uname().release}, {cpu}, nproc {os.cpu_count()}"
invoked = " ".join(f"{k}={v}" for k, v in sorted(E.items()) if k.startswith("BENCH_")) + \
    " bash scripts/bench-netns.sh"
cmdline = (f"ip netns exec nb-bench-a.PID taskset -c {cpu0} [env LD_PRELOAD=build/libnobounce.so "
           f"NOBOUNCE_SEND_CHUNK=N] build/prog/kcopy -s {size} -f {src} -T 120 "
           f"-D {E['NB_ADDRB']}:PORT file-tcp plain|sendfile CHUNK; server: ip netns exec "
           f"nb-bench-b.PID taskset -c {cpu0}|{cpu1} build/prog/kcopy -S {E['NB_ADDRB']}:PORT")
print("## nobounce: NOBOUNCE_SEND_CHUNK across a veth pair between two namespaces\n")
print(f"machine: {machine}\ncommand: {cmdline}")
print(f"rounds: {rounds}, {size_mb} MiB per run, chunks: {' '.join(chunks)}, links: {' '.join(links)}, "
      f"placements: {' '.join(affs)}")
load_start = open("/proc/loadavg").read().split()[:3]
print(f"load average at start: {' '.join(load_start)}\n", flush=True)
created = not os.path.exists(src)
subprocess.run([KCOPY, "-p", "-s", size, "-f", src], check=True, capture_output=True)

runs = []
t0 = time.time()
try:
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}:", end="", flush=True)
        for l in rot(links, r):
            set_link(l)
            for a in rot(affs, r):
                for c in rot(chunks, r):
                    for m in rot(methods, r):
                        runs.append(run(l, a, c, m, r))
            print(f" {l}", end="", flush=True)
        print(f" ({time.time() - t0:.0f}s)", flush=True)
    set_link("default")
finally:
    if created:
        try:
            os.unlink(src)
        except OSError:
            pass
wall = time.time() - t0
load_end = open("/proc/loadavg").read().split()[:3]

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def rng(xs, f="{:.0f}"):
    return f" [{f.format(min(xs))}..{f.format(max(xs))}]" if len(xs) > 1 else ""

lines, summary, best = [], {}, []
for l in links:
    for a in affs:
        for c in chunks:
            sel = {m: [x for x in runs if x["link"] == l and x["affinity"] == a and x["chunk"] == c
                       and x["method"] == m and x["status"] == "ok"] for m in methods}
            def paired(m1, m2, k):
                by = {x["round"]: x[k] for x in sel[m2]}
                return [x[k] / by[x["round"]] for x in sel[m1] if by.get(x["round"])]
            head = ["method", "MB/s [range]", "CPU s/GB [range]", "server CPU s/GB",
                    "speed / sendfile [range]", "CPU / sendfile", "speed / plain [range]", "loop calls",
                    "armed"]
            lines += [f"### link {l}, placement {a}, loop chunk {c}", "",
                      "| " + " | ".join(head) + " |", "|---|" + "|".join(["---:"] * (len(head) - 1)) + "|"]
            g = {}
            for m in methods:
                xs = sel[m]
                mb = [x["MBps"] for x in xs]
                cp = [x["cpu_s_per_GB"] for x in xs]
                pk, pkc, pp = paired(m, "sendfile", "MBps"), paired(m, "sendfile", "cpu_s_per_GB"), \
                    paired(m, "plain", "MBps")
                armed = [x.get("armed") for x in xs if "armed" in x]
                arm = "-" if not m.startswith("SC=") else ("yes" if armed and all(armed) else
                                                            "no" if armed and not any(armed) else "mixed")
                lines.append("| " + " | ".join([
                    m, f"{med(mb):.0f}{rng(mb)}", f"{med(cp):.3f}{rng(cp, '{:.3f}')}",
                    f"{med([x['peer_cpu_s_per_GB'] for x in xs]):.3f}",
                    f"{med(pk):.2f}{rng(pk, '{:.2f}')}", f"{med(pkc):.2f}",
                    f"{med(pp):.2f}{rng(pp, '{:.2f}')}", f"{med([x['calls'] for x in xs]):.0f}",
                    arm]) + " |")
                g[m] = {"MBps": med(mb), "MBps_range": [min(mb), max(mb)] if mb else None,
                        "cpu_s_per_GB": med(cp), "over_sendfile": med(pk),
                        "cpu_over_sendfile": med(pkc), "over_plain": med(pp), "armed": arm,
                        "spread": (max(mb) - min(mb)) / med(mb) if mb else None}
            lines.append("")
            summary[f"{l}/{a}/{c}"] = g
            pre = [m for m in methods if m.startswith("SC=")]
            fast = max(pre, key=lambda m: g[m]["MBps"])
            cheap = min(pre, key=lambda m: g[m]["cpu_s_per_GB"])
            d32 = g.get("SC=32K")
            best.append((l, a, c, fast, g[fast]["MBps"], g[fast]["over_sendfile"],
                         d32["MBps"] if d32 else float("nan"), cheap, g[cheap]["cpu_s_per_GB"],
                         d32["cpu_s_per_GB"] if d32 else float("nan")))

lines += ["### best NOBOUNCE_SEND_CHUNK per variant", "",
          "| link | placement | loop chunk | fastest | its MB/s | its speed / sendfile | 32K MB/s | "
          "least CPU | its CPU s/GB | 32K CPU s/GB |", "|---|---|---:|---|---:|---:|---:|---|---:|---:|"]
for l, a, c, f, fm, fs, d, ch, cc, dc in best:
    lines.append(f"| {l} | {a} | {c} | {f[3:]} | {fm:.0f} | {fs:.2f} | {d:.0f} | {ch[3:]} | "
                 f"{cc:.3f} | {dc:.3f} |")
spreads = [v["spread"] for g in summary.values() for v in g.values() if v["spread"] is not None]
noise = (f"noise: the spread (max-min)/median of MB/s over the rounds of one cell is "
         f"{med(spreads) * 100:.0f}% at the median, {max(spreads) * 100:.0f}% at worst"
         if spreads else "noise: no runs")
failed = sum(1 for x in runs if x["status"] != "ok")
lines += ["", noise + f"; {failed} of {len(runs)} runs failed.", "",
          f"Medians over {rounds} interleaved rounds, {size_mb} MiB per run; MB = 10^6 bytes, "
          "GB = 10^9 bytes; CPU is user+system of the copying process (the receiver's softirq work "
          "runs on the sending CPU unless the link is 'rps'), server CPU that of the receiving "
          "process. Ratios are medians of per-round paired ratios, [range] over rounds. "
          "'SC=N': the plain loop preloaded with NOBOUNCE_SEND_CHUNK=N; 'armed': its stats show "
          "armed pairs and writes served by the kernel."]
if dropped:
    lines += ["", f"Left out: {' '.join(dropped)} (this kernel has no tc netem, "
              "CONFIG_NET_SCH_NETEM)."]
text = "\n".join(lines)
print()
print(text)
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
hdr = ["# nobounce: NOBOUNCE_SEND_CHUNK across a veth pair between two namespaces", "",
       f"machine: {machine}", "", f"invoked: `{invoked}`", "", "command (per run):", "",
       f"    {cmdline}", "",
       f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {wall:.0f} s; load average at start "
       f"{' '.join(load_start)}, at end {' '.join(load_end)}", ""]
with open(out + ".md", "w") as f:
    f.write("\n".join(hdr) + "\n" + text + "\n")
with open(out + ".json", "w") as f:
    json.dump({"benchmark": "netns-send-chunk", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "machine": machine, "invoked": invoked, "command": cmdline, "rounds": rounds,
               "size_mib": size_mb, "chunks": chunks, "send_chunks": send_chunks, "links": links,
               "left_out": dropped, "placements": affs, "wall_s": wall, "cases": summary,
               "runs": runs}, f, indent=1)
print(f"\nwrote {out}.md and {out}.json ({wall:.0f} s)")
sys.exit(1 if failed else 0)
EOF
