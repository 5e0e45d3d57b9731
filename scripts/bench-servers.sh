#!/usr/bin/env bash
# bench-servers.sh - real programs from Debian packages serving one large
# file from /dev/shm over 127.0.0.1: plain, preloaded, and (where the
# program has one) its own kernel path, interleaved, several rounds.
# Part of `make bench`. One table: the program, its data path (the calls
# and chunk it uses, as a short strace of the plain run shows them), armed
# or why not (from the preloaded run's JSON reports), MB/s and CPU s/GB
# plain and preloaded, their ratios, and how many transfers came back
# byte-identical.
#
# Rows (BENCH_SERVERS=all, or a comma list of these keys):
#   python       python3 -m http.server
#   perl         a sysread/syswrite 64K loop (scripts/bench/perl-server.pl)
#   pv           pv FILE, its stdout a TCP socket to a receiving peer
#   nginx        sendfile off, output_buffers 2 32k (nginx's default)
#                | the same preloaded | sendfile on (native)
#   nginx-256k   sendfile off, output_buffers 2 256k
#   nginx-nobody sendfile off, run as nobody (may not lease the root-owned
#                file): plain | preloaded | preloaded NOBOUNCE_EXACT=strict
#                (shown as native)
#   apache2      EnableMMAP On, EnableSendfile Off (Debian's default)
#                | the same preloaded | EnableSendfile On (native)
#   lighttpd     its default network backend
#   lighttpd-writev  server.network-backend = "writev"
#   webfsd       webfsd -F
#   mini-httpd   mini_httpd -D
#   haproxy      HTTP mode in front of nginx (sendfile on), defaults
#   haproxy-8k   the same, preloaded with NOBOUNCE_MIN_CHUNK=8K
#                NOBOUNCE_MIN_CHUNK_STREAM=8K
#   busybox      busybox httpd
#   rinetd       in front of nginx (sendfile on)
#   socat        TCP-LISTEN,fork -> TCP, in front of nginx (sendfile on)
#   node         fs.createReadStream(f).pipe(res) (scripts/bench/node-static.js)
#   mbuffer      mbuffer -i FILE -O 127.0.0.1:PORT to a receiving peer
#
# Each run starts the program on 127.0.0.1 (a free port), fetches the file
# BENCH_GETS times with a plain curl to /dev/null (or, for pv and mbuffer,
# sends it BENCH_GETS times to a receiver in this script), and once more
# with its sha256 checked against the source's (not timed), then stops it
# by its PID. Measured: the timed transfers' wall time (MB/s) and the CPU
# time of the serving process tree (a cgroup of its own; relays' backends
# and the receivers are outside it), per GB served. Medians over
# BENCH_ROUNDS rounds, the range of the rounds beside them; in each round
# every row runs each of its methods once, in turn. Preloaded runs write
# their JSON reports (NOBOUNCE_STATS) into a directory of their own; the
# "armed" column sums them. A program that is not installed gets a row
# saying so. Writes BENCH_OUT.{md,json,svg}: the table, the raw runs, and
# a bar chart. Exit status 1 if any transfer was not byte-identical (those
# are listed first), 2 for a bad setting.
#
# Environment: BENCH_ROUNDS (3), BENCH_FILE_MB (256), BENCH_GETS (4),
# BENCH_SERVERS (all), BENCH_OUT (results/bench-servers).
# BENCH_STRACE=1: instead of measuring, run each selected row once plain
# under strace and print the data calls it makes (name, size, count).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -e build/libnobounce.so ] || make -s all
exec /usr/bin/python3 - "$@" <<'PYEOF'
import collections, hashlib, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.getcwd()
LIB = os.path.join(ROOT, "build/libnobounce.so")
BENCH = os.path.join(ROOT, "scripts/bench")

def die(msg):
    print(f"bench-servers: {msg}", file=sys.stderr)
    sys.exit(2)

def env_int(name, default, lo=1):
    v = os.environ.get(name, str(default))
    if not re.fullmatch(r"[0-9]+", v) or int(v) < lo:
        die(f"{name}={v!r}: want a whole number >= {lo}")
    return int(v)

ROUNDS = env_int("BENCH_ROUNDS", 3)
MB = env_int("BENCH_FILE_MB", 256)
GETS = env_int("BENCH_GETS", 4)
OUT = os.environ.get("BENCH_OUT", "results/bench-servers")
STRACE = os.environ.get("BENCH_STRACE", "") not in ("", "0")
TICK = os.sysconf("SC_CLK_TCK")
SIZE = MB << 20

