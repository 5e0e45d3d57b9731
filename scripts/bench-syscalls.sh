#!/usr/bin/env bash
# bench-syscalls.sh - where the per-iteration time of the served copy loop
# goes: the system calls each loop makes per iteration, what each extra one
# costs on this machine, and how much of the gap to the hand-written kernel
# loop they explain (`make bench` runs it after bench-kernel.sh).
#
# Three loops, all build/prog/kcopy (tests/prog/kcopy.c):
#   plain      DIR plain CHUNK: read() into the buffer, write() it
#   preloaded  the same with LD_PRELOAD=build/libnobounce.so (defaults)
#   kernel     the loop hand-written with the direction's kernel call:
#              sendfile (file -> tcp), splice (file -> pipe, and through a
#              pipe from a socket), copy_file_range (file -> file)
# each plain/preloaded one with a malloc'd buffer (16 bytes into a page, the
# default) and a page-aligned one (kcopy -a).
#
# 1. Counts. Each loop runs under `strace -ff -ttt` (one trace file per
#    thread; peers are separate processes and never counted), and only the
#    copying process's calls between its two getrusage() calls - kcopy's
#    timed span, nothing of its set-up - are counted, by name, with the
#    SIGSEGVs it receives (a phantom materialised by the fault handler).
#    The library's lease thread is counted apart, over the same span. The
#    loop runs twice, for N1 and N2 iterations of CHUNK bytes
#    (BENCH_COUNT_ITERS), and a call's count per iteration is
#    (count at N2 - count at N1) / (N2 - N1): the library's warm-up (the
#    first bounces before it arms) and kcopy's fixed calls cancel. Counts
#    are exact whatever the load; tracing slows the loop, so where a
#    socket's read returns less than CHUNK a chunk's worth of bytes may
#    take more than one read (the count is per CHUNK bytes moved).
# 2. Unit costs: build/prog/syscost, the extra calls in a tight loop with
#    the library's arguments (medians of interleaved repetitions).
# 3. Time: preloaded and kernel, BENCH_SIZE_MB MiB per run, BENCH_ROUNDS
#    interleaved rounds untraced; the extra CPU time (and wall time) of the
#    copier per iteration, preloaded minus kernel, median of the per-round
#    paired differences, next to sum(extra count x unit cost); the rest is
#    what the counted calls do not explain (faults, the kernel call's own
#    cost when it differs, user-space bookkeeping, cache effects).
#
# Writes results/bench-syscalls.{md,json}.
#
# Environment:
#   BENCH_DIRS         directions (default "file-pipe file-tcp file-file
#                      tcp-file tcp-tcp")
#   BENCH_CHUNKS       chunk sizes (default "16K 64K 1M")
#   BENCH_BUFFERS      buffers of the plain and preloaded loops (default
#                      "malloc aligned")
#   BENCH_AFFINITY     one kcopy -A placement (default same: the copier and
#                      its peers on one CPU; split or none)
#   BENCH_ROUNDS       timed rounds (default 3)
#   BENCH_SIZE_MB      MiB per timed run (default 256)
#   BENCH_COUNT_ITERS  the two iteration counts of the traced runs
#                      (default "128 512")
#   BENCH_COST_REPS    syscost repetitions (default 7)
#   BENCH_SRC          source file (default /dev/shm/nb-sysc.src; removed at
#                      the end if this script made it)
#   BENCH_SRC_MB       its least size, MiB (default 1024: syscost's cold
#                      walk must be far larger than the CPU caches; it also
#                      grows to the longest run)
#   BENCH_OUT          output name (default results/bench-syscalls)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
command -v strace > /dev/null || { echo "bench-syscalls.sh: needs strace (scripts/deps.sh installs it)" >&2; exit 2; }
[ -x build/prog/kcopy ] && [ -x build/prog/syscost ] && [ -e build/libnobounce.so ] || make -s lib progs
exec "$PY" - "$@" <<'EOF'
import glob, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.getcwd()
KCOPY = os.path.join(ROOT, "build/prog/kcopy")
SYSCOST = os.path.join(ROOT, "build/prog/syscost")
LIB = os.path.join(ROOT, "build/libnobounce.so")

def die(msg):
    print(f"bench-syscalls.sh: {msg}", file=sys.stderr)
    sys.exit(2)

