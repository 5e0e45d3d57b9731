#!/usr/bin/env bash
# Many files streamed one after another into one pipe whose reader never
# lets it run empty (tests/prog/filestream.c): the bytes are the plain
# run's, and the library's cost per file stays one read lease - every
# chunk after arming goes by the kernel, none is filled from memory.
# Records of file pages in flight in the pipe (shim/sameproc.c) are let go
# of once the reader has taken them, which a pipe that is never empty
# showed only by the bytes forwarded after them; before, the record table
# filled every 128 files and the chunks then went out from memory, each
# letting go of its file's lease and taking a new one for the next.
. "$(dirname "$0")/lib.sh"

FS=$PROG/filestream

test_a_stream_of_many_files_into_one_pipe_takes_one_lease_per_file() {
	runs_as_plain "$FS" many-files
	assert_grep '^status ok$' shim.out
	# 300 files of 8 chunks: the first two of each file arm its pair.
	assert_eq "$(report_counter deferred_reads)" 1800 "deferred reads"
	assert_eq "$(report_counter leases_taken)" 300 "leases taken"
	assert_eq "$(report_counter misses_modified)" 0 "phantoms filled from memory"
	assert_eq "$(report_counter disarms)" 0 "disarms"
}

test_a_stream_of_many_files_into_one_pipe_strict() {
	runs_as_plain "$FS" many-files NOBOUNCE_EXACT=strict
	assert_eq "$(report_counter deferred_reads)" 1800 "deferred reads"
	assert_eq "$(report_counter leases_taken)" 300 "leases taken"
	assert_eq "$(report_counter disarms)" 0 "disarms"
}

run_tests
