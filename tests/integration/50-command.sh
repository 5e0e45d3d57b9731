#!/usr/bin/env bash
# The nobounce command, make install/uninstall, and descriptors across
# exec on every way a program starts another (fork+exec, posix_spawn,
# vfork via subprocess, system).
. "$(dirname "$0")/lib.sh"

NB=$NB_ROOT/scripts/nobounce

test_command_runs_program_with_library_and_keeps_exit_status() {
	"$NB" -- sh -c 'case "$LD_PRELOAD" in *libnobounce.so*) exit 7;; esac; exit 1'
	assert_eq "$?" 7 "exit status through nobounce"
}

test_command_passes_on_death_by_signal() {
	# (The subshell keeps bash's "Terminated" notice out of the log.)
	( "$NB" -- sh -c 'kill -TERM $$' ) 2> /dev/null
	assert_eq "$?" 143 "status of a program killed by SIGTERM"
}

test_command_observe_option_prints_report() {
	mkdata in.bin 1M
	"$NB" --observe -- cat in.bin 2> report.txt | cat > out.bin
	assert_same in.bin out.bin
	assert_grep 'fd 3 \(file\) -> fd 1 \(pipe\): 8 iterations' report.txt
}

test_command_options_set_the_variables() {
	"$NB" --mode off --min-chunk 64K --arm-after 3 --paths splice --stats x.json --log error -- \
		env > env.txt
	assert_grep '^NOBOUNCE_MODE=off$' env.txt
	assert_grep '^NOBOUNCE_MIN_CHUNK=64K$' env.txt
	assert_grep '^NOBOUNCE_ARM_AFTER=3$' env.txt
	assert_grep '^NOBOUNCE_PATHS=splice$' env.txt
	assert_grep '^NOBOUNCE_STATS=x.json$' env.txt
	assert_grep '^NOBOUNCE_LOG=error$' env.txt
}

test_command_adds_library_to_preload_once() {
	LD_PRELOAD="$LIB" "$NB" --lib "$LIB" -- env > env.txt
	assert_eq "$(grep -c libnobounce.so env.txt)" 1
	assert_eq "$(grep '^LD_PRELOAD=' env.txt | grep -o libnobounce.so | wc -l)" 1
}

test_command_bad_option_is_one_clear_line_and_status_125() {
	"$NB" --mode fast -- true 2> err.txt
	assert_eq "$?" 125
	assert_grep "^nobounce: --mode must be on, observe or off \(got 'fast'\)$" err.txt
	"$NB" --frobnicate -- true 2> err.txt
	assert_eq "$?" 125
	assert_grep "^nobounce: unknown option '--frobnicate'$" err.txt
	"$NB" 2> err.txt
	assert_eq "$?" 125
	assert_grep '^nobounce: no command given$' err.txt
}

test_command_unknown_program_is_127() {
	"$NB" -- no-such-program-here 2> err.txt
	assert_eq "$?" 127
	assert_grep 'command not found' err.txt
}

test_command_help_and_version() {
	"$NB" --help > help.txt || fail "--help failed"
	assert_grep '^Usage: nobounce ' help.txt
	"$NB" --version > v.txt || fail "--version failed"
	assert_grep '^nobounce [0-9]+\.[0-9]+\.[0-9]+$' v.txt
}

test_make_install_honours_prefix_and_destdir_and_uninstall_removes() {
	make -s -C "$NB_ROOT" install PREFIX=/opt/nb DESTDIR="$T/root" > /dev/null ||
		fail "make install failed"
	for f in lib/libnobounce.so bin/nobounce share/man/man1/nobounce.1 share/man/man7/libnobounce.7; do
		[ -f "$T/root/opt/nb/$f" ] || fail "missing $f"
	done
	grep -q 'LIBDIR="/opt/nb/lib"' "$T/root/opt/nb/bin/nobounce" || fail "LIBDIR not substituted"
	# The installed command works with the installed library.
	mkdata in.bin 1M
	"$T/root/opt/nb/bin/nobounce" --lib "$T/root/opt/nb/lib/libnobounce.so" --observe -- \
		cat in.bin 2> report.txt | cat > out.bin
	assert_same in.bin out.bin
	assert_grep 'copy loop found' report.txt
	man -l "$T/root/opt/nb/share/man/man7/libnobounce.7" > man.txt 2>/dev/null || true
	make -s -C "$NB_ROOT" uninstall PREFIX=/opt/nb DESTDIR="$T/root" > /dev/null ||
		fail "make uninstall failed"
	[ -z "$(find "$T/root" -type f)" ] || fail "uninstall left files: $(find "$T/root" -type f)"
}

test_no_internal_descriptor_survives_exec_on_any_spawn_path() {
	# python3 holds the private descriptor (observe mode, at 1023 under a
	# limit of 1024); the children it starts are not selected, so every
	# descriptor they list beyond a plain run's is one that leaked
	# through exec.
	ulimit -n 1024 || fail "cannot set RLIMIT_NOFILE"
	cat > spawn.py <<'EOF'
import os, subprocess, sys
ls = ["/bin/ls", "/proc/self/fd"]
def show(tag, out): print(tag, " ".join(sorted(out.split())))
show("parent", " ".join(os.listdir("/proc/self/fd")))
# subprocess: vfork/posix_spawn inside CPython
show("subprocess", subprocess.run(ls, capture_output=True, text=True, close_fds=False).stdout)
# os.system: glibc system() = posix_spawn
r, w = os.pipe()
os.set_inheritable(w, True)
os.system("/bin/ls /proc/self/fd >&%d" % w); os.close(w)
show("system", os.read(r, 4096).decode()); os.close(r)
# os.posix_spawn
r, w = os.pipe()
pid = os.posix_spawn(ls[0], ls, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)])
os.waitpid(pid, 0); os.close(w)
show("posix_spawn", os.read(r, 4096).decode()); os.close(r)
# fork + exec
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.dup2(w, 1); os.execv(ls[0], ls)
os.waitpid(pid, 0); os.close(w)
show("fork", os.read(r, 4096).decode()); os.close(r)
EOF
	"$PY" spawn.py > plain.txt || fail "plain run failed"
	NOBOUNCE_MODE=observe NOBOUNCE_ONLY=python3 nb_run "$PY" spawn.py > shim.txt 2> err.txt ||
		fail "preloaded run failed: $(cat err.txt)"
	# Not vacuous: the parent did hold the private descriptor ...
	assert_grep '^parent .* 1023( |$)' shim.txt
	assert_nogrep '^parent .* 1023( |$)' plain.txt
	# ... and no child saw it, whichever way it was started.
	grep -v '^parent' plain.txt > plain.children
	grep -v '^parent' shim.txt > shim.children
	assert_eq "$(wc -l < shim.children)" 4
	assert_same plain.children shim.children
}

run_tests
