#!/usr/bin/env bash
# Observe mode on real programs: the report shows the loop that is there
# and none where there is none; outputs are byte-identical.
. "$(dirname "$0")/lib.sh"

test_cat_file_to_pipe_reports_file_to_pipe_loop() {
	mkdata in.bin 8M
	NOBOUNCE_MODE=observe nb_run cat in.bin 2> report.txt | cat > out.bin
	assert_same in.bin out.bin
	assert_grep 'fd 3 \(file\) -> fd 1 \(pipe\): 64 iterations, 8.0 MiB' report.txt
	assert_grep 'splice would serve it' report.txt
}

test_gzip_reports_no_loop() {
	mkdata in.bin 4M
	NOBOUNCE_MODE=observe nb_run gzip -c in.bin 2> report.txt > out.gz
	gzip -dc out.gz | cmp -s - in.bin || fail "gzip output differs"
	assert_grep '0 copy loops found' report.txt
}

run_tests
