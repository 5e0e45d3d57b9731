#!/usr/bin/env bash
# Exact pass-through: every hooked call returns what it returns without
# the library (build/prog/passlog logs a fixed script of calls; the logs
# must be byte-identical), the library's own descriptors are invisible,
# the standard descriptors stay the program's, settings problems are one
# line each, and a secure (set-user-ID) process is left alone.
. "$(dirname "$0")/lib.sh"

PASSLOG=$PROG/passlog

# passlog_differential "ARGS" [VAR=value...]: runs `passlog ARGS` without
# the library, then with it under the given settings; the logs (stdout)
# and exit statuses must be identical. Leaves plain.log/plain.err and
# shim.log/shim.err for further checks.
passlog_differential() {
	local args=$1 rc1 rc2
	shift
	# shellcheck disable=SC2086 # ARGS is a word list on purpose
	"$PASSLOG" $args > plain.log 2> plain.err
	rc1=$?
	# shellcheck disable=SC2086
	env ${1+"$@"} LD_PRELOAD="$LIB" "$PASSLOG" $args > shim.log 2> shim.err
	rc2=$?
	assert_eq "$rc1" 0 "exit status of passlog $args without the library"
	assert_grep '^passlog: done$' plain.log
	assert_nogrep 'WRONG|DIFFERENT' plain.log
	if ! cmp -s plain.log shim.log; then
		echo "      diff <without> <with LD_PRELOAD $*> (first 80 lines):" >&2
		diff plain.log shim.log | head -80 | sed 's/^/      | /' >&2
		fail "passlog $args: log differs with the library ($*)"
	fi
	assert_eq "$rc2" "$rc1" "exit status with the library ($*)"
}

test_passlog_identical_with_and_without_shim() {
	passlog_differential "" # default settings (mode on)
	[ "$(wc -l < plain.log)" -gt 1000 ] || fail "passlog log is suspiciously short"
}

test_passlog_identical_in_observe_mode() {
	passlog_differential "" NOBOUNCE_MODE=observe
	# The copy loops of the script were really seen (so the hooks did
	# work while the log stayed identical), including the forked child's
	# and the one after close_range(3, ~0U).
	assert_grep 'passlog\[[0-9]+\] observe report' shim.err
	assert_grep '\(file\) -> fd [0-9]+ \(pipe\)' shim.err
	assert_grep '\(file\) -> fd [0-9]+ \(tcp\)' shim.err
	assert_grep '\(file\) -> fd [0-9]+ \(unix\)' shim.err
	assert_grep '\(tcp\) -> fd [0-9]+ \(file\)' shim.err
	assert_grep '\(pipe\) -> fd [0-9]+ \(tcp\)' shim.err
	[ "$(grep -c 'observe report' shim.err)" -eq 2 ] ||
		fail "expected two observe reports (parent and forked child)"
}

test_passlog_identical_in_off_mode() {
	passlog_differential "" NOBOUNCE_MODE=off
	[ ! -s shim.err ] || fail "mode off wrote to stderr: $(head -3 shim.err)"
}

test_passlog_identical_when_arming_at_first_bounce() {
	passlog_differential "" NOBOUNCE_MODE=on NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=512
	# The same run with a stats file shows that pairs did arm. (A
	# separate run: a stats file makes the library keep a private
	# descriptor, which the tests above cover.)
	mkdir stats
	NOBOUNCE_MODE=on NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=512 \
		NOBOUNCE_STATS="$T/stats/passlog-%p.json" nb_run "$PASSLOG" > stats.log 2>&1 ||
		fail "passlog with a stats file failed"
	local arms
	arms=$(cat stats/*.json | sed -n 's/.*"arms": \([0-9]*\),.*"disarms".*/\1/p' |
		awk '{ s += $1 } END { print s + 0 }')
	[ "$arms" -gt 0 ] || fail "no pair armed (stats: $(ls stats))"
}