def env(name, default):
    v = os.environ.get(name)
    return default if v is None or v == "" else v

def posint(name, default):
    v = env(name, default)
    if not v.isdigit() or int(v) < 1:
        die(f"{name} must be a positive integer, not '{v}'")
    return int(v)

def size_of(c):
    m = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        n = int(c[:-1]) * m[c[-1].upper()] if c[-1].upper() in m else int(c)
    except (ValueError, IndexError):
        die(f"BENCH_CHUNKS: '{c}' is not a size (e.g. 64K)")
    if n < 1 or n > 1 << 30:
        die(f"BENCH_CHUNKS: '{c}' is out of range (1 to 1G)")
    return n

KERNEL = {"file-pipe": "splice", "file-tcp": "sendfile", "file-file": "cfr",
          "tcp-file": "splice", "tcp-tcp": "splice", "pipe-file": "splice"}
rounds = posint("BENCH_ROUNDS", "3")
size_mb = posint("BENCH_SIZE_MB", "256")
cost_reps = posint("BENCH_COST_REPS", "7")
dirs = env("BENCH_DIRS", "file-pipe file-tcp file-file tcp-file tcp-tcp").split()
chunks = env("BENCH_CHUNKS", "16K 64K 1M").split()
bufs = env("BENCH_BUFFERS", "malloc aligned").split()
aff = env("BENCH_AFFINITY", "same")
iters = env("BENCH_COUNT_ITERS", "128 512").split()
src = env("BENCH_SRC", "/dev/shm/nb-sysc.src")
src_mb = posint("BENCH_SRC_MB", "1024")
out = env("BENCH_OUT", "results/bench-syscalls")
for d in dirs:
    if d not in KERNEL:
        die(f"BENCH_DIRS: '{d}' is not one of {' '.join(KERNEL)}")
if not dirs or not chunks or not bufs:
    die("BENCH_DIRS, BENCH_CHUNKS and BENCH_BUFFERS must not be empty")
for b in bufs:
    if b not in ("malloc", "aligned"):
        die(f"BENCH_BUFFERS: '{b}' is not malloc or aligned")
if aff not in ("none", "split", "same"):
    die(f"BENCH_AFFINITY: '{aff}' is not one of none, split, same")
if len(iters) != 2 or not all(i.isdigit() for i in iters) or not 0 < int(iters[0]) < int(iters[1]):
    die("BENCH_COUNT_ITERS must be two iteration counts N1 < N2, e.g. \"128 512\"")
n1, n2 = int(iters[0]), int(iters[1])
csize = {c: size_of(c) for c in chunks}
# The source serves the longest traced run, the timed runs and syscost's
# cold walk (1 GiB by default: far larger than any CPU cache).
need = max(src_mb << 20, size_mb << 20, max(n2 * csize[c] for c in chunks))
created = not os.path.exists(src)
st = os.statvfs(os.path.dirname(os.path.abspath(src)))
have = st.f_bavail * st.f_frsize + (0 if created else os.path.getsize(src))
if have < 2 * need + (64 << 20):
    die(f"{os.path.dirname(src)} lacks room for 2 x {need >> 20} MiB (lower BENCH_SIZE_MB "
        "or BENCH_COUNT_ITERS)")

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), os.uname().machine)
machine = f"kernel {os.uname().release}, {cpu}, nproc {os.cpu_count()}"
invoked = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                   if k.startswith("BENCH_")) + " bash scripts/bench-syscalls.sh"
tmp = tempfile.mkdtemp(prefix="nb-bench-sysc.")

def placement(d):
    return aff

# (label, kcopy method, kcopy args, preloaded)
def loops(d):
    ls = []
    for b in bufs:
        a = ["-a"] if b == "aligned" else []
        ls.append((f"plain/{b}", "plain", a, False))
    for b in bufs:
        a = ["-a"] if b == "aligned" else []
        ls.append((f"preloaded/{b}", "plain", a, True))
    ls.append(("kernel", KERNEL[d], [], False))
    return ls

def clean_env():
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("NOBOUNCE_") or k == "LD_PRELOAD":
            del e[k]
    return e

def kcopy_cmd(d, method, args, chunk, nbytes):
    return [KCOPY, "-s", str(nbytes), "-f", src, *args, "-A", placement(d), d, method, chunk]

# ---- counting (strace) ----

