#!/usr/bin/env bash
# bench-servers.sh - real servers from Debian packages serving one large
# file: plain, preloaded, and (where the program has one) its own kernel
# path, interleaved, several rounds. Part of `make bench`.
#
#   python3 http.server   plain | preloaded            (no sendfile of its own)
#   nginx                 sendfile off | the same preloaded | sendfile on
#   busybox httpd         plain | preloaded            (it sends with sendfile
#                                                       itself: no loop to serve)
#   socat relay           plain | preloaded            (curl -> socat -> nginx)
#   apache2               EnableMMAP On, EnableSendfile Off (Debian's default)
#                         | the same preloaded | EnableSendfile On
#   nginx as nobody       sendfile off, run as another user than the file's
#                         owner (no read lease can be had): plain |
#                         preloaded (NOBOUNCE_EXACT=auto) | preloaded with
#                         NOBOUNCE_EXACT=strict (shown as "native")
#
# Each run starts the server on 127.0.0.1 (a free port), downloads the file
# BENCH_GETS times with a plain curl to /dev/null, and stops the server by
# its PID. Measured: the downloads' wall time (MB/s) and the CPU time of
# the serving process (user + system, its reaped children included), per
# GB served. Medians over BENCH_ROUNDS rounds; in each round every method
# runs once, in turn. Writes BENCH_OUT.{md,json,svg}: a markdown table, the
# raw runs, and a bar chart of MB/s and CPU s/GB.
#
# Environment: BENCH_ROUNDS (3), BENCH_FILE_MB (256), BENCH_GETS (4),
# BENCH_OUT (results/bench-servers).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -e build/libnobounce.so ] || make -s all
exec /usr/bin/python3 - "$@" <<'PYEOF'
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.getcwd()
LIB = os.path.join(ROOT, "build/libnobounce.so")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
MB = int(os.environ.get("BENCH_FILE_MB", "256"))
GETS = int(os.environ.get("BENCH_GETS", "4"))
OUT = os.environ.get("BENCH_OUT", "results/bench-servers")
TICK = os.sysconf("SC_CLK_TCK")

work = tempfile.mkdtemp(prefix="nb-bench-srv.")
os.chmod(work, 0o755)
www = os.path.join(work, "www")
os.mkdir(www)
# A place another user (nginx as nobody) may write its pid, log and temp
# files; the served file stays root's, readable by all.
nobody_dir = os.path.join(work, "nobody")
os.mkdir(nobody_dir)
os.chmod(nobody_dir, 0o777)
with open(os.path.join(www, "big.bin"), "wb") as f:
    f.write(os.urandom(MB << 20))
SIZE = MB << 20

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

def wait_port(p):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", p), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench-servers: nothing listens on {p}")

# The serving process's CPU time, its forked handlers included (busybox
# httpd and socat fork one per connection and may not wait for them): a
# cgroup of its own when one can be made (v2 cpu.stat, v1 cpuacct), else
# the process's own and reaped children's times from /proc.
CG = None
for base, usage in (("/sys/fs/cgroup", "cpu.stat"), ("/sys/fs/cgroup/cpuacct", "cpuacct.usage")):
    if os.path.exists(os.path.join(base, "cgroup.controllers" if usage == "cpu.stat" else usage)):
        d = os.path.join(base, f"nb-bench-{os.getpid()}")
        try:
            os.mkdir(d)
            CG = (d, usage)
            break
        except OSError:
            pass
CPU_HOW = "its cgroup" if CG else "/proc (own and reaped children's times)"

def join_cgroup():
    with open(os.path.join(CG[0], "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))

def cpu(pid):
    if CG:
        with open(os.path.join(CG[0], CG[1])) as f:
            t = f.read()
        if CG[1] == "cpu.stat":
            return int(t.split("usage_usec")[1].split()[0]) / 1e6
        return int(t) / 1e9
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in v[11:15]) / TICK  # utime stime cutime cstime

def nginx_conf(port, sendfile):
    c = os.path.join(work, f"nginx-{port}.conf")
    t = os.path.join(work, "tmp")
    os.makedirs(t, exist_ok=True)
    with open(c, "w") as f:
        f.write(f"""daemon off; master_process off; worker_processes 1;
pid {work}/nginx-{port}.pid; error_log {work}/nginx.err;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile {sendfile};
  client_body_temp_path {t}/b; proxy_temp_path {t}/p; fastcgi_temp_path {t}/f;
  uwsgi_temp_path {t}/u; scgi_temp_path {t}/s;
  server {{ listen 127.0.0.1:{port}; root {www}; }} }}
""")
    return ["nginx", "-e", f"{work}/nginx.err", "-p", work, "-c", c]

def nginx_nobody(port):
    d = nobody_dir
    c = os.path.join(d, f"nginx-{port}.conf")
    with open(c, "w") as f:
        f.write(f"""daemon off; master_process off; worker_processes 1;
pid {d}/nginx-{port}.pid; error_log {d}/nginx.err;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile off;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
  uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  server {{ listen 127.0.0.1:{port}; root {www}; }} }}
""")
    os.chmod(c, 0o644)
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "nginx", "-e", f"{d}/nginx.err", "-p", d, "-c", c]

