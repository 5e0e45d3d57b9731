#!/usr/bin/env bash
# The hooks' hot path (issue 15) under attack: wherever something is live
# - a phantom, a file mapping, another thread's phantom, a signal
# handler's - small and large calls, every write variant and the
# library's own descriptors must give what the plain run gives. Each
# scenario of tests/prog/hotatk.c runs plain and preloaded; stdout (every
# result, errno and a hash of every file written), the exit status and
# the files are compared, and the preloaded run must have met phantoms or
# forwarded mapped writes where the scenario is about them.
. "$(dirname "$0")/lib.sh"

HA=$PROG/hotatk

# both SCENARIO ARG [VAR=value...]: runs plain in ./plain and preloaded in
# ./shim (with a stats report, shim/s.json); compares them.
both() {
	local sc=$1 arg=$2
	shift 2
	rm -rf plain shim
	mkdir plain shim
	(cd plain && env "$@" "$HA" "$sc" "$arg" > out.txt 2> err.txt)
	local rc_plain=$?
	(cd shim && env "$@" LD_PRELOAD="$PRELOAD" NOBOUNCE_STATS="$PWD/s.json" \
		"$HA" "$sc" "$arg" > out.txt 2> err.txt)
	local rc_shim=$?
	assert_eq "$rc_shim" "$rc_plain" "exit status of $sc $arg"
	diff plain/out.txt shim/out.txt >&2 || fail "$sc $arg: output differs"
	local f
	for f in plain/*.bin; do
		assert_same "$f" "shim/${f#plain/}"
	done
}

deferred() { jget shim/s.json 'j["counters"]["deferred_reads"]'; }
forwarded() { jget shim/s.json 'j["counters"]["forwarded_writes"]'; }
met_phantom() {
	[ "$(deferred)" -gt 0 ] || fail "$1: no read was deferred"
}

test_source_changed_through_every_write_variant_beside_a_phantom_is_filled_first() {
	local how
	for how in write pwrite writev pwritev pwritev2 pwritev2-pos pwritev2-dsync ftruncate \
		fwrite write-self; do
		both srcwrite "$how"
		assert_grep '^probe guarded=1$' shim/err.txt
		met_phantom "$how"
	done
}

test_thread_that_never_read_changes_the_bytes_another_thread_holds_as_phantom() {
	local how
	for how in write pwrite writev; do
		both mt "$how"
		assert_grep '^probe guarded-reads=[1-9]' shim/err.txt
		met_phantom "$how"
	done
}

test_thread_reads_one_byte_into_another_threads_phantom() {
	both mt smallread
	assert_grep '^probe guarded-reads=[1-9]' shim/err.txt
	met_phantom smallread
}

test_mapped_file_written_through_every_file_write_variant_then_changed() {
	local how
	for how in write pwrite writev pwritev pwritev2; do
		both mapw "$how"
		[ "$(forwarded)" -gt 0 ] || fail "$how: no mapped write was forwarded"
	done
}

test_loop_whose_first_reads_are_small_arms_and_stays_exact() {
	local how
	for how in small grow readv preadv; do
		both detect "$how"
		assert_grep '^probe guarded-reads=[1-9]' shim/err.txt
		met_phantom "$how"
	done
}

test_small_reads_and_preads_of_the_source_between_deferred_reads() {
	both interleave x
	met_phantom interleave
}

test_every_descriptor_the_program_does_not_hold_answers_ebadf() {
	both ownfd x
	assert_grep '^odd descriptors 0$' shim/out.txt
	met_phantom ownfd
	# The library held descriptors of its own during the scan.
	assert_grep '"mode": "on"' shim/s.json
}

test_errno_is_untouched_around_calls_of_every_size() {
	both errno x
	assert_grep 'errno-changed 0$' shim/out.txt
	met_phantom errno
}

test_signal_handler_copying_between_one_byte_copies() {
	both signal x
	met_phantom signal
}

test_interval_timer_handler_copying_inside_any_hooked_call() {
	both itimer x
	met_phantom itimer
}

test_threads_mixing_small_calls_loops_and_mapping_writers() {
	both mtmix 8
	met_phantom mtmix
	[ "$(forwarded)" -gt 0 ] || fail "no write was forwarded"
}

test_fork_child_opening_the_source_for_writing_beside_a_phantom() {
	both fork fork-open-norw
	assert_grep '^probe guarded=1$' shim/err.txt
	met_phantom fork-open-norw
}

test_vfork_child_changing_the_source_beside_a_phantom() {
	both fork vfork
	assert_grep '^probe guarded=1$' shim/err.txt
	met_phantom vfork
}

# A signal handler whose read is deferred while its own thread is in the
# middle of its first deferred read (finding its stack, starting the lease
# thread): the library must never wait for its own thread there. It used
# to hang in pthread_getattr_np (the thread's lock) and then in the lease
# thread's start (waiting for a start the handler interrupted).
test_handler_read_inside_the_threads_first_deferred_read_does_not_hang() {
	local i
	for i in 1 2 3 4 5; do
		both sigfirst x
		met_phantom sigfirst
	done
}

run_tests
