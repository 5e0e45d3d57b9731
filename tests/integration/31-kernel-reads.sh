#!/usr/bin/env bash
# Hazard class 5: a system call handed memory that is a phantom answers
# as it would without the library. The kernel meets a guarded page with
# EFAULT (and a consuming call - recvmmsg, mq_receive, msgrcv, accept,
# wait - has then consumed what it could not store); every call that
# hands memory to the kernel must have the phantom filled first.
#
# Each scenario of tests/prog/haz_kread.c makes one such call on the
# buffer of an armed copy loop: plain and preloaded must print the same,
# end the same and copy the same file, and preloaded the call must have
# met a guarded buffer ("probe guarded=1").
#
# Also: `nobounce fill PID` fills every phantom of a live process (what
# a debugger or /proc/PID/mem then reads is the program's bytes) and
# says so honestly when the process does not answer; and the list of
# glibc's exported functions with their classification
# (tests/kernel-memory-calls.txt) covers the installed libc.
. "$(dirname "$0")/lib.sh"

HK=$PROG/haz_kread
NOBOUNCE=$NB_ROOT/scripts/nobounce

# same_as_plain SCENARIO
same_as_plain() {
	mkdir plain shim
	(cd plain && "$HK" "$1" > out 2> err); local rc_plain=$?
	(cd shim && env LD_PRELOAD="$PRELOAD" "$HK" "$1" > out 2> err); local rc_shim=$?
	assert_eq "$rc_shim" "$rc_plain" "exit status of '$1'"
	diff plain/out shim/out >&2 || fail "output of '$1' differs"
	assert_same plain/dst.bin shim/dst.bin
	assert_same shim/src.bin shim/dst.bin
	assert_grep '^probe guarded=1$' shim/err
}

for s in getrandom getentropy stat fstat lstat fstatat statx statfs stat-path-in-phantom \
	uname getrusage getrlimit epoll-wait sigprocmask sigpending pipe pipe2 socketpair \
	readlink getcwd getdents wait-status recvmmsg sendmmsg vmsplice process-vm-readv \
	process-vm-writev aio-write aio-read mq accept-addr getsockopt getpeername \
	pselect-sigmask sysv-msg; do
	eval "test_${s//-/_}_on_a_phantom_behaves_as_plain() { same_as_plain $s; }"
done

# start_hold SCENARIO: the program, preloaded, in the background with its
# stdin on a FIFO the test holds open; waits for its "buffer" line.
start_hold() {
	mkdir -m 700 live
	mkfifo go
	NOBOUNCE_LIVE_DIR=$T/live LD_PRELOAD="$PRELOAD" "$HK" "$1" < go > out 2> err &
	echo $! > "$T/hold.pid"
	exec 7> go
	for _ in $(seq 100); do
		grep -q '^buffer ' out && return 0
		sleep 0.1
	done
	fail "no buffer line from $1"
}

# mem_is_file: the buffer, read from outside through /proc/PID/mem,
# holds the bytes of src.bin the read asked for.
mem_is_file() {
	"$PY" - "$(cat "$T/hold.pid")" "$(awk '/^buffer/ { print $2 }' out)" \
		"$(awk '/^buffer/ { print $4 }' out)" <<'EOF'
import sys
pid, addr, off = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3])
with open("/proc/%s/mem" % pid, "rb") as f:
    f.seek(addr)
    got = f.read(65536)
want = open("src.bin", "rb").read()[off:off + 65536]
sys.exit(0 if got == want else 1)
EOF
}

test_nobounce_fill_fills_every_phantom_and_holds_off_deferral() {
	start_hold hold
	local pid
	pid=$(cat "$T/hold.pid")
	assert_grep '^buffer .* guarded 1$' out
	# What a debugger sees of a phantom: not the program's bytes.
	! mem_is_file || fail "the phantom already held the file's bytes"
	"$NOBOUNCE" fill --timeout 10 "$pid" > fill.out 2>&1 || { cat fill.out >&2; fail "fill failed"; }
	assert_grep "^pid $pid: every phantom filled" fill.out
	mem_is_file || fail "after fill, /proc/$pid/mem does not hold the file's bytes"
	for _ in $(seq 50); do grep -q '^guarded after' out && break; sleep 0.1; done
	assert_grep '^guarded after waiting 0$' out
	exec 7>&-
	wait "$pid"
	assert_eq $? 0 "exit status"
	# Held: the next read of the armed loop was not deferred.
	assert_grep '^next read 65536, guarded 0$' out
}

test_nobounce_fill_release_lets_the_process_defer_again() {
	start_hold hold
	local pid
	pid=$(cat "$T/hold.pid")
	"$NOBOUNCE" fill --timeout 10 "$pid" > fill.out 2>&1 || fail "fill failed"
	"$NOBOUNCE" fill --release "$pid" > rel.out 2>&1 || fail "release failed"
	assert_grep "^pid $pid may defer reads again" rel.out
	exec 7>&-
	wait "$pid"
	assert_grep '^next read 65536, guarded 1$' out
}

test_nobounce_fill_says_so_when_the_process_does_not_answer() {
	start_hold block
	local pid rc
	pid=$(cat "$T/hold.pid")
	"$NOBOUNCE" fill --timeout 1 "$pid" > fill.out 2>&1; rc=$?
	assert_eq "$rc" 3 "fill's exit status for a process that did not answer"
	assert_grep "did not answer within 1 s" fill.out
	! mem_is_file || fail "filled although it did not answer"
	# The request stays: the process's next call the library sees fills.
	echo x >&7
	exec 7>&-
	wait "$pid"
	assert_eq $? 0 "exit status"
	assert_grep '^woken 1, guarded 1$' out
	assert_grep '^after one call, guarded 0$' out
}

test_nobounce_fill_refuses_a_process_without_live_stats() {
	sleep 5 & local pid=$!
	"$NOBOUNCE" fill "$pid" > fill.out 2>&1; local rc=$?
	kill "$pid"; wait "$pid" 2>/dev/null
	assert_eq "$rc" 1 "exit status"
	assert_grep "no live stats for pid $pid" fill.out
}

test_every_function_libc_exports_is_classified() {
	bash "$NB_ROOT/tests/kernel-memory-calls.sh" check > check.out 2>&1 ||
		{ sed 's/^/      | /' check.out >&2; fail "tests/kernel-memory-calls.txt is not complete"; }
}

test_every_call_classified_as_hooked_is_exported_by_the_library() {
	bash "$NB_ROOT/tests/kernel-memory-calls.sh" hooked "$LIB" > check.out 2>&1 ||
		{ sed 's/^/      | /' check.out >&2; fail "a call marked hooked is not interposed"; }
}

run_tests
