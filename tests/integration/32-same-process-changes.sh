#!/usr/bin/env bash
# The program itself changes a file it copies (hazard class 6, same
# process): between the read and the write of a chunk, through every way
# it has (opens that truncate, stdio, shared mappings, fallocate, copies
# into it, the partial pages at a read's edges), and after the write
# returned while a reader still holds the pages (pipe, TCP, a socket read
# moved into a file and sent on). Each scenario of tests/prog/haz_same.c
# runs plain and preloaded (library defaults; socket sources with 16K
# reads) with the same stdout, exit status and output file; the preloaded
# run must have met a phantom where that is the point (its stderr probe
# saw the buffer PROT_NONE when the scenario acted).
. "$(dirname "$0")/lib.sh"

HAZ=$PROG/haz_same

# same_as_plain SCENARIO [ENV...]: stdout, exit status and dst.bin identical.
same_as_plain() {
	runs_as_plain "$HAZ" "$@"
	# (inflight-moved leaves none: how much one socket read returns
	# depends on timing, so it prints the comparison itself.)
	[ ! -e plain/dst.bin ] && [ ! -e shim/dst.bin ] || assert_same plain/dst.bin shim/dst.bin
}

met_phantom() { assert_grep '^probe act guarded=1$' shim.err; }
# Bytes went by a kernel path (the pages by reference).
went_by_kernel() {
	[ "$(jget "$T/stats.json" "j['counters']['forwarded_bytes']")" -gt 0 ] ||
		fail "nothing was forwarded by the kernel"
}

# ---- between the read and the write ----

test_open_with_o_trunc_of_the_source_keeps_the_bytes_read() {
	same_as_plain open-trunc
	met_phantom
	assert_grep '^dst.bin: .* zeros 0,' shim.out
}

test_creat_of_the_source_keeps_the_bytes_read() {
	same_as_plain creat
	met_phantom
}

test_fopen_w_of_the_source_keeps_the_bytes_read() {
	same_as_plain fopen-w
	met_phantom
}

test_freopen_w_onto_the_source_keeps_the_bytes_read() {
	same_as_plain freopen-w
	met_phantom
}

test_stores_through_a_writable_shared_mapping_of_the_source() {
	same_as_plain mmap-write
	met_phantom
}

test_mprotect_adding_write_to_a_shared_mapping_of_the_source() {
	same_as_plain mprotect-write
	met_phantom
}

test_stdio_fwrite_to_a_stream_on_the_source() {
	same_as_plain stdio-fwrite
	met_phantom
}

test_a_writing_stdio_stream_on_the_source_keeps_it_plain() {
	same_as_plain stdio-fprintf
	# The stream was open before the copy: the file is never deferred.
	assert_grep '^probe act guarded=0$' shim.err
}

test_fallocate_punch_hole_in_the_source() {
	same_as_plain punch-hole
	met_phantom
}

test_copy_file_range_into_the_source() {
	same_as_plain copy-into
	met_phantom
}

test_sendfile_into_the_source() {
	same_as_plain sendfile-into
	met_phantom
}

test_splice_into_the_source() {
	same_as_plain splice-into
	met_phantom
}

test_pwrite_inside_a_partial_first_page_goes_out_as_read() {
	same_as_plain pwrite-edge
	met_phantom
}

test_ftruncate_into_the_last_partial_page_does_not_shorten_write_to_a_file() {
	same_as_plain cut-last-page
	met_phantom
	assert_nogrep 'write [0-9]+ of' shim.out
}

test_ftruncate_into_the_last_partial_page_does_not_shorten_write_to_a_socket() {
	same_as_plain cut-last-page-socket
	met_phantom
	assert_nogrep 'write [0-9]+ of' shim.out
}

test_socket_read_moved_into_a_file_then_o_trunc_of_that_file() {
	same_as_plain socket-moved-trunc NOBOUNCE_MIN_CHUNK_STREAM=16K
	met_phantom
	assert_grep "after O_TRUNC: the chunk is the stream's bytes, zeros 0$" shim.out
}

# ---- after write() returned ----

test_overwrite_after_sending_to_a_slow_pipe_reader() {
	same_as_plain inflight-pipe
	met_phantom
	went_by_kernel
	assert_grep '^dst.bin: 786432 bytes, .* X 0$' shim.out
}

test_overwrite_after_sending_to_a_slow_tcp_reader() {
	same_as_plain inflight-tcp
	met_phantom
	went_by_kernel
	assert_grep '^dst.bin: 786432 bytes, .* X 0$' shim.out
}

test_overwrite_of_a_socket_read_moved_into_a_file_then_sent_to_a_pipe() {
	same_as_plain inflight-moved NOBOUNCE_MIN_CHUNK_STREAM=16K
	met_phantom
	went_by_kernel
	assert_grep '^reader got the chunk, X 0$' shim.out
}

run_tests
