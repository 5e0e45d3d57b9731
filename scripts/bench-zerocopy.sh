#!/usr/bin/env bash
# bench-zerocopy.sh - the unmodified copy loop with and without the library,
# next to the same loop hand-written with the kernel path
# (`make bench` runs it after bench.sh and bench-kernel.sh).
#
# Three methods, interleaved in every round (the order rotates from round
# to round, so drift of a noisy machine does not always hit one method):
#   plain      build/prog/kcopy DIR plain CHUNK: read() into a malloc'd
#              buffer, write() it out - the article's loop
#   preloaded  the same command with LD_PRELOAD=build/libnobounce.so and
#              the library's defaults (so it also shows where the library
#              chooses not to arm)
#   kernel     the loop hand-written with the direction's kernel call at
#              the same chunk: sendfile (file -> tcp), splice (file ->
#              pipe), copy_file_range (file -> file)
# Directions: file -> pipe whose reader splices to /dev/null, file ->
# loopback TCP whose receiver splices to /dev/null, file -> tmpfs file;
# and with a socket as the source (pipe-backed phantoms): tcp -> tmpfs
# file (a peer sendfile()s the source into the socket), tcp -> tcp relay,
# pipe -> tmpfs file (a peer splices the source into the pipe).
# The kernel loop for those is splice through a pipe.
# The source is a warm tmpfs file. Each preloaded run writes its exit
# stats (NOBOUNCE_STATS) to tell whether the library armed.
#
# Prints a markdown table per direction and placement with medians of MB/s
# and CPU s/GB of the copying process, and the ratios that the targets are
# stated in; writes results/bench-zerocopy.{md,json}. Never fails on a
# missed target: it reports.
#
# Environment:
#   BENCH_ROUNDS      rounds (default 3)
#   BENCH_SIZE_MB     MiB per run (default 1024; 256 with BENCH_QUICK=1)
#   BENCH_CHUNKS      chunk sizes (default "4K 16K 32K 64K 128K 1M")
#   BENCH_DIRS        default "file-pipe file-tcp file-file tcp-file tcp-tcp
#                     pipe-file"
#   BENCH_AFFINITY    placements for pipe/tcp, kcopy -A values
#                     (default "split same")
#   BENCH_KCOPY_ARGS  extra kcopy options for every run (e.g. -a: a
#                     page-aligned buffer, as cat, dd and socat have)
#   BENCH_OUT         output name (default results/bench-zerocopy)
#   BENCH_NB_ENV      NOBOUNCE_* settings for the preloaded runs, e.g.
#                     "NOBOUNCE_MIN_CHUNK_STREAM=32K" (default: none, so
#                     the library's defaults are measured)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
[ -x build/prog/kcopy ] && [ -e build/libnobounce.so ] || make -s all progs
exec "$PY" - "$@" <<'EOF'
import json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.getcwd()
KCOPY = os.path.join(ROOT, "build/prog/kcopy")
LIB = os.path.join(ROOT, "build/libnobounce.so")

def env(name, default):
    v = os.environ.get(name)
    return default if v is None or v == "" else v

def die(msg):
    print(f"bench-zerocopy.sh: {msg}", file=sys.stderr)
    sys.exit(2)

quick = env("BENCH_QUICK", "0") == "1"
try:
    rounds = int(env("BENCH_ROUNDS", "3"))
    size_mb = int(env("BENCH_SIZE_MB", "256" if quick else "1024"))
except ValueError:
    die("BENCH_ROUNDS and BENCH_SIZE_MB must be positive integers")
if rounds < 1 or size_mb < 1:
    die("BENCH_ROUNDS and BENCH_SIZE_MB must be positive integers")
chunks = env("BENCH_CHUNKS", "16K 64K 1M" if quick else "4K 16K 32K 64K 128K 1M").split()
dirs = env("BENCH_DIRS", "file-pipe file-tcp file-file tcp-file tcp-tcp pipe-file").split()
affs = env("BENCH_AFFINITY", "split same").split()
kargs = env("BENCH_KCOPY_ARGS", "").split()
out = env("BENCH_OUT", "results/bench-zerocopy")
KERNEL = {"file-pipe": "splice", "file-tcp": "sendfile", "file-file": "cfr",
          "tcp-file": "splice", "tcp-tcp": "splice", "pipe-file": "splice"}
for d in dirs:
    if d not in KERNEL:
        die(f"BENCH_DIRS: '{d}' is not one of {' '.join(KERNEL)}")
for a in affs:
    if a not in ("none", "split", "same"):
        die(f"BENCH_AFFINITY: '{a}' is not none, split or same")

src = "/dev/shm/nb-kcopy.src"
created = not os.path.exists(src)
st = os.statvfs("/dev/shm")
if st.f_bavail * st.f_frsize < (2 * size_mb + 64) << 20:
    die(f"/dev/shm lacks room for 2 x {size_mb} MiB (lower BENCH_SIZE_MB)")
