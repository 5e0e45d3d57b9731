#!/usr/bin/env bash
# Start-up robustness: hooks reached before or during the library's own
# initialisation (another library's constructor, a malloc replacement that
# does I/O inside its first allocation) behave like the plain calls.
. "$(dirname "$0")/lib.sh"

TL=$NB_ROOT/build/testlib

test_constructor_io_of_a_library_loaded_before_the_shim_works() {
	mkdata in.bin 2M
	# To a pipe: GNU cat copies file -> file with copy_file_range itself.
	EARLY_OUT=early.txt NOBOUNCE_MODE=observe LD_PRELOAD="$TL/libearly.so $LIB" \
		cat in.bin 2> report.txt | cat > out.bin || fail "cat failed"
	assert_same in.bin out.bin
	assert_grep '^early [1-9][0-9]*$' early.txt
	assert_grep 'fd 3 \(file\) -> fd 1 \(pipe\): 16 iterations' report.txt
}

test_constructor_io_of_a_library_loaded_after_the_shim_works() {
	mkdata in.bin 2M
	EARLY_OUT=early.txt LD_PRELOAD="$LIB $TL/libearly.so" cat in.bin > out.bin || fail "cat failed"
	assert_same in.bin out.bin
	assert_grep '^early [1-9][0-9]*$' early.txt
}

test_malloc_replacement_doing_io_inside_malloc_does_not_deadlock() {
	mkdata in.bin 2M
	NOBOUNCE_MODE=observe LD_PRELOAD="$TL/libmallocwrap.so $LIB" timeout 20 \
		cat in.bin 2> report.txt | cat > out.bin || fail "cat failed or hung"
	assert_same in.bin out.bin
	assert_grep 'fd 3 \(file\) -> fd 1 \(pipe\): 16 iterations' report.txt
}

test_malloc_replacement_with_python_does_not_deadlock() {
	mkdata in.bin 1M
	LD_PRELOAD="$TL/libmallocwrap.so $LIB" timeout 30 /usr/bin/python3 -c '
import shutil, sys
shutil.copyfileobj(open(sys.argv[1], "rb"), open(sys.argv[2], "wb"))' in.bin out.bin ||
		fail "python failed or hung"
	assert_same in.bin out.bin
}

run_tests