def apache_conf(port, sendfile):
    d = os.path.join(work, f"apache-{port}")
    os.makedirs(d, exist_ok=True)
    user = "User www-data\nGroup www-data\n" if os.getuid() == 0 else ""
    c = os.path.join(d, "httpd.conf")
    with open(c, "w") as f:
        f.write(f"""ServerRoot {d}
ServerName 127.0.0.1
PidFile {d}/httpd.pid
DefaultRuntimeDir {d}
Mutex file:{d} default
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
{user}Listen 127.0.0.1:{port}
ErrorLog {d}/error.log
TypesConfig /dev/null
DocumentRoot {www}
<Directory {www}>
    Require all granted
</Directory>
EnableMMAP On
EnableSendfile {sendfile}
""")
    return ["apache2", "-X", "-f", c]

def start(argv, preload, cwd=None, measured=True, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOBOUNCE_") and k != "LD_PRELOAD"}
    if preload:
        env["LD_PRELOAD"] = LIB
    env.update(extra or {})
    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=join_cgroup if CG and measured else None)

def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()

def run(server, method):
    port = free_port()
    helpers = []
    pre = method == "preloaded"
    if server == "python3 http.server":
        srv = start(["/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"], pre, www)
    elif server == "nginx":
        srv = start(nginx_conf(port, "on" if method == "native" else "off"), pre)
    elif server == "apache2":
        srv = start(apache_conf(port, "On" if method == "native" else "Off"), pre)
    elif server == "nginx as nobody":
        # "native" here: preloaded with NOBOUNCE_EXACT=strict
        strict = method == "native"
        srv = start(nginx_nobody(port), pre or strict, extra={"NOBOUNCE_EXACT": "strict"} if strict else None)
    elif server == "busybox httpd":
        srv = start(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", www], pre)
    else:  # socat relay in front of a plain nginx with sendfile on
        back = free_port()
        helpers.append(start(nginx_conf(back, "on"), False, measured=False))
        wait_port(back)
        srv = start(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                     f"TCP:127.0.0.1:{back}"], pre)
    wait_port(port)
    c0, t0 = cpu(srv.pid), time.monotonic()
    for _ in range(GETS):
        r = subprocess.run(["curl", "-s", "--max-time", "120", "-o", "/dev/null", "-w", "%{size_download}",
                            f"http://127.0.0.1:{port}/big.bin"], capture_output=True, text=True)
        if r.returncode != 0 or r.stdout.strip() != str(SIZE):
            raise SystemExit(f"bench-servers: {server} {method}: download failed ({r.stdout!r})")
    t1 = time.monotonic()
    time.sleep(0.2)  # forked handlers (busybox, socat) are reaped by now
    c1 = cpu(srv.pid)
    stop(srv)
    for h in helpers:
        stop(h)
    gb = GETS * SIZE / 1e9
    return {"server": server, "method": method, "MBps": GETS * SIZE / 1e6 / (t1 - t0),
            "cpu_s_per_GB": (c1 - c0) / gb}

PLAN = [("python3 http.server", ["plain", "preloaded"]),
        ("nginx", ["plain", "preloaded", "native"]),
        ("busybox httpd", ["plain", "preloaded"]),
        ("socat relay", ["plain", "preloaded"]),
        ("apache2", ["plain", "preloaded", "native"]),
        ("nginx as nobody", ["plain", "preloaded", "native"])]
runs = []
for r in range(ROUNDS):
    print(f"round {r + 1}/{ROUNDS}", file=sys.stderr, flush=True)
    for server, methods in PLAN:
        for m in methods:
            x = run(server, m)
            x["round"] = r
            runs.append(x)

def med(server, method, key):
    v = [x[key] for x in runs if x["server"] == server and x["method"] == method]
    return statistics.median(v) if v else None