# Signals: only the faults the library handles. A SIGCHLD from a peer
# that ends inside one run's span and not the other's is timing, not a
# cost of the loop.
LINE = re.compile(r"^(\d+\.\d+) (?:(\w+)\(|--- (SIGSEGV|SIGBUS) )")
CLONE_RET = re.compile(r"= (\d+)$")

def pread_cost(n, c16, c4080):
    n = max(16, min(4080, n))
    return c16 + (c4080 - c16) * (n - 16) / 4064

def parse_trace(prefix, costs):
    files = glob.glob(prefix + ".*")
    main = None
    for f in files:
        with open(f, errors="replace") as fh:
            for line in fh:
                if " execve(" in line and "kcopy" in line:
                    main = f
                    break
        if main:
            break
    if main is None:
        raise RuntimeError("no trace of the copying process")
    threads = set()
    marks = []
    counts = {}
    pread = {"calls": 0, "bytes": 0, "warm_ns": 0.0, "cold_ns": 0.0}
    inside = False
    with open(main, errors="replace") as fh:
        for line in fh:
            m = LINE.match(line)
            if not m:
                continue
            name = m.group(2) or m.group(3)
            if name in ("clone", "clone3") and "CLONE_THREAD" in line:
                r = CLONE_RET.search(line.strip())
                if r:
                    threads.add(r.group(1))
            if name == "getrusage":
                marks.append(float(m.group(1)))
                inside = len(marks) == 1
                continue
            if not inside:
                continue
            counts[name] = counts.get(name, 0) + 1
            if name == "pread64":
                a = re.search(r", (\d+), \d+\) = (-?\d+)", line)
                if a:
                    n = int(a.group(1))
                    pread["calls"] += 1
                    pread["bytes"] += n
                    pread["warm_ns"] += pread_cost(n, costs["pread16_warm"], costs["pread4080_warm"])
                    pread["cold_ns"] += pread_cost(n, costs["pread16_cold"], costs["pread4080_cold"])
    if len(marks) < 2:
        raise RuntimeError("the copying process's trace lacks its two getrusage calls")
    t0, t1 = marks[0], marks[1]
    lease = {}
    for t in threads:
        f = f"{prefix}.{t}"
        if not os.path.exists(f):
            continue
        with open(f, errors="replace") as fh:
            for line in fh:
                m = LINE.match(line)
                if m and t0 < float(m.group(1)) < t1:
                    name = m.group(2) or m.group(3)
                    lease[name] = lease.get(name, 0) + 1
    return counts, lease, pread

def count_run(d, label, method, args, pre, chunk, n, costs):
    prefix = os.path.join(tmp, "t")
    for f in glob.glob(prefix + ".*"):
        os.unlink(f)
    e = clean_env()
    cmd = ["strace", "-ff", "-ttt", "-o", prefix]
    if pre:
        cmd += ["-E", f"LD_PRELOAD={LIB}"]
    cmd += ["--", *kcopy_cmd(d, method, args, chunk, n * csize[chunk])]
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=600)
    if p.returncode != 0 or "status=ok" not in p.stdout:
        raise RuntimeError(f"rc {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}")
    r = parse_trace(prefix, costs)
    for f in glob.glob(prefix + ".*"):
        os.unlink(f)
    return r

# ---- timing ----

def time_run(d, label, method, args, pre, chunk, r):
    e = clean_env()
    stats = None
    if pre:
        stats = os.path.join(tmp, f"s.{r}.json")
        e["LD_PRELOAD"] = LIB
        e["NOBOUNCE_STATS"] = stats
    p = subprocess.run(kcopy_cmd(d, method, args, chunk, size_mb << 20), env=e,
                       capture_output=True, text=True, timeout=300)
    kv = dict(w.split("=", 1) for w in p.stdout.split() if "=" in w)
    res = {"round": r, "dir": d, "chunk": chunk, "loop": label,
           "status": kv.get("status", f"failed rc={p.returncode}")}
    if res["status"] == "ok":
        res["wall_s"] = float(kv["wall_s"])
        res["cpu_s"] = float(kv["cpu_s"])
    else:
        print(f"\n  {d} {chunk} {label}: {res['status']}: {p.stderr.strip()[:300]}", flush=True)
    if stats:
        try:
            c = json.load(open(stats))["counters"]
            res["armed"] = c["arms"] > 0 and c["forwarded_writes"] > 0
            os.unlink(stats)
        except (OSError, ValueError, KeyError):
            res["armed"] = None
    return res