tmp = tempfile.mkdtemp(prefix="nb-bench-zc.")

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), os.uname().machine)
machine = f"kernel {os.uname().release}, {cpu}, nproc {os.cpu_count()}"
size = f"{size_mb}M"

def placements(d):
    return affs if d not in ("file-file", "tcp-file", "pipe-file") else [affs[0]]

def run(d, a, method, chunk, r):
    kmethod = "plain" if method == "preloaded" else KERNEL[d] if method == "kernel" else "plain"
    cmd = [KCOPY, "-s", size, "-f", src, *kargs, "-A", a, d, kmethod, chunk]
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("NOBOUNCE_") or k == "LD_PRELOAD":
            del e[k]
    stats = None
    if method == "preloaded":
        stats = os.path.join(tmp, f"s.{d}.{a}.{chunk}.{r}.json")
        e["LD_PRELOAD"] = LIB
        e["NOBOUNCE_STATS"] = stats
        for kv in os.environ.get("BENCH_NB_ENV", "").split():
            k, _, v = kv.partition("=")
            e[k] = v
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=300)
    kv = dict(w.split("=", 1) for w in p.stdout.split() if "=" in w)
    res = {"round": r, "dir": d, "affinity": a, "method": method, "chunk": chunk,
           "status": kv.get("status", f"failed rc={p.returncode}")}
    if res["status"] == "ok":
        res["MBps"] = float(kv["MBps"])
        res["cpu_s_per_GB"] = float(kv["cpu_s_per_GB"])
    if stats:
        try:
            j = json.load(open(stats))
            c = j["counters"]
            res["armed"] = c["arms"] > 0 and c["forwarded_writes"] > 0
            res["forwarded_bytes"] = c["forwarded_bytes"]
            os.unlink(stats)
        except (OSError, ValueError, KeyError):
            res["armed"] = None
    if res["status"] != "ok":
        print(f"\n  {d} {a} {method} {chunk}: {res['status']}: {p.stderr.strip()[:300]}",
              flush=True)
    return res

invoked = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                   if k.startswith("BENCH_")) + " bash scripts/bench-zerocopy.sh"
cmdline = (f"[LD_PRELOAD=build/libnobounce.so] build/prog/kcopy -s {size} -f {src}"
           f"{' ' + ' '.join(kargs) if kargs else ''} -A PLACEMENT DIRECTION plain|sendfile|"
           f"splice|cfr CHUNK")
print("## nobounce: the unmodified loop, preloaded, against the hand-written kernel path\n")
print(f"machine: {machine}")
print(f"command: {cmdline}")
print(f"rounds: {rounds}, {size_mb} MiB per run, chunks: {' '.join(chunks)}")
load_start = open("/proc/loadavg").read().split()[:3]
print(f"load average at start: {' '.join(load_start)}\n")
print(f"preparing {src} ...", end="", flush=True)
subprocess.run([KCOPY, "-p", "-s", size, "-f", src], check=True, capture_output=True)
print(" done", flush=True)

methods = ["plain", "preloaded", "kernel"]
runs = []
t0 = time.time()
try:
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}:", end="", flush=True)
        for d in dirs:
            for a in placements(d):
                for c in chunks:
                    for i in range(3):
                        runs.append(run(d, a, methods[(r + i) % 3], c, r))
            print(f" {d}", end="", flush=True)
        print(f" ({time.time() - t0:.0f}s)", flush=True)
finally:
    if created:
        try:
            os.unlink(src)
        except OSError:
            pass
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
load_end = open("/proc/loadavg").read().split()[:3]

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def size_of(c):
    m = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(c[:-1]) * m[c[-1]] if c[-1] in m else int(c)