# key, label, executable, Debian package, kind (http: curl fetches; peer:
# the program sends to a receiver here), methods, extra environment of the
# preloaded run, data path (from `BENCH_STRACE=1`, plain run).
ROWS = [
    ("python", "python3 http.server", "python3", "python3", "http", ["plain", "preloaded"], {},
     "read 64K, sendto 64K (file -> socket)"),
    ("perl", "perl sysread/syswrite 64K", "perl", "perl", "http", ["plain", "preloaded"], {},
     "read 64K, write 64K (file -> socket)"),
    ("pv", "pv FILE > socket", "pv", "pv", "peer", ["plain", "preloaded"], {},
     "read 128K, write 128K (file -> socket)"),
    ("nginx", "nginx sendfile off, output_buffers 2 32k", "nginx", "nginx", "http",
     ["plain", "preloaded", "native"], {}, "pread 32K, writev 32K; native: sendfile"),
    ("nginx-256k", "nginx sendfile off, output_buffers 2 256k", "nginx", "nginx", "http",
     ["plain", "preloaded"], {}, "pread 256K, writev 256K-512K"),
    ("nginx-nobody", "nginx as nobody (sendfile off)", "nginx", "nginx", "http",
     ["plain", "preloaded", "native"], {}, "pread 32K, writev 32K (may not lease the file: not its owner)"),
    ("apache2", "apache2 default (mmap + writev)", "apache2", "apache2", "http",
     ["plain", "preloaded", "native"], {}, "mmap 4M windows, writev 4M; native: sendfile"),
    ("lighttpd", "lighttpd default", "lighttpd", "lighttpd", "http", ["plain", "preloaded"], {},
     "sendfile 256K (its default backend)"),
    ("lighttpd-writev", "lighttpd network-backend writev", "lighttpd", "lighttpd", "http",
     ["plain", "preloaded"], {}, "pread 16K into a stack buffer, write 16K"),
    ("webfsd", "webfsd", "webfsd", "webfs", "http", ["plain", "preloaded"], {}, "sendfile ~1.5M (its own)"),
    ("mini-httpd", "mini-httpd", "mini_httpd", "mini-httpd", "http", ["plain", "preloaded"], {},
     "sendfile 1M (its own)"),
    ("haproxy", "haproxy HTTP relay (defaults)", "haproxy", "haproxy", "http", ["plain", "preloaded"], {},
     "recvfrom 16K, sendto 16K (socket -> socket)"),
    ("haproxy-8k", "haproxy HTTP relay, MIN_CHUNK(_STREAM)=8K", "haproxy", "haproxy", "http",
     ["plain", "preloaded"], {"NOBOUNCE_MIN_CHUNK": "8K", "NOBOUNCE_MIN_CHUNK_STREAM": "8K"},
     "recvfrom 16K, sendto 16K (socket -> socket)"),
    ("busybox", "busybox httpd", "busybox", "busybox", "http", ["plain", "preloaded"], {},
     "sendfile of the whole file (its own)"),
    ("rinetd", "rinetd relay", "rinetd", "rinetd", "http", ["plain", "preloaded"], {},
     "recvfrom 16K, sendto 16K (socket -> socket)"),
    ("socat", "socat relay", "socat", "socat", "http", ["plain", "preloaded"], {},
     "read 8K, write 8K (socket -> socket)"),
    ("node", "Node.js createReadStream().pipe(res)", "node", "nodejs", "http", ["plain", "preloaded"], {},
     "read 64K (libuv thread pool), write 64K"),
    ("mbuffer", "mbuffer -i FILE -O host:port", "mbuffer", "mbuffer", "peer", ["plain", "preloaded"], {},
     "read 4M (reader thread), write 4M (writer thread)"),
]
KEYS = [r[0] for r in ROWS]
sel = os.environ.get("BENCH_SERVERS", "all").strip()
if sel in ("", "all"):
    PLAN = list(ROWS)
else:
    want = [s.strip() for s in sel.split(",") if s.strip()]
    bad = [s for s in want if s not in KEYS]
    if bad:
        die(f"BENCH_SERVERS: unknown {', '.join(repr(b) for b in bad)} (known: all, {', '.join(KEYS)})")
    PLAN = [r for r in ROWS if r[0] in want]
MISSING = {r[0]: r[3] for r in PLAN if shutil.which(r[2]) is None}