print("## nobounce: system calls per iteration, their cost, and where the time goes\n")
print(f"machine: {machine}")
print(f"invoked: {invoked}")
print(f"directions: {' '.join(dirs)}; chunks: {' '.join(chunks)}; buffers: {' '.join(bufs)}; "
      f"placement: {aff}")
print(f"traced runs: {n1} and {n2} iterations; timed: {rounds} rounds of {size_mb} MiB")
load_start = open("/proc/loadavg").read().split()[:3]
print(f"load average at start: {' '.join(load_start)}\n")
t_start = time.time()
print(f"preparing {src} ({need >> 20} MiB) ...", end="", flush=True)
subprocess.run([KCOPY, "-p", "-s", str(need), "-f", src], check=True, capture_output=True)
print(" done", flush=True)

try:
    # 2. unit costs first: the counted preads are costed by their size.
    print("unit costs (syscost) ...", end="", flush=True)
    cpin = ["-A", "0"] if aff != "none" else []
    p = subprocess.run([SYSCOST, "-f", src, "-r", str(cost_reps), *cpin], env=clean_env(),
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        die(f"syscost failed: {p.stderr.strip()[:300]}")
    costs, cost_rows = {}, []
    for line in p.stdout.splitlines():
        if line.startswith("syscost "):
            kv = dict(w.split("=", 1) for w in line.split()[1:])
            costs[kv["case"]] = float(kv["ns_per_call_median"])
            cost_rows.append(kv)
    print(f" done ({time.time() - t_start:.0f}s)", flush=True)

    # 1. counts
    counts = {}
    for d in dirs:
        print(f"counting {d}:", end="", flush=True)
        for c in chunks:
            for label, method, args, pre in loops(d):
                try:
                    a = count_run(d, label, method, args, pre, c, n1, costs)
                    b = count_run(d, label, method, args, pre, c, n2, costs)
                except (RuntimeError, subprocess.TimeoutExpired) as ex:
                    print(f"\n  {d} {c} {label}: traced run failed: {ex}", flush=True)
                    continue
                per = {k: (b[0].get(k, 0) - a[0].get(k, 0)) / (n2 - n1)
                       for k in set(a[0]) | set(b[0])}
                lease = {k: (b[1].get(k, 0) - a[1].get(k, 0)) / (n2 - n1)
                         for k in set(a[1]) | set(b[1])}
                pr = {k: (b[2][k] - a[2][k]) / (n2 - n1) for k in a[2]}
                counts[(d, c, label)] = {
                    "per_iter": {k: v for k, v in per.items() if abs(v) > 0.005},
                    "lease_per_iter": {k: v for k, v in lease.items() if abs(v) > 0.005},
                    "lease_total": {"n1": a[1], "n2": b[1]},
                    "pread": pr, "raw": {"n1": a[0], "n2": b[0]}}
            print(f" {c}", end="", flush=True)
        print(f" ({time.time() - t_start:.0f}s)", flush=True)

    # 3. timed runs: preloaded (each buffer) and kernel, interleaved
    timed_loops = lambda d: [l for l in loops(d) if l[3] or l[0] == "kernel"]
    runs = []
    for r in range(rounds):
        print(f"timed round {r + 1}/{rounds}:", end="", flush=True)
        for d in dirs:
            for c in chunks:
                ls = timed_loops(d)
                for i in range(len(ls)):
                    label, method, args, pre = ls[(r + i) % len(ls)]
                    runs.append(time_run(d, label, method, args, pre, c, r))
            print(f" {d}", end="", flush=True)
        print(f" ({time.time() - t_start:.0f}s)", flush=True)
finally:
    if created:
        try:
            os.unlink(src)
        except OSError:
            pass
    shutil.rmtree(tmp, ignore_errors=True)
load_end = open("/proc/loadavg").read().split()[:3]
elapsed = time.time() - t_start

# ---- tables ----

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def fmt_calls(per):
    items = sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {v:.2f}".rstrip("0").rstrip(".") for k, v in items) or "-"

COSTED = {"get_mempolicy": "get_mempolicy", "rt_sigprocmask": "sigprocmask_pair",
          "fstat": "fstat", "lseek": "lseek_cur"}

def unit(name):
    return costs[COSTED[name]]  # ns per call (the pair's is already halved)

lines = ["### unit costs (build/prog/syscost, no preload)", "",
         "| case | ns per call (median) | ns per call (fastest repetition) | calls per op |",
         "|---|---:|---:|---:|"]
for kv in cost_rows:
    lines.append(f"| {kv['case']} | {float(kv['ns_per_call_median']):.0f} | "
                 f"{float(kv['ns_per_op_min']) / int(kv['calls_per_op']):.0f} | "
                 f"{kv['calls_per_op']} |")
lines += ["", f"Medians of {cost_reps} interleaved repetitions of 100000 calls, pinned to one "
          "CPU. sigprocmask_pair is the block + restore pair (ns per call = half the pair). "
          f"cold: each pread from the next page of the {need >> 20} MiB tmpfs source (a page "
          f"comes round again after {need >> 12} calls); warm: the same page every time.", ""]

summary = {}
for d in dirs:
    lines += [f"### {d.replace('-', ' -> ')}, placement {placement(d)}: system calls per "
              "iteration (copying process)", "",
              "| chunk | loop | calls/iter | by name | lease thread calls/iter |",
              "|---:|---|---:|---|---|"]
    for c in chunks:
        for label, *_ in loops(d):
            k = counts.get((d, c, label))
            if not k:
                lines.append(f"| {c} | {label} | - | traced run failed | - |")
                continue
            tot = sum(v for n, v in k["per_iter"].items() if not n.startswith("SIG"))
            span = sum(k["lease_total"]["n2"].values())
            lease = (fmt_calls(k["lease_per_iter"]) if k["lease_per_iter"] else "none") + \
                (f" ({span} in the {n2}-iteration span)" if span else "")
            lines.append(f"| {c} | {label} | {tot:.2f} | {fmt_calls(k['per_iter'])} | {lease} |")
    lines.append("")

    lines += [f"### {d.replace('-', ' -> ')}, placement {placement(d)}: where the time goes "
              f"(preloaded - {KERNEL[d]}, per iteration)", "",
              "| chunk | buffer | armed | extra CPU us/iter [range] | extra wall us/iter | "
              "extra calls x unit cost (ns) | sum, warm preads (us) | sum, cold preads (us) | "
              "unexplained CPU (us) | not costed (count difference/iter) |",
              "|---:|---|---|---:|---:|---|---:|---:|---:|---|"]
    for c in chunks:
        it = (size_mb << 20) / csize[c]
        kr = {x["round"]: x for x in runs if x["dir"] == d and x["chunk"] == c and
              x["loop"] == "kernel" and x["status"] == "ok"}
        for b in bufs:
            lab = f"preloaded/{b}"
            pr = [x for x in runs if x["dir"] == d and x["chunk"] == c and x["loop"] == lab and
                  x["status"] == "ok"]
            dcpu = [(x["cpu_s"] - kr[x["round"]]["cpu_s"]) / it * 1e6 for x in pr if x["round"] in kr]
            dwall = [(x["wall_s"] - kr[x["round"]]["wall_s"]) / it * 1e6 for x in pr if x["round"] in kr]
            armed = [x.get("armed") for x in pr]
            arm = "yes" if armed and all(armed) else "no" if armed and not any(armed) else "mixed"
            kp, kk = counts.get((d, c, lab)), counts.get((d, c, "kernel"))
            if not kp or not kk:
                lines.append(f"| {c} | {b} | {arm} | - | - | counts missing | - | - | - | - |")
                continue
            diff = {n: kp["per_iter"].get(n, 0) - kk["per_iter"].get(n, 0)
                    for n in set(kp["per_iter"]) | set(kk["per_iter"])}
            diff = {n: v for n, v in diff.items() if abs(v) > 0.005}
            parts, ns = [], 0.0
            for n in sorted(COSTED):
                if n in diff:
                    cost = diff[n] * unit(n)
                    ns += cost
                    parts.append(f"{n} {diff[n]:.2f} x {unit(n):.0f} = {cost:.0f}")
            pdiff = diff.get("pread64", 0)
            pw = kp["pread"]["warm_ns"] - kk["pread"]["warm_ns"]
            pc = kp["pread"]["cold_ns"] - kk["pread"]["cold_ns"]
            if pdiff:
                avg = (kp["pread"]["bytes"] - kk["pread"]["bytes"]) / pdiff
                parts.append(f"pread64 {pdiff:.2f} (avg {avg:.0f} B) = {pw:.0f} warm / {pc:.0f} cold")
            other = {n: v for n, v in diff.items() if n not in COSTED and n != "pread64"}
            warm, cold = (ns + pw) / 1e3, (ns + pc) / 1e3
            mc = med(dcpu)
            rng = f" [{min(dcpu):.2f}..{max(dcpu):.2f}]" if len(dcpu) > 1 else ""
            lines.append(f"| {c} | {b} | {arm} | {mc:.2f}{rng} | {med(dwall):.2f} | "
                         f"{'; '.join(parts) or '-'} | {warm:.2f} | {cold:.2f} | "
                         f"{mc - cold:.2f} | {fmt_calls(other)} |")
            summary[f"{d}/{c}/{b}"] = {
                "armed": arm, "extra_cpu_us_per_iter": mc, "extra_cpu_us_rounds": dcpu,
                "extra_wall_us_per_iter": med(dwall), "extra_wall_us_rounds": dwall,
                "extra_calls_per_iter": diff, "explained_us_warm_preads": warm,
                "explained_us_cold_preads": cold, "unexplained_cpu_us": mc - cold}
    lines.append("")

lines += [
    f"Counts: strace -ff of the copying process between kcopy's two getrusage calls, "
    f"(count at {n2} iterations - count at {n1}) / {n2 - n1}, by name; SIGSEGV is a fault the "
    "library's handler took (a phantom materialised), not a call, and is left out of "
    "calls/iter; the kernel delivers it and rt_sigreturn ends it. The lease thread's calls "
    "(over the same span) are apart. An iteration is CHUNK bytes moved.",
    f"Time: {rounds} interleaved rounds of {size_mb} MiB untraced per loop; extra = preloaded "
    f"minus the hand-written loop of the same round, per iteration ({size_mb} MiB / CHUNK), "
    "median of the rounds, [range]. CPU is user+system of the copying process (kcopy's "
    "getrusage); on loopback TCP the receiver's softirq work is mostly charged to it. The "
    "unit costs come from a tight loop (warm branch predictors and caches other than the "
    "pread's page); the same call inside the loop can cost more. Counts are exact; the times "
    "are noisy on a shared 2-CPU machine.",
    "sum = the costed extra calls (get_mempolicy, rt_sigprocmask, fstat, lseek; preads "
    "by their size, interpolated between the 16 and 4080 byte costs, warm or cold); "
    "unexplained = extra CPU - sum with cold preads. 'not costed': other calls whose count "
    "differs (positive: the preloaded loop makes more), e.g. the kernel call cut into more "
    "calls, faults. armed: the preloaded timed runs' stats show armed pairs and writes "
    "served by the kernel.",
]
text = "\n".join(lines)
print()
print(text)
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
cmdline = (f"[strace -ff -ttt -o T] [LD_PRELOAD=build/libnobounce.so] build/prog/kcopy -s BYTES -f "
           f"{src} [-a] -A {aff} DIRECTION plain|sendfile|splice|cfr CHUNK; "
           f"build/prog/syscost -f {src} -r {cost_reps}")
hdr = ["# nobounce: system calls per iteration, their cost, and where the time goes", "",
       f"machine: {machine}", "", f"invoked: `{invoked}`", "", "commands:", "", f"    {cmdline}", "",
       f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {elapsed:.0f} s; load average at start "
       f"{' '.join(load_start)}, at end {' '.join(load_end)}", ""]
with open(out + ".md", "w") as f:
    f.write("\n".join(hdr) + "\n" + text + "\n")
with open(out + ".json", "w") as f:
    json.dump({"benchmark": "syscalls", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "machine": machine, "invoked": invoked, "command": cmdline, "rounds": rounds,
               "size_mib": size_mb, "count_iters": [n1, n2], "chunks": chunks, "dirs": dirs,
               "buffers": bufs, "placement": aff, "elapsed_s": round(elapsed),
               "load_average": {"start": load_start, "end": load_end},
               "unit_costs_ns_per_call": costs,
               "counts": {"/".join(k): v for k, v in counts.items()},
               "where_the_time_goes": summary, "runs": runs}, f, indent=1)
print(f"\nwrote {out}.md and {out}.json")
EOF