test_passlog_identical_with_debug_log_and_json_report_on_stderr() {
	# Both need the private duplicate of stderr in mode on as well.
	passlog_differential "" NOBOUNCE_MODE=on NOBOUNCE_LOG=debug NOBOUNCE_STATS=stderr
	assert_grep '"nobounce":' shim.err
	assert_grep 'armed' shim.err
}

test_internal_descriptors_invisible() {
	# With a soft limit of 1024 the library's private descriptor sits at
	# 1023, inside the range `passlog fds` scans (0..1100).
	ulimit -n 1024 || fail "cannot set RLIMIT_NOFILE"
	passlog_differential fds NOBOUNCE_MODE=observe
	# Not vacuous: the library did hold a private descriptor at the top
	# (the plain run has none). `passlog fds` then dup()s until EMFILE:
	# the library gives its descriptor up so the program gets every
	# number it would get without it ...
	assert_grep '^passlog: procfd at start:.* 1023$' shim.err
	assert_nogrep '^passlog: procfd .* 1023( |$)' plain.err
	assert_nogrep '^passlog: procfd at end:.* 1023$' shim.err
	# ... and still worked afterwards: the only copy loop of `passlog
	# fds` runs after close_range, and the exit report shows it.
	assert_grep '\(file\) -> fd [0-9]+ \(pipe\): 16 iterations' shim.err
}

test_stdin_stdout_stderr_are_ordinary_descriptors() {
	mkdata in.bin 3M
	nb_run dd if=in.bin of=out1.bin bs=64K status=none || fail "dd failed"
	assert_same in.bin out1.bin
	# fds 0 and 1 closed: dd's opens of if= and of= take them.
	nb_run dd if=in.bin of=out2.bin bs=64K status=none <&- >&- || fail "dd (0, 1 closed) failed"
	assert_same in.bin out2.bin
	NOBOUNCE_MODE=observe nb_run dd if=in.bin of=out3.bin bs=64K status=none <&- >&- \
		2> report.txt || fail "dd (observe, 0, 1 closed) failed"
	assert_same in.bin out3.bin
	assert_grep 'fd 0 \(file\) -> fd 1 \(file\): 48 iterations' report.txt
	# stderr closed: no private duplicate, cat's own open may take fd 2.
	nb_run cat in.bin 2>&- > out4.bin || fail "cat with stderr closed: exit $?"
	assert_same in.bin out4.bin
	NOBOUNCE_MODE=observe nb_run cat in.bin 2>&- | cat > out5.bin
	assert_eq "${PIPESTATUS[0]}" 0 "cat (observe) with stderr closed"
	assert_same in.bin out5.bin
	# The descriptor script with stderr closed: identical too.
	"$PASSLOG" fds > plain.log 2>&-
	NOBOUNCE_MODE=observe nb_run "$PASSLOG" fds > shim.log 2>&-
	assert_grep '^passlog: done$' plain.log
	cmp -s plain.log shim.log || {
		diff plain.log shim.log | head -40 | sed 's/^/      | /' >&2
		fail "passlog fds with stderr closed differs"
	}
}

test_exit_report_survives_closed_stderr() {
	mkdata in.bin 2M
	NOBOUNCE_MODE=observe NOBOUNCE_STATS=stderr nb_run cat in.bin 2> err.txt | cat > out.bin
	assert_eq "${PIPESTATUS[0]}" 0 "cat exit status"
	assert_same in.bin out.bin
	assert_grep '"program": "cat"' err.txt
	assert_grep '"src_kind": "file", "dst_fd": [0-9]+, "dst_kind": "pipe"' err.txt
	# Not vacuous: cat really closed fd 2 (gnulib close_stdout) before
	# the report was written, and the report went to another number.
	strace -f -qq -o trace.txt -e trace=close,write -E LD_PRELOAD="$LIB" \
		-E NOBOUNCE_MODE=observe -E NOBOUNCE_STATS=stderr cat in.bin 2> err2.txt |
		cat > out2.bin
	assert_same in.bin out2.bin
	assert_grep '"program": "cat"' err2.txt
	local closed written
	closed=$(grep -nE '^[0-9]+ +close\(2\) += 0' trace.txt | head -1 | cut -d: -f1)
	written=$(grep -nE '^[0-9]+ +write\([0-9]+, "\{\\n  \\"nobounce' trace.txt | head -1)
	[ -n "$closed" ] || fail "cat did not close fd 2 (trace.txt)"
	[ -n "$written" ] || fail "no report write in trace.txt"
	[ "${written%%:*}" -gt "$closed" ] || fail "report written before fd 2 was closed"
	[[ $written != *"write(2,"* ]] || fail "report written to fd 2"
}