work = tempfile.mkdtemp(prefix="nb-bench-srv.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
os.chmod(work, 0o755)
www = os.path.join(work, "www")
os.mkdir(www)
# A place another user (nginx as nobody, servers that drop to nobody) may
# write pid, log and temp files; the served file stays root's, readable
# by all.
nobody_dir = os.path.join(work, "nobody")
os.mkdir(nobody_dir)
os.chmod(nobody_dir, 0o777)
BIG = os.path.join(www, "big.bin")
with open(BIG, "wb") as f:
    for _ in range(MB):
        f.write(os.urandom(1 << 20))
os.chmod(BIG, 0o644)
with open(BIG, "rb") as f:
    h = hashlib.sha256()
    while b := f.read(1 << 20):
        h.update(b)
    SRC_SHA = h.hexdigest()

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

def wait_port(p, proc):
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", p), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {p} after 10 s")

# The serving process tree's CPU time, forked handlers included (busybox
# httpd, mini-httpd and socat fork one per connection and may not wait for
# them): a cgroup of its own when one can be made (v2 cpu.stat, v1
# cpuacct), else the process's own and reaped children's times from /proc.
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

def peer_cpu():
    """A peer row's senders, reaped by now: the cgroup, else our children's times."""
    if CG:
        return cpu(0)
    t = os.times()
    return t.children_user + t.children_system