machine = f"kernel {os.uname().release}, {os.cpu_count()} CPUs"
try:
    with open("/proc/cpuinfo") as f:
        machine = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name")) + ", " + machine
except StopIteration:
    pass
lines = ["# nobounce: real servers, plain / preloaded / their own kernel path", "",
         f"machine: {machine}; {time.strftime('%Y-%m-%d %H:%M %z')}", "",
         f"invoked: `BENCH_ROUNDS={ROUNDS} BENCH_FILE_MB={MB} BENCH_GETS={GETS} bash scripts/bench-servers.sh`", "",
         f"Each run: the server on 127.0.0.1, {GETS} downloads of a {MB} MiB file by a plain curl; "
         f"medians of {ROUNDS} interleaved rounds. CPU is the serving process's, its forked "
         f"handlers included (measured through {CPU_HOW}), per GB served. native: nginx with "
         "`sendfile on`, apache2 with `EnableSendfile On` (its default is `EnableMMAP On`, "
         "`EnableSendfile Off`: the plain and preloaded columns); for nginx as nobody (a user "
         "that may not lease the root-owned file) the native column is preloaded with "
         "`NOBOUNCE_EXACT=strict`.", "",
         "| server | plain MB/s | plain CPU s/GB | preloaded MB/s | preloaded CPU s/GB | native MB/s | native CPU s/GB | preloaded/plain speed | preloaded/plain CPU |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
summary = {}
for server, methods in PLAN:
    g = {m: (med(server, m, "MBps"), med(server, m, "cpu_s_per_GB")) for m in methods}
    summary[server] = g
    n = g.get("native", (None, None))
    fmt = lambda v, d: "-" if v is None else f"{v:.{d}f}"
    lines.append(f"| {server} | {fmt(g['plain'][0], 0)} | {fmt(g['plain'][1], 2)} | "
                 f"{fmt(g['preloaded'][0], 0)} | {fmt(g['preloaded'][1], 2)} | {fmt(n[0], 0)} | {fmt(n[1], 2)} | "
                 f"{g['preloaded'][0] / g['plain'][0]:.2f} | "
                 f"{(g['preloaded'][1] / g['plain'][1]) if g['plain'][1] else 0:.2f} |")
os.makedirs(os.path.dirname(OUT) or ".", exist_ok=True)
with open(OUT + ".md", "w") as f:
    f.write("\n".join(lines) + "\n")
with open(OUT + ".json", "w") as f:
    json.dump({"machine": machine, "rounds": ROUNDS, "file_mb": MB, "gets": GETS, "runs": runs,
               "medians": summary}, f, indent=1)

# SVG: for each server, bars for MB/s (left panel) and CPU s/GB (right)
colors = {"plain": "#888888", "preloaded": "#2b7bb9", "native": "#e08a1e"}
W, H, pad, bar = 900, 60 + 70 * len(PLAN), 170, 16
def vmax_of(idx):
    return max(t[idx] for g in summary.values() for t in g.values()) or 1
body = []
for x0, idx, title in ((pad, 0, "throughput, MB/s (higher is better)"),
                       (pad + 360, 1, "server CPU s per GB (lower is better)")):
    body.append(f'<text x="{x0}" y="24" font-size="13" font-weight="bold">{title}</text>')
    vm = vmax_of(idx)
    for i, (server, g) in enumerate(summary.items()):
        y = 44 + 70 * i
        if idx == 0:
            body.append(f'<text x="8" y="{y + 22}" font-size="12">{server}</text>')
        for j, (m, t) in enumerate(g.items()):
            w = t[idx] / vm * 230
            yy = y + j * (bar + 2)
            body.append(f'<rect x="{x0}" y="{yy}" width="{w:.1f}" height="{bar}" fill="{colors[m]}"/>')
            label = f"{t[idx]:.0f}" if idx == 0 else f"{t[idx]:.2f}"
            body.append(f'<text x="{x0 + w + 4:.1f}" y="{yy + 12}" font-size="11">{m} {label}</text>')
svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">'
       f'<rect width="100%" height="100%" fill="white"/>' + "".join(body) +
       f'<text x="8" y="{H - 8}" font-size="10">{machine}; {GETS} x {MB} MiB per run, medians of {ROUNDS} rounds</text></svg>\n')
with open(OUT + ".svg", "w") as f:
    f.write(svg)
print("\n".join(lines))
print(f"\nwrote {OUT}.md, {OUT}.json and {OUT}.svg")
subprocess.run(["rm", "-rf", work])
if CG:
    os.rmdir(CG[0])
PYEOF