test_bad_setting_prints_one_line_and_program_runs() {
	mkdata in.bin 1M
	NOBOUNCE_MIN_CHUNK=abc nb_run "$PASSLOG" cat 7 < in.bin > out.bin 2> err.txt
	assert_eq "$?" 7 "exit status"
	assert_same in.bin out.bin
	assert_eq "$(wc -l < err.txt)" 1 "lines on stderr"
	assert_grep "^nobounce: NOBOUNCE_MIN_CHUNK='abc' is invalid" err.txt
	# A coreutils program too, in observe mode: one complaint, then
	# the report; output intact.
	NOBOUNCE_MODE=observe NOBOUNCE_MIN_CHUNK=abc nb_run cat in.bin 2> err2.txt | cat > out2.bin
	assert_eq "${PIPESTATUS[0]}" 0 "cat exit status"
	assert_same in.bin out2.bin
	assert_eq "$(grep -c 'NOBOUNCE_MIN_CHUNK' err2.txt)" 1 "complaints"
	assert_grep 'observe report' err2.txt
}

test_unknown_variable_warned() {
	mkdata in.bin 256K
	NOBOUNCE_MODDE=observe nb_run "$PASSLOG" cat 0 < in.bin > out.bin 2> err.txt ||
		fail "exit status $?"
	assert_same in.bin out.bin
	assert_eq "$(wc -l < err.txt)" 1 "lines on stderr"
	assert_grep '^nobounce: unknown variable NOBOUNCE_MODDE ignored' err.txt
	# Known ones are not warned about.
	NOBOUNCE_MODE=on NOBOUNCE_LOG=warn NOBOUNCE_PATHS=all nb_run "$PASSLOG" cat 0 \
		< in.bin > out2.bin 2> err2.txt || fail "exit status $?"
	assert_same in.bin out2.bin
	[ ! -s err2.txt ] || fail "unexpected stderr: $(cat err2.txt)"
}

# fdlist PID: the descriptors open in a process, one line.
# shellcheck disable=SC2012 # the names are numbers
fdlist() { ls "/proc/$1/fd" | sort -n | tr '\n' ' '; }

# sleeper NAME [VAR=value...]: starts `passlog sleep` under env, waits
# for "ready", records its PID (env execs, so $! is passlog).
sleeper() {
	local name=$1
	shift
	env "$@" "$PASSLOG" sleep > "$name.ready" &
	echo $! > "$T/$name.pid"
	for _ in $(seq 100); do
		grep -q ready "$name.ready" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "$name never became ready"
}

