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

# ---- live stats: the library's file, nobounce stat ----

# feed_start: bounce copying its stdin (a fifo this shell holds open on
# fd 7) into out.bin under the command, with its own live directory;
# BPID is its pid. 32 MiB go through at once.
feed_start() {
	mkfifo fifo
	mkdata in.bin 32M
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" --min-chunk 4K -- "$PROG/bounce" --chunk 64K --timeout 30 \
		- out.bin < fifo &
	BPID=$!
	echo "$BPID" > bounce.pid
	exec 7> fifo
	cat in.bin >&7
	for _ in $(seq 50); do
		[ -s out.bin ] && [ "$(stat -c %s out.bin)" = 33554432 ] && break
		sleep 0.1
	done
}

feed_stop() {
	exec 7>&-
	wait "$BPID"
	rm -f bounce.pid
}

test_stat_shows_a_running_process_counters_as_text_json_and_in_the_list() {
	feed_start
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" stat "$BPID" > stat.txt || fail "stat failed"
	assert_grep "^pid $BPID \(bounce\), mode on$" stat.txt
	assert_grep '^  bounces +512$' stat.txt
	assert_grep '^  bounce_bytes +33554432  32.0 MiB$' stat.txt
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" stat --json "$BPID" > stat.json || fail "stat --json failed"
	assert_eq "$(jget stat.json "j['counters']['bounce_bytes']")" 33554432
	assert_eq "$(jget stat.json "j['program']")" bounce
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" stat > list.txt
	assert_grep "^$BPID +bounce +on +bounces 512, by the kernel " list.txt
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" stat --watch 0.1 --count 3 "$BPID" > watch.txt
	assert_eq "$(grep -c '^pid ' watch.txt)" 3 "readings with --watch --count 3"
	feed_stop
	assert_same in.bin out.bin
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" stat "$BPID" 2> gone.txt
	assert_eq "$?" 1 "stat of an ended process"
	assert_eq "$(wc -l < gone.txt)" 1 "lines for an ended process"
	assert_grep "^nobounce: no live stats for pid $BPID " gone.txt
	[ ! -e "$T/live/$BPID.live" ] || fail "the live file outlived its process"
}

# The directory is created 0700, the file 0600; another mode on the
# directory, or a symlink planted at the file's name, turns live stats off
# with one warning and nothing is followed or written.
test_exact_option_sets_the_mode_and_a_bad_one_is_named() {
	"$NB" --exact strict -s "$T/st.json" -- cat /etc/hostname > /dev/null || fail "exit status"
	assert_eq "$(jget "$T/st.json" "j['exact']")" strict
	if "$NB" --exact sometimes -- true 2> err.txt; then fail "a bad --exact was taken"; fi
	assert_grep "^nobounce: --exact must be auto, strict or off \(got 'sometimes'\)$" err.txt
}

test_live_file_is_private_and_never_follows_a_planted_symlink() {
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" -- sh -c 'stat -c "%a %U" "$NOBOUNCE_LIVE_DIR" "$NOBOUNCE_LIVE_DIR/$$.live"' > modes.txt
	assert_eq "$(tr '\n' ' ' < modes.txt)" "700 $(id -un) 600 $(id -un) " "modes of the live directory and file"
	echo precious > target
	# planted by a shell without the library, which then becomes (exec, same
	# pid) a preloaded program
	NOBOUNCE_LIVE_DIR="$T/live" sh -c \
		'ln -s "$PWD/target" "$NOBOUNCE_LIVE_DIR/$$.live" && exec env LD_PRELOAD="$0" true' "$LIB" 2> warn.txt
	assert_eq "$(cat target)" precious "the symlink's target"
	assert_grep 'live stats off: cannot use .*\.live' warn.txt
	mkdir -m 755 open
	NOBOUNCE_LIVE_DIR="$T/open" "$NB" -- true 2> warn.txt
	assert_grep "live stats off: $T/open is not a directory of this user closed to others" warn.txt
	assert_eq "$(ls open | wc -l)" 0 "files in a directory open to others"
	NOBOUNCE_LIVE_DIR="$T/off" "$NB" --live off -- true
	[ ! -e "$T/off" ] || fail "--live off made a directory"
	# off means off: no file either in mode off
	NOBOUNCE_LIVE_DIR="$T/modeoff" "$NB" --mode off -- true
	[ ! -e "$T/modeoff" ] || fail "mode off made a live directory"
}