def nginx_conf(port, sendfile, bufs="2 32k"):
    c = os.path.join(work, f"nginx-{port}.conf")
    t = os.path.join(work, "tmp")
    os.makedirs(t, exist_ok=True)
    with open(c, "w") as f:
        f.write(f"""daemon off; master_process off; worker_processes 1;
pid {work}/nginx-{port}.pid; error_log {work}/nginx.err;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile {sendfile}; output_buffers {bufs};
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

def lighttpd_conf(port, backend):
    c = os.path.join(work, f"lighttpd-{port}.conf")
    with open(c, "w") as f:
        f.write(f'server.document-root = "{www}"\nserver.port = {port}\nserver.bind = "127.0.0.1"\n'
                f'server.errorlog = "{work}/lighttpd.err"\n'
                + (f'server.network-backend = "{backend}"\n' if backend else ""))
    return ["lighttpd", "-D", "-f", c]

def haproxy_conf(port, back):
    c = os.path.join(work, f"haproxy-{port}.cfg")
    with open(c, "w") as f:
        f.write(f"""global
	maxconn 64
defaults
	mode http
	timeout connect 5s
	timeout client 120s
	timeout server 120s
frontend f
	bind 127.0.0.1:{port}
	default_backend b
backend b
	server origin 127.0.0.1:{back}
""")
    return ["haproxy", "-q", "-db", "-f", c]

def rinetd_conf(port, back):
    c = os.path.join(work, f"rinetd-{port}.conf")
    with open(c, "w") as f:
        f.write(f"127.0.0.1 {port} 127.0.0.1 {back}\n")
    return ["rinetd", "-f", "-c", c]

TRACE_CALLS = ("read,pread64,readv,preadv,preadv2,write,pwrite64,writev,pwritev,pwritev2,sendfile,splice,"
               "copy_file_range,recvfrom,recvmsg,sendto,sendmsg,mmap,vmsplice,tee")

def start(argv, preload, cwd=None, measured=True, extra=None, stats=None, trace=None, stdout=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOBOUNCE_") and k != "LD_PRELOAD"}
    if preload:
        env["LD_PRELOAD"] = LIB
        if stats:
            env["NOBOUNCE_STATS"] = os.path.join(stats, "%p.json")
    env.update(extra or {})
    if trace:
        argv = ["strace", "-f", "-qq", "-s", "0", "-e", "signal=none", "-e", f"trace={TRACE_CALLS}",
                "-o", trace] + argv
    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=stdout if stdout is not None else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=join_cgroup if CG and measured else None)

def stop(p):
    if p.poll() is None:
        # Under strace (BENCH_STRACE) the program is strace's child: it is
        # the one to stop (strace itself would detach and leave it running).
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                kids = [int(k) for k in f.read().split()] if p.args[0] == "strace" else []
        except OSError:
            kids = []
        for k in kids or [p.pid]:
            try:
                os.kill(k, signal.SIGTERM)
            except ProcessLookupError:
                pass
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()

def drain_cgroup():
    """Wait (5 s at most) for the last run's processes to leave the cgroup -
    forked handlers finishing, servers exiting - so that none of their CPU
    time counts in the next run; then end the ones left, by PID (all were
    started by this script)."""
    if not CG:
        return []
    procs = os.path.join(CG[0], "cgroup.procs")
    for i in range(50):
        with open(procs) as f:
            left = [int(x) for x in f.read().split()]
        if not left:
            return []
        if i == 49:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
            return left
        time.sleep(0.1)

def launch(key, port, method, stats, trace):
    """Start row KEY's server on PORT: (server, helpers not measured)."""
    pre = method == "preloaded"
    extra = dict(next(r[6] for r in ROWS if r[0] == key)) if pre else {}
    kw = dict(stats=stats, trace=trace, extra=extra)
    helpers = []
    def backend():
        back = free_port()
        h = start(nginx_conf(back, "on"), False, measured=False)
        helpers.append(h)
        wait_port(back, h)
        return back
    if key == "python":
        srv = start(["/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"], pre, www, **kw)
    elif key == "perl":
        srv = start(["perl", os.path.join(BENCH, "perl-server.pl"), str(port), www], pre, **kw)
    elif key == "nginx":
        srv = start(nginx_conf(port, "on" if method == "native" else "off"), pre, **kw)
    elif key == "nginx-256k":
        srv = start(nginx_conf(port, "off", "2 256k"), pre, **kw)
    elif key == "nginx-nobody":
        # "native" here: preloaded with NOBOUNCE_EXACT=strict
        strict = method == "native"
        if strict:
            kw["extra"] = {"NOBOUNCE_EXACT": "strict"}
        srv = start(nginx_nobody(port), pre or strict, **kw)
    elif key == "apache2":
        srv = start(apache_conf(port, "On" if method == "native" else "Off"), pre, **kw)
    elif key == "lighttpd":
        srv = start(lighttpd_conf(port, None), pre, **kw)
    elif key == "lighttpd-writev":
        srv = start(lighttpd_conf(port, "writev"), pre, **kw)
    elif key == "webfsd":
        srv = start(["webfsd", "-F", "-4", "-i", "127.0.0.1", "-p", str(port), "-r", www], pre, **kw)
    elif key == "mini-httpd":
        srv = start(["mini_httpd", "-D", "-h", "127.0.0.1", "-p", str(port), "-d", www,
                     "-l", os.path.join(nobody_dir, f"mini-{port}.log")], pre, **kw)
    elif key in ("haproxy", "haproxy-8k"):
        srv = start(haproxy_conf(port, backend()), pre, **kw)
    elif key == "busybox":
        srv = start(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", www], pre, **kw)
    elif key == "rinetd":
        srv = start(rinetd_conf(port, backend()), pre, **kw)
    elif key == "socat":
        srv = start(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                     f"TCP:127.0.0.1:{backend()}"], pre, **kw)
    elif key == "node":
        srv = start(["node", os.path.join(BENCH, "node-static.js"), str(port), www], pre, **kw)
    else:
        raise RuntimeError(f"no launcher for {key}")
    try:
        wait_port(port, srv)
    except Exception:
        stop(srv)
        for h in helpers:
            stop(h)
        raise
    return srv, helpers

def sender(key, port, method, stats, trace, sock):
    """A peer row's sender, its stdout SOCK: pv FILE; mbuffer connects itself."""
    pre = method == "preloaded"
    if key == "pv":
        return start(["pv", "-q", BIG], pre, stats=stats, trace=trace, stdout=sock.fileno())
    return start(["mbuffer", "-q", "-i", BIG, "-O", f"127.0.0.1:{port}"], pre, stats=stats, trace=trace)

def peer_transfer(key, method, stats, trace, digest):
    """One transfer of a peer row: (bytes received, sha256 or None)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(120)
    port = ls.getsockname()[1]
    out = None
    if key == "pv":
        out = socket.create_connection(("127.0.0.1", port), 10)
    p = sender(key, port, method, stats, trace, out)
    try:
        if out:
            out.close()
        c, _ = ls.accept()
        c.settimeout(120)
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        h = hashlib.sha256() if digest else None
        n = 0
        while True:
            k = c.recv_into(buf)
            if k == 0:
                break
            n += k
            if h:
                h.update(mv[:k])
        c.close()
        p.wait(30)
    finally:
        ls.close()
        if p.poll() is None:
            stop(p)
    if p.returncode != 0:
        raise RuntimeError(f"{key} exited with status {p.returncode}")
    return n, h.hexdigest() if h else None

def http_get(port, digest):
    url = f"http://127.0.0.1:{port}/big.bin"
    if not digest:
        r = subprocess.run(["curl", "-s", "--max-time", "120", "-o", "/dev/null", "-w", "%{size_download}", url],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"curl failed (exit {r.returncode}, {r.stdout.strip()} bytes)")
        return int(r.stdout.strip() or 0), None
    p = subprocess.Popen(["curl", "-s", "--max-time", "120", url], stdout=subprocess.PIPE)
    h, n = hashlib.sha256(), 0
    while b := p.stdout.read(1 << 20):
        n += len(b)
        h.update(b)
    p.wait()
    if p.returncode != 0:
        raise RuntimeError(f"curl failed (exit {p.returncode}, {n} bytes)")
    return n, h.hexdigest()

def report_summary(stats):
    """Sum the JSON reports of a preloaded run (one per process)."""
    s = {"reports": 0, "arms": 0, "deferred_reads": 0, "forwarded_bytes": 0, "mapped_bytes": 0,
         "kernel_calls": 0, "paths": collections.Counter(), "why_not": collections.Counter(), "loops": 0,
         "deferral": collections.Counter(), "deferral_other": collections.Counter()}
    if not stats or not os.path.isdir(stats):
        return s
    for fn in sorted(os.listdir(stats)):
        try:
            with open(os.path.join(stats, fn)) as f:
                j = json.load(f)
        except (OSError, ValueError):
            continue
        s["reports"] += 1
        # A process that may not defer (a signal mask, `nobounce fill`):
        # named when it is the one that ran the loop, or when no process
        # of the run had a loop at all (Node.js reads in its thread pool).
        held = j.get("deferral", "allowed")
        big = [l for l in j.get("loops", []) if l.get("bytes", 0) >= SIZE // 10]
        if held != "allowed" and (big or j.get("counters", {}).get("bounce_bytes", 0) >= SIZE // 10):
            s["deferral"][held] += 1
        elif held != "allowed":
            s["deferral_other"][held] += 1
        c = j.get("counters", {})
        for k in ("arms", "deferred_reads", "forwarded_bytes", "mapped_bytes", "kernel_calls"):
            s[k] += c.get(k, 0)
        for l in j.get("loops", []):
            # A loop that carried at least a tenth of one transfer: the
            # data path, not a header or a config file.
            if l.get("bytes", 0) < SIZE // 10:
                continue
            s["loops"] += 1
            if l.get("arms", 0) or l.get("mapped"):
                s["paths"][f'{l["src_kind"]}->{l["dst_kind"]} {l["kernel_path"]}'] += l.get("bytes", 0)
            else:
                s["why_not"][f'{l["src_kind"]}->{l["dst_kind"]}: {l.get("why_not", "?")}'] += l.get("bytes", 0)
    s["paths"] = dict(s["paths"])
    s["why_not"] = dict(s["why_not"])
    s["deferral"] = dict(s["deferral"])
    s["deferral_other"] = dict(s["deferral_other"])
    return s

def armed_text(s, served):
    if s is None:
        return "-"
    if not s["reports"]:
        return "no report written"
    k = s["forwarded_bytes"]  # mapped_bytes are a part of it
    if s["arms"] or s["mapped_bytes"]:
        paths = ", ".join(p for p, _ in sorted(s["paths"].items(), key=lambda x: -x[1])) or "?"
        how = f"{s['arms']} arms" if s["arms"] else f"mapped writes ({s['mapped_bytes'] >> 20} MiB)"
        t = f"yes: {how}, {paths}; {100 * k / served:.0f}% of bytes by the kernel"
        if s["why_not"]:
            t += "; not armed: " + max(s["why_not"].items(), key=lambda x: x[1])[0]
        return t
    held = " and " + "; ".join(f"deferral: {d}" for d in s["deferral"]) if s["deferral"] else ""
    if s["why_not"]:
        return "no: " + max(s["why_not"].items(), key=lambda x: x[1])[0] + held
    if s["deferral"] or s["deferral_other"]:
        return "no: deferral: " + "; ".join(s["deferral"] or s["deferral_other"])
    return "no copy loop in its reports (its own kernel path)"

def run(row, method, r):
    key, kind = row[0], row[4]
    stats = tempfile.mkdtemp(prefix=f"stats-{key}-", dir=work) if method != "plain" else None
    if stats:
        os.chmod(stats, 0o777)
    res = {"server": row[1], "key": key, "method": method, "round": r}
    srv, helpers = None, []
    try:
        if kind == "http":
            port = free_port()
            srv, helpers = launch(key, port, method, stats, None)
            c0, t0 = cpu(srv.pid), time.monotonic()
            for _ in range(GETS):
                n, _ = http_get(port, False)
                if n != SIZE:
                    raise RuntimeError(f"a timed download got {n} bytes of {SIZE}")
            t1 = time.monotonic()
            time.sleep(0.2)  # forked handlers (busybox, socat) are reaped by now
            c1 = cpu(srv.pid)
            n, sha = http_get(port, True)
        else:
            c0, t0 = peer_cpu(), time.monotonic()
            for _ in range(GETS):
                n, _ = peer_transfer(key, method, stats, None, False)
                if n != SIZE:
                    raise RuntimeError(f"a timed transfer got {n} bytes of {SIZE}")
            t1 = time.monotonic()
            c1 = peer_cpu()
            n, sha = peer_transfer(key, method, stats, None, True)
        gb = GETS * SIZE / 1e9
        res.update({"MBps": GETS * SIZE / 1e6 / (t1 - t0), "cpu_s_per_GB": (c1 - c0) / gb,
                    "verified_bytes": n, "identical": n == SIZE and sha == SRC_SHA})
        if not res["identical"]:
            res["got_sha256"] = sha
    except Exception as e:  # a row that fails says so; the others go on
        res["error"] = str(e)
    finally:
        if srv:
            stop(srv)
        for h in helpers:
            stop(h)
        left = drain_cgroup()
        if left:
            res["left_running"] = left
    if stats:
        time.sleep(0.1)
        res["report"] = report_summary(stats)
        res["armed"] = armed_text(res["report"], (GETS + 1) * SIZE)
    return res

def strace_row(row):
    """The data calls of one plain transfer, counted by name and size."""
    key, kind = row[0], row[4]
    tr = os.path.join(work, f"strace-{key}")
    srv, helpers = None, []
    try:
        if kind == "http":
            port = free_port()
            srv, helpers = launch(key, port, "plain", None, tr)
            http_get(port, False)
            time.sleep(0.3)  # a forked handler's last call, into the trace
        else:
            peer_transfer(key, "plain", None, tr, False)
    finally:
        if srv:
            stop(srv)
        for h in helpers:
            stop(h)
        drain_cgroup()
    calls = collections.Counter()
    pat = re.compile(r"^\d+\s+(\w+)\((-?\d+)?([^)]*)\)\s+=\s+(-?\d+)")
    # a call another thread's call interrupted in strace's output
    resumed = re.compile(r"^\d+\s+<\.\.\. (\w+) resumed>.*\)\s+=\s+(-?\d+)")
    with open(tr) as f:
        for line in f:
            m = pat.match(line) or resumed.match(line)
            if not m:
                continue
            name, ret = m.group(1), int(m.groups()[-1])
            if name == "mmap" and "resumed" in line:
                continue
            if name == "mmap":
                args = line.split("(", 1)[1].split(",")
                if len(args) < 5 or args[4].strip() == "-1":
                    continue
                ret = int(args[1])
            if ret < 4096:
                continue
            sz = f"{ret / (1 << 20):.4g}M" if ret >= 1 << 20 else f"{ret / 1024:.4g}K"
            calls[f"{name} {sz}"] += 1
    return calls

if STRACE:
    for row in PLAN:
        if row[0] in MISSING:
            print(f"{row[1]}: not installed (package {MISSING[row[0]]})")
            continue
        try:
            calls = strace_row(row)
            print(f"{row[1]}: " + ", ".join(f"{k} x{v}" for k, v in calls.most_common(8)))
        except Exception as e:
            print(f"{row[1]}: error: {e}")
    subprocess.run(["rm", "-rf", work])
    if CG:
        drain_cgroup()
        os.rmdir(CG[0])
    sys.exit(0)

t_start = time.monotonic()
runs = []
for r in range(ROUNDS):
    print(f"round {r + 1}/{ROUNDS}", file=sys.stderr, flush=True)
    for row in PLAN:
        if row[0] in MISSING:
            continue
        for m in row[5]:
            x = run(row, m, r)
            runs.append(x)
            if "error" in x:
                print(f"  {row[1]} {m}: error: {x['error']}", file=sys.stderr, flush=True)
wall = time.monotonic() - t_start

def vals(key, method, k):
    return [x[k] for x in runs if x["key"] == key and x["method"] == method and k in x]

def med(key, method, k):
    v = vals(key, method, k)
    return statistics.median(v) if v else None

def rng(key, method, k, d):
    v = vals(key, method, k)
    if len(v) < 2:
        return ""
    return f" ({min(v):.{d}f}-{max(v):.{d}f})"

machine = f"kernel {os.uname().release}, {os.cpu_count()} CPUs"
try:
    with open("/proc/cpuinfo") as f:
        machine = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name")) + ", " + machine
except StopIteration:
    pass
try:
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
except OSError:
    load = ["?"] * 3
bad = [x for x in runs if "identical" in x and not x["identical"]]
errors = [x for x in runs if "error" in x]
sel_txt = "" if sel in ("", "all") else f"BENCH_SERVERS={sel} "
lines = ["# nobounce: real programs, plain / preloaded / their own kernel path", "",
         f"machine: {machine}; {time.strftime('%Y-%m-%d %H:%M %z')}; load average at the end "
         f"{' '.join(load)}; wall time {wall / 60:.1f} min", "",
         f"invoked: `{sel_txt}BENCH_ROUNDS={ROUNDS} BENCH_FILE_MB={MB} BENCH_GETS={GETS} bash scripts/bench-servers.sh`", ""]
if bad:
    lines += ["**NOT BYTE-IDENTICAL:** " + "; ".join(
        f"{x['server']} {x['method']} round {x['round'] + 1}: {x['verified_bytes']} bytes, sha256 {x['got_sha256']}"
        for x in bad), ""]
lines += [f"Each run: the program on 127.0.0.1, {GETS} timed transfers of a {MB} MiB file from /dev/shm "
          "(a plain curl to /dev/null; pv and mbuffer send to a receiver in the script) and one more "
          "whose sha256 is checked. Medians of "
          f"{ROUNDS} interleaved rounds, the rounds' range in parentheses. CPU is the serving process "
          f"tree's (measured through {CPU_HOW}; relays' nginx backend and the receivers not counted), per "
          "GB served. armed: the preloaded run's JSON reports, summed (arms; the kernel path; the "
          "share of bytes the kernel moved; else the `why_not` of its largest loop). native: nginx "
          "with `sendfile on`, apache2 with `EnableSendfile On`; for nginx as nobody (a user that may "
          "not lease the root-owned file) the native column is preloaded with `NOBOUNCE_EXACT=strict`. "
          "identical: transfers whose bytes matched the source, of those made (plain + preloaded + native).", "",
          "| program | data path (plain) | armed? or why not | plain MB/s | plain CPU s/GB | preloaded MB/s "
          "| preloaded CPU s/GB | native MB/s | native CPU s/GB | preloaded/plain speed | preloaded/plain CPU "
          "| identical |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
summary = {}
fmt = lambda v, d: "-" if v is None else f"{v:.{d}f}"
for row in PLAN:
    key, label, methods = row[0], row[1], row[5]
    if key in MISSING:
        lines.append(f"| {label} | - | not installed (package {MISSING[key]}) | - | - | - | - | - | - | - | - | - |")
        continue
    g = {m: (med(key, m, "MBps"), med(key, m, "cpu_s_per_GB")) for m in methods}
    summary[label] = g
    pre_runs = [x for x in runs if x["key"] == key and x["method"] == "preloaded"]
    texts = [x["armed"] for x in pre_runs if "armed" in x]
    armed = texts[-1] if texts else "-"
    if len({t.split(":")[0] for t in texts}) > 1:
        armed += " (not in every round: " + ", ".join(t.split(":")[0] for t in texts) + ")"
    errs = [x for x in runs if x["key"] == key and "error" in x]
    if errs:
        armed += f"; {len(errs)} run(s) failed: {errs[0]['method']}: {errs[0]['error']}"
    made = [x for x in runs if x["key"] == key and "identical" in x]
    same = sum(1 for x in made if x["identical"])
    n = g.get("native", (None, None))
    p, q = g["plain"], g["preloaded"]
    sp = f"{q[0] / p[0]:.2f}" if p[0] and q[0] else "-"
    cp = f"{q[1] / p[1]:.2f}" if p[1] and q[1] is not None else "-"
    cell = lambda m, k, d: fmt(g.get(m, (None, None))[0 if k == "MBps" else 1], d) + (rng(key, m, k, d) if m in g else "")
    lines.append(f"| {label} | {row[7]} | {armed} | {cell('plain', 'MBps', 0)} | {cell('plain', 'cpu_s_per_GB', 2)} | "
                 f"{cell('preloaded', 'MBps', 0)} | {cell('preloaded', 'cpu_s_per_GB', 2)} | "
                 f"{cell('native', 'MBps', 0) if 'native' in g else '-'} | "
                 f"{cell('native', 'cpu_s_per_GB', 2) if 'native' in g else '-'} | {sp} | {cp} | {same}/{len(made)} |")
# The noise floor: rows the library leaves plain (never armed) should run
# at 1.00x; how far their ratios stray is what this machine's noise does.
floor = []
for row in PLAN:
    key = row[0]
    texts = [x.get("armed", "") for x in runs if x["key"] == key and x["method"] == "preloaded"]
    p, q = med(key, "plain", "MBps"), med(key, "preloaded", "MBps")
    pc, qc = med(key, "plain", "cpu_s_per_GB"), med(key, "preloaded", "cpu_s_per_GB")
    if texts and all(t.startswith("no") for t in texts) and p and q and pc and qc:
        floor.append((q / p, qc / pc))
if floor:
    lines += ["", f"Noise floor: the {len(floor)} rows never armed (the library leaves them plain) ran at "
              f"{min(f[0] for f in floor):.2f}-{max(f[0] for f in floor):.2f}x plain speed and "
              f"{min(f[1] for f in floor):.2f}-{max(f[1] for f in floor):.2f}x plain CPU per GB in this run: "
              "ratios inside that band are not a measured difference."]
os.makedirs(os.path.dirname(OUT) or ".", exist_ok=True)
with open(OUT + ".md", "w") as f:
    f.write("\n".join(lines) + "\n")
with open(OUT + ".json", "w") as f:
    json.dump({"machine": machine, "rounds": ROUNDS, "file_mb": MB, "gets": GETS, "wall_s": wall,
               "loadavg_end": load, "missing": MISSING, "runs": runs, "medians": summary}, f, indent=1)

# SVG: for each program, bars for MB/s (left panel) and CPU s/GB (right)
colors = {"plain": "#888888", "preloaded": "#2b7bb9", "native": "#e08a1e"}
rowh = lambda g: 10 + 18 * len(g)
W, H, pad, bar = 1000, 60 + sum(rowh(g) for g in summary.values()), 270, 16
def vmax_of(idx):
    return max([t[idx] for g in summary.values() for t in g.values() if t[idx] is not None] or [1]) or 1
body = []
for x0, idx, title in ((pad, 0, "throughput, MB/s (higher is better)"),
                       (pad + 370, 1, "server CPU s per GB (lower is better)")):
    body.append(f'<text x="{x0}" y="24" font-size="13" font-weight="bold">{title}</text>')
    vm = vmax_of(idx)
    y = 40
    for server, g in summary.items():
        if idx == 0:
            body.append(f'<text x="8" y="{y + 13}" font-size="11">{server}</text>')
        for j, (m, t) in enumerate(g.items()):
            if t[idx] is None:
                continue
            w = t[idx] / vm * 230
            yy = y + j * (bar + 2)
            body.append(f'<rect x="{x0}" y="{yy}" width="{w:.1f}" height="{bar}" fill="{colors[m]}"/>')
            label = f"{t[idx]:.0f}" if idx == 0 else f"{t[idx]:.2f}"
            body.append(f'<text x="{x0 + w + 4:.1f}" y="{yy + 12}" font-size="11">{m} {label}</text>')
        y += rowh(g)
svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">'
       f'<rect width="100%" height="100%" fill="white"/>' + "".join(body) +
       f'<text x="8" y="{H - 8}" font-size="10">{machine}; {GETS} x {MB} MiB per run, medians of {ROUNDS} rounds</text></svg>\n')
with open(OUT + ".svg", "w") as f:
    f.write(svg)
for x in bad:
    print(f"bench-servers: NOT BYTE-IDENTICAL: {x['server']} {x['method']} round {x['round'] + 1}: "
          f"{x['verified_bytes']} bytes, sha256 {x['got_sha256']} (source {SRC_SHA})", file=sys.stderr)
print("\n".join(lines))
print(f"\nwrote {OUT}.md, {OUT}.json and {OUT}.svg ({wall / 60:.1f} min)")
subprocess.run(["rm", "-rf", work])
if CG:
    drain_cgroup()
    os.rmdir(CG[0])
sys.exit(1 if bad else 0)
PYEOF
