#!/usr/bin/env bash
# Hazard class 7: seccomp. A program that copies under strict mode or an
# allow-list filter with a kill action - installed by itself before the
# copy, or inherited across exec - runs the same with the library as
# without: same output, same stderr, same exit status. The filters are
# the proof that the library adds no system call once they are in force:
# any call outside them kills the process (strict mode: SIGKILL, 137; a
# filter: SIGSYS, 159). tests/prog/haz_seccomp.c has the scenarios.
. "$(dirname "$0")/lib.sh"

HZ=$PROG/haz_seccomp

src() { head -c 3000000 /dev/urandom > src.bin; }

# same SCENARIO PRE [VAR=VALUE...]: plain and preloaded (with the
# settings given) write the same stdout file and stderr, and end the same.
same() {
	local sc=$1 pre=$2 rc_plain rc_shim
	shift 2
	src
	( "$HZ" "$sc" src.bin "$pre" > plain.out 2> plain.err ) 2> /dev/null; rc_plain=$?
	( env LD_PRELOAD="$LIB" "$@" "$HZ" "$sc" src.bin "$pre" > shim.out 2> shim.err ) 2> /dev/null
	rc_shim=$?
	assert_eq "$rc_shim" "$rc_plain" "exit status of $sc"
	assert_same plain.out shim.out
	assert_same plain.err shim.err
	assert_grep '^bytes [0-9]+ sum [0-9]+$' plain.err
}

# deferred JSON: reads served as phantoms, from the report the library
# writes before the filter takes effect.
deferred() { jget "$1" 'j["counters"]["deferred_reads"]'; }

test_strict_mode_copy_with_the_defaults_is_the_same_as_plain() {
	same strict 3
	assert_eq "$(cmp -s src.bin plain.out && echo copied)" copied
}

test_strict_mode_copy_in_observe_mode_is_the_same_as_plain() {
	src
	"$HZ" strict src.bin 3 > plain.out 2> plain.err; local rc_plain=$?
	env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe "$HZ" strict src.bin 3 > shim.out 2> shim.err
	assert_eq $? "$rc_plain" "exit status"
	assert_same plain.out shim.out
	# stderr holds the observe report too, written before the filter.
	assert_grep "^$(cat plain.err)\$" shim.err
	assert_grep 'haz_seccomp' shim.err
	# Before any loop armed: the first read already classifies.
	"$HZ" strict src.bin 0 > plain.out 2> /dev/null
	env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe "$HZ" strict src.bin 0 > shim.out 2> /dev/null
	assert_eq $? 0 "exit status, no loop yet"
	assert_same plain.out shim.out
}

test_strict_mode_fills_the_phantoms_alive_when_it_is_installed() {
	same strict 3 NOBOUNCE_ARM_AFTER=1 NOBOUNCE_STATS="$T/st.json"
	[ "$(deferred st.json)" -ge 2 ] || fail "no phantom before the filter: $(cat st.json)"
}

test_strict_mode_copy_into_a_pipe_is_the_same_as_plain() {
	src
	"$HZ" strict src.bin 3 2> plain.err | cat > plain.out
	env LD_PRELOAD="$LIB" NOBOUNCE_ARM_AFTER=1 NOBOUNCE_STATS="$T/st.json" \
		"$HZ" strict src.bin 3 2> shim.err | cat > shim.out
	assert_eq "${PIPESTATUS[0]}" 0 "exit status"
	assert_same src.bin shim.out
	assert_same plain.err shim.err
	[ "$(deferred st.json)" -ge 2 ] || fail "no phantom before the filter"
}

test_strict_mode_leaves_no_live_stats_file_behind() {
	mkdir -m 700 live
	same strict 3 NOBOUNCE_ARM_AFTER=1 NOBOUNCE_LIVE_DIR="$T/live"
	assert_eq "$(ls live | wc -l)" 0 "live files left"
}

test_allow_list_with_kill_process_installed_by_prctl() {
	same filter 0
	same filter 3 NOBOUNCE_ARM_AFTER=1 NOBOUNCE_STATS="$T/st.json"
	[ "$(deferred st.json)" -ge 2 ] || fail "no phantom before the filter"
}

test_allow_list_with_kill_thread_installed_by_prctl() {
	same filter-thread 3 NOBOUNCE_ARM_AFTER=1
	same filter-thread 3 NOBOUNCE_MODE=observe NOBOUNCE_LOG=off
}

test_allow_list_installed_by_raw_seccomp_syscall_after_a_probe() {
	# The EFAULT probe (libseccomp's) installs nothing: the loop still
	# arms after it, and the filter that follows is seen.
	same filter-syscall 3 NOBOUNCE_ARM_AFTER=1 NOBOUNCE_STATS="$T/st.json"
	assert_grep '^probe -1 EFAULT$' shim.out
	[ "$(deferred st.json)" -ge 2 ] || fail "the probe turned the library off"
}

test_filter_inherited_across_exec_is_detected_at_start() {
	same exec 3 NOBOUNCE_ARM_AFTER=1 NOBOUNCE_STATS="$T/st-%p.json"
	same exec 0 NOBOUNCE_MODE=observe NOBOUNCE_LOG=off
	same exec 2
	# The image before the exec reported at installation; the one after
	# it, started under the filter, wrote nothing at all.
	rm -f st-*.json
	NOBOUNCE_ARM_AFTER=1 NOBOUNCE_STATS="$T/st-%p.json" nb_run "$HZ" exec src.bin 3 \
		> shim.out 2> shim.err
	assert_eq "$(ls st-*.json | wc -l)" 1 "reports"
}

test_real_fault_after_the_filter_reaches_the_programs_handler() {
	same strict-fault 3 NOBOUNCE_ARM_AFTER=1
	assert_grep '^fault caught$' shim.err
	same filter-fault 3 NOBOUNCE_ARM_AFTER=1
	assert_grep '^fault caught$' shim.err
}

run_tests
