#!/usr/bin/env bash
# bench-ab.sh - the preloaded copy loop with the library as built now next
# to the library of an earlier commit, interleaved in one run: what a
# change cost or gained, in the ratio that the "no speed lost" targets are
# stated in.
#
#   bash scripts/bench-ab.sh REV
#
# REV (a commit, tag or branch) is built in a temporary worktree. Each
# round runs build/prog/kcopy DIR plain CHUNK preloaded with REV's library
# and with build/libnobounce.so, in an order that alternates from round to
# round, for every direction, chunk and placement; the table gives the
# medians of MB/s and CPU s/GB and the ratios new/old.
#
# Environment: AB_ROUNDS (default 5), AB_SIZE_MB (default 512),
# AB_DIRS (default "file-pipe file-tcp file-file tcp-file"),
# AB_CHUNKS (default "64K 128K 1M"), AB_AFFINITY (default "split same"),
# AB_KCOPY_ARGS (extra kcopy options, e.g. -H: the program has a signal
# handler installed, as servers do).
# Writes nothing but the table on stdout; never fails on a ratio.
set -u
cd "$(dirname "$0")/.." || exit 2
REV=${1:-}
[ -n "$REV" ] || { echo "usage: bash scripts/bench-ab.sh REV" >&2; exit 2; }
git rev-parse -q --verify "$REV^{commit}" > /dev/null ||
	{ echo "bench-ab.sh: '$REV' is not a commit" >&2; exit 2; }
make -s lib progs || exit 2
OLD=$(mktemp -d "${TMPDIR:-/tmp}/nb-ab.XXXXXX")
trap 'git worktree remove --force "$OLD/tree" > /dev/null 2>&1; rm -rf "$OLD"' EXIT
git worktree add -q --detach "$OLD/tree" "$REV" || exit 2
make -s -C "$OLD/tree" lib > /dev/null || { echo "bench-ab.sh: $REV does not build" >&2; exit 2; }

# Not exec: the EXIT trap above removes the old tree's worktree.
python3 - "$OLD/tree/build/libnobounce.so" "$PWD/build/libnobounce.so" "$REV" <<'PY'
import os, statistics, subprocess, sys

old_lib, new_lib, rev = sys.argv[1:4]
env = os.environ.get
rounds = int(env("AB_ROUNDS", "5"))
size = f'{int(env("AB_SIZE_MB", "512"))}M'
dirs = env("AB_DIRS", "file-pipe file-tcp file-file tcp-file").split()
chunks = env("AB_CHUNKS", "64K 128K 1M").split()
affs = env("AB_AFFINITY", "split same").split()
kargs = env("AB_KCOPY_ARGS", "").split()
kcopy = "build/prog/kcopy"
src = "/dev/shm/nb-kcopy.src"
subprocess.run([kcopy, "-p", "-s", size, "-f", src], check=True, capture_output=True)

def run(lib, d, a, chunk):
    e = {k: v for k, v in os.environ.items() if not k.startswith("NOBOUNCE_")}
    e["LD_PRELOAD"] = lib
    p = subprocess.run([kcopy, "-s", size, "-f", src, *kargs, "-A", a, d, "plain", chunk],
                       env=e, capture_output=True, text=True, timeout=300)
    kv = dict(w.split("=", 1) for w in p.stdout.split() if "=" in w)
    if kv.get("status") != "ok":
        return None
    return float(kv["MBps"]), float(kv["cpu_s_per_GB"])

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), "")
print(f"bench-ab: {rev} (old) vs the working tree (new), {rounds} rounds, {size} per run, "
      f"kcopy {' '.join(kargs) or '(no options)'}, medians; kernel {os.uname().release}, {cpu}, nproc {os.cpu_count()}")
print(f"{'direction':10} {'place':5} {'chunk':>5} | {'old MB/s':>8} {'new MB/s':>8} "
      f"{'new/old':>7} | {'old s/GB':>8} {'new s/GB':>8} {'new/old':>7}")
for d in dirs:
    for a in (affs if d not in ("file-file", "tcp-file") else affs[:1]):
        for c in chunks:
            res = {"old": [], "new": []}
            for r in range(rounds):
                order = [("old", old_lib), ("new", new_lib)]
                if r % 2:
                    order.reverse()
                for name, lib in order:
                    x = run(lib, d, a, c)
                    if x:
                        res[name].append(x)
            if not res["old"] or not res["new"]:
                print(f"{d:10} {a:5} {c:>5} | a run failed")
                continue
            om = statistics.median(x[0] for x in res["old"])
            nm = statistics.median(x[0] for x in res["new"])
            oc = statistics.median(x[1] for x in res["old"])
            nc = statistics.median(x[1] for x in res["new"])
            print(f"{d:10} {a:5} {c:>5} | {om:8.0f} {nm:8.0f} {nm / om:7.2f} | "
                  f"{oc:8.3f} {nc:8.3f} {nc / oc:7.2f}", flush=True)
PY