test_mode_off_is_pure_passthrough() {
	sleeper plain
	sleeper off NOBOUNCE_MODE=off LD_PRELOAD="$LIB"
	sleeper observe NOBOUNCE_MODE=observe LD_PRELOAD="$LIB"
	local plain off observe
	plain=$(fdlist "$(cat plain.pid)")
	off=$(fdlist "$(cat off.pid)")
	observe=$(fdlist "$(cat observe.pid)")
	stop plain; stop off; stop observe
	assert_eq "$off" "$plain" "open descriptors in mode off"
	# Not vacuous: the same check sees the private descriptor of a mode
	# that keeps one.
	[ "$observe" != "$plain" ] || fail "observe mode shows no private descriptor: $observe"

	# No descriptor-related system call of its own either.
	mkdata in.bin 256K
	local calls=fcntl,dup,dup2,dup3,close_range,prlimit64,getrlimit,pipe2,socket,socketpair
	strace -f -qq -o plain.tr -e trace=$calls "$PASSLOG" cat 0 < in.bin > out1.bin ||
		fail "strace failed"
	strace -f -qq -o off.tr -e trace=$calls -E NOBOUNCE_MODE=off -E LD_PRELOAD="$LIB" \
		"$PASSLOG" cat 0 < in.bin > out2.bin || fail "strace failed"
	strace -f -qq -o observe.tr -e trace=$calls -E NOBOUNCE_MODE=observe -E LD_PRELOAD="$LIB" \
		"$PASSLOG" cat 0 < in.bin > out3.bin 2> /dev/null || fail "strace failed"
	assert_same in.bin out2.bin
	sed -E 's/^[0-9]+ +//' plain.tr > plain.calls
	sed -E 's/^[0-9]+ +//' off.tr > off.calls
	sed -E 's/^[0-9]+ +//' observe.tr > observe.calls
	cmp -s plain.calls off.calls || {
		diff plain.calls off.calls | sed 's/^/      | /' >&2
		fail "mode off made system calls of its own"
	}
	assert_grep 'F_DUPFD_CLOEXEC' observe.calls
}

test_secure_execution_stays_passthrough() {
	[ "$(id -u)" -eq 0 ] || fail "needs root: installs a set-user-ID library copy"
	# In a secure process ld.so preloads only names without a slash,
	# found in its trusted directories, with the set-user-ID bit set.
	local libdir name
	libdir=/usr/lib/$(gcc -print-multiarch)
	[ -d "$libdir" ] || fail "no $libdir"
	name=libnobounce-sectest-$BASHPID.so
	# shellcheck disable=SC2064 # expanded now: the locals are gone by then
	trap "rm -f '$libdir/$name'" EXIT
	# shellcheck disable=SC2064
	trap "rm -f '$libdir/$name'; exit 1" TERM INT
	install -m 4755 -o root "$LIB" "$libdir/$name" || fail "cannot install $libdir/$name"

	# The unprivileged user must reach the programs and write the stats.
	chmod 755 "$T"
	mkdir bin stats
	chmod 755 bin
	chmod 1777 stats
	install -m 4755 -o root "$PASSLOG" bin/passlog-suid
	install -m 0755 "$PASSLOG" bin/passlog-plain
	as_nobody() {
		setpriv --reuid=nobody --regid=nogroup --clear-groups \
			env LD_PRELOAD="$name" NOBOUNCE_MODE=observe NOBOUNCE_MIN_CHUNK=abc \
			NOBOUNCE_TYPO=1 NOBOUNCE_STATS="$T/stats/stats-%p.json" "$@"
	}

	# Control: the same set-up without set-user-ID loads the library,
	# which reads the settings: complaints, report and stats file.
	as_nobody "$T/bin/passlog-plain" secure > plain.out 2> plain.err ||
		fail "passlog-plain failed: $(cat plain.err)"
	assert_grep '^AT_SECURE=0$' plain.out
	assert_grep "^libnobounce mapped: $name$" plain.out
	assert_grep 'NOBOUNCE_MIN_CHUNK' plain.err
	assert_grep 'unknown variable NOBOUNCE_TYPO' plain.err
	assert_grep 'observe report' plain.err
	[ -n "$(ls stats)" ] || fail "control run wrote no stats file"
	rm -f stats/*

	# Secure: loaded, the settings are in the environment, and yet
	# nothing is read: no complaint, no report, no stats file.
	as_nobody "$T/bin/passlog-suid" secure > suid.out 2> suid.err ||
		fail "passlog-suid failed: $(cat suid.err)"
	assert_grep '^AT_SECURE=1$' suid.out
	assert_grep "^libnobounce mapped: $name$" suid.out
	assert_grep '^NOBOUNCE_MODE in environment: observe$' suid.out
	assert_grep '^copy loop: 64 iterations, 4194304 bytes, intact$' suid.out
	[ ! -s suid.err ] || fail "secure process got messages: $(head -3 suid.err)"
	[ -z "$(ls stats)" ] || fail "secure process wrote $(ls stats)"
}

run_tests