# A forked child counts in a file of its own (the parent's mapping is
# shared memory); files of processes that died without their exit
# handlers are swept by the next process that starts.
test_forked_child_gets_its_own_live_file_and_dead_ones_are_swept() {
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" -- bash -c \
		'sleep 1 & echo $! > child.pid; echo $$ > parent.pid; sleep 0.3; ls "$NOBOUNCE_LIVE_DIR" > listing; wait'
	assert_grep "^$(cat parent.pid)\.live$" listing
	assert_grep "^$(cat child.pid)\.live$" listing
	local dead=4000000
	while [ -e "/proc/$dead" ]; do dead=$((dead + 1)); done
	: > "$T/live/$dead.live"
	NOBOUNCE_LIVE_DIR="$T/live" "$NB" -- true
	[ ! -e "$T/live/$dead.live" ] || fail "a dead process's file was not swept"
}

test_stat_usage_errors_are_one_line_and_125() {
	local a
	for a in "abc" "--watch x 1" "--count 0 1" "1 2" "--bogus"; do
		# shellcheck disable=SC2086 # the arguments as words
		"$NB" stat $a 2> err.txt
		assert_eq "$?" 125 "status of stat $a"
		assert_eq "$(wc -l < err.txt)" 2 "lines for stat $a (the error and the --help hint)"
	done
	NOBOUNCE_LIVE=maybe true 2> /dev/null
	env LD_PRELOAD="$LIB" NOBOUNCE_LIVE=maybe true 2> err.txt
	assert_grep 'NOBOUNCE_LIVE' err.txt
}

# nobounce report: the exit report as a table - the totals, and a line
# for each loop with its kinds, iterations, bytes, path and chunk sizes.
test_report_shows_the_exit_report_as_a_table() {
	mkdata in.bin 4M
	"$NB" --observe --stats "$T/r.json" -- cat in.bin 2> /dev/null | cat > out.bin
	assert_same in.bin out.bin
	"$NB" report r.json > table.txt || fail "report failed"
	assert_grep '^nobounce report: cat \(pid [0-9]+\), mode observe$' table.txt
	assert_grep '^  bounces 32 \(4.0 MiB\); ' table.txt
	assert_grep '^  fd 3 file +fd 1 pipe +32 +4.0 MiB splice +1 +8.0 MiB +64/32 +128K:32$' table.txt
	"$NB" report "$NB_ROOT/README.md" 2> err.txt
	assert_eq "$?" 1 "status for a file that is not a report"
	assert_grep 'is not a report written by libnobounce' err.txt
	"$NB" report 2> err.txt
	assert_eq "$?" 125 "status without a file"
}

# nobounce bench: the command plain and preloaded in turn, wall and CPU
# time side by side with the per-round ratio; a failing run stops it.
test_bench_runs_plain_and_preloaded_in_turn_and_compares() {
	mkdata in.bin 16M
	"$NB" bench --runs 2 --bytes 16M -- sh -c "cat '$T/in.bin' | cat > /dev/null" > bench.txt ||
		fail "bench failed: $(cat bench.txt)"
	assert_grep '^nobounce bench: 2 runs each, plain and preloaded in turn: sh -c ' bench.txt
	assert_grep '^  plain +[0-9.]+ \[[0-9.]+\.\.[0-9.]+\] +[0-9.]+ \[' bench.txt
	assert_grep '^  preloaded +[0-9.]+ \[' bench.txt
	assert_grep '^  preloaded/plain, per round: wall [0-9.]+ \[[0-9.]+\.\.[0-9.]+\], CPU [0-9.]+ ' bench.txt
	assert_grep '^  throughput MB/s: plain [0-9.]+ ' bench.txt
	"$NB" bench --runs 1 -- sh -c 'exit 3' > /dev/null 2> err.txt
	assert_eq "$?" 1 "status when a run fails"
	assert_grep '^nobounce: bench: run 1 plain exited with status 3$' err.txt
	"$NB" bench --runs zero -- true 2> err.txt
	assert_eq "$?" 125 "status of a bad --runs"
	"$NB" bench 2> err.txt
	assert_eq "$?" 125 "status without a command"
}

# --summary: the report as a table on stderr when the command ends; the
# command's output, exit status and death by signal pass through.
test_summary_prints_the_report_when_the_command_ends_and_keeps_its_status() {
	mkdata in.bin 8M
	"$NB" --summary -- dd if=in.bin bs=1M status=none > out.bin 2> summary.txt
	assert_eq "$?" 0 "status of dd"
	assert_same in.bin out.bin
	assert_grep '^nobounce report: dd \(pid [0-9]+\), mode on$' summary.txt
	assert_grep '^  fd 0 file +fd 1 file +8 +8.0 MiB ' summary.txt
	"$NB" --summary -- cat no-such-file > /dev/null 2> err.txt
	assert_eq "$?" 1 "status of cat with a missing file"
	assert_grep '^nobounce report: cat ' err.txt
	( "$NB" --summary -- sh -c 'kill -TERM $$' ) 2> /dev/null
	assert_eq "$?" 143 "status of a command killed by SIGTERM"
}

run_tests