lines, summary, verdicts = [], {}, []
for d in dirs:
    for a in placements(d):
        label = d.replace("-", " -> ") + ("" if d == "file-file" else f", placement {a}")
        head = ["chunk", "plain MB/s", "plain CPU s/GB", "preloaded MB/s", "preloaded CPU s/GB",
                f"{KERNEL[d]} MB/s", f"{KERNEL[d]} CPU s/GB", "preloaded/plain",
                f"preloaded/{KERNEL[d]} speed", f"preloaded/{KERNEL[d]} CPU", "armed"]
        lines += [f"### {label}", "", "| " + " | ".join(head) + " |",
                  "|" + "|".join(["---:"] * len(head)) + "|"]
        g = {}
        for c in chunks:
            sel = {m: [x for x in runs if x["dir"] == d and x["affinity"] == a and
                       x["chunk"] == c and x["method"] == m and x["status"] == "ok"]
                   for m in methods}
            v = {m: (med([x["MBps"] for x in sel[m]]), med([x["cpu_s_per_GB"] for x in sel[m]]))
                 for m in methods}
            # paired per-round ratios: the runs of one round ran back to back
            def paired(m1, m2, k):
                by = {x["round"]: x[k] for x in sel[m2]}
                return [x[k] / by[x["round"]] for x in sel[m1] if x["round"] in by and by[x["round"]]]
            pp = paired("preloaded", "plain", "MBps")
            pk = paired("preloaded", "kernel", "MBps")
            pkc = paired("preloaded", "kernel", "cpu_s_per_GB")
            kp = paired("kernel", "plain", "MBps")
            armed = [x.get("armed") for x in sel["preloaded"]]
            arm = "yes" if armed and all(armed) else "no" if armed and not any(armed) else "mixed"
            rng = lambda xs: f" [{min(xs):.2f}..{max(xs):.2f}]" if len(xs) > 1 else ""
            row = [c, f"{v['plain'][0]:.0f}", f"{v['plain'][1]:.3f}",
                   f"{v['preloaded'][0]:.0f}", f"{v['preloaded'][1]:.3f}",
                   f"{v['kernel'][0]:.0f}", f"{v['kernel'][1]:.3f}",
                   f"{med(pp):.2f}{rng(pp)}", f"{med(pk):.2f}{rng(pk)}", f"{med(pkc):.2f}", arm]
            lines.append("| " + " | ".join(row) + " |")
            g[c] = {"plain": v["plain"], "preloaded": v["preloaded"], "kernel": v["kernel"],
                    "preloaded_over_plain": pp, "preloaded_over_kernel": pk,
                    "preloaded_over_kernel_cpu": pkc, "kernel_over_plain": kp, "armed": arm}
            # The issue's targets, one verdict per cell they apply to.
            n = size_of(c)
            sp, cp, pl = med(pk), med(pkc), med(pp)
            kernel_wins = med(kp) > 1.0
            if not kernel_wins:
                ok = pl >= 0.97
                verdicts.append((label, c, "kernel path does not beat plain: within 3% of plain",
                                 f"{pl:.2f}x plain, armed {arm}", ok))
            elif n >= 32 << 10:
                verdicts.append((label, c, ">= 0.9x kernel speed, <= 1.15x its CPU",
                                 f"{sp:.2f}x speed, {cp:.2f}x CPU", sp >= 0.9 and cp <= 1.15))
            elif n >= 16 << 10:
                verdicts.append((label, c, ">= 0.8x kernel speed", f"{sp:.2f}x", sp >= 0.8))
            if d == "file-pipe" and n == 64 << 10:
                verdicts.append((label, c, ">= 2x plain", f"{pl:.2f}x", pl >= 2.0))
        summary[f"{d}/{a}"] = g
        lines.append("")

lines += ["### targets", "", "| direction | chunk | target | measured | met |",
          "|---|---:|---|---|---|"]
for label, c, what, got, ok in verdicts:
    lines.append(f"| {label} | {c} | {what} | {got} | {'yes' if ok else 'NO'} |")
met = sum(1 for v in verdicts if v[4])
lines += ["", f"{met} of {len(verdicts)} targets met.", "",
          f"Medians over {rounds} interleaved rounds, {size_mb} MiB per run; MB = 10^6 bytes, "
          "GB = 10^9 bytes; CPU is user+system of the copying process (on loopback TCP the "
          "receiver's softirq work is mostly charged to it). Ratios are medians of per-round "
          "paired ratios, [range] over rounds. 'armed': the preloaded run's stats show armed "
          "pairs and writes served by the kernel (no: the library chose the plain path)."]
text = "\n".join(lines)
print()
print(text)
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
hdr = ["# nobounce: the unmodified loop, preloaded, against the hand-written kernel path", "",
       f"machine: {machine}", "", f"invoked: `{invoked}`", "", "command (per run):", "",
       f"    {cmdline}", "",
       f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {time.time() - t0:.0f} s; load average "
       f"at start {' '.join(load_start)}, at end {' '.join(load_end)}", ""]
with open(out + ".md", "w") as f:
    f.write("\n".join(hdr) + "\n" + text + "\n")
with open(out + ".json", "w") as f:
    json.dump({"benchmark": "zero-copy", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "machine": machine, "invoked": invoked, "command": cmdline, "rounds": rounds,
               "size_mib": size_mb, "chunks": chunks, "placements": affs, "kcopy_args": kargs,
               "cases": summary, "targets": [{"case": l, "chunk": c, "target": w,
                                              "measured": g, "met": ok}
                                             for l, c, w, g, ok in verdicts],
               "runs": runs}, f, indent=1)

subprocess.run([sys.executable, os.path.join(ROOT, "scripts/plot-zerocopy.py"), out + ".json"], check=True)
print(f"\nwrote {out}.md, {out}.json and {out}.svg")
EOF
