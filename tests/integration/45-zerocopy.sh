#!/usr/bin/env bash
# The zero-copy path (mode on), one behaviour per test, driven by
# build/prog/zc: every scenario runs plain and preloaded (arming at the
# first bounce of 4K or more) and must print the same (return values, errno
# names, offsets after every iteration, checksums of what the program
# looked at), end the same way, and leave the same files. Then the
# preloaded run must show that the zero-copy path really took part: reads
# served as phantoms (deferred_reads), writes served by the kernel
# (forwarded_writes), and - where the scenario acts on its buffer - that
# the buffer was guarded at that moment (zc's "probe ... guarded=1" lines
# on stderr, read from /proc/self/maps). A scenario that ran plainly
# under the library proves nothing and fails.
. "$(dirname "$0")/lib.sh"

ZC=$PROG/zc
RUN_TIMEOUT=20

# ---- helpers local to this file ----

# zc_both SCENARIO [xfs]: runs zc SCENARIO in $T/plain without the library
# and in $T/shim with it (stats in $T/shim/s.json). Each leaves out.txt,
# err.txt, rc and the files it wrote. With "xfs", the destination file goes
# to a directory on /dev/shm (another file system than $T's) and is copied
# back afterwards.
zc_both() {
	local sc=$1 xfs=${2:-} run dd
	for run in plain shim; do
		mkdir -p "$T/$run"
		dd=$T/$run
		[ -n "$xfs" ] && dd=$(mktemp -d /dev/shm/nb-zc.XXXXXX)
		(
			cd "$T/$run" || exit 1
			[ -n "${NB_ULIMIT_N:-}" ] && ulimit -n "$NB_ULIMIT_N"
			if [ $run = plain ]; then
				timeout "$RUN_TIMEOUT" "$ZC" --dst-dir "$dd" "$sc" > out.txt 2> err.txt
			else
				# shellcheck disable=SC2086 # NB_EXTRA_ENV: NAME=value words
				timeout "$RUN_TIMEOUT" env LD_PRELOAD="$PRELOAD" NOBOUNCE_MODE=on \
					NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_MIN_CHUNK_STREAM=4K NOBOUNCE_MIN_CHUNK_PIPE=4K \
					NOBOUNCE_STATS="$T/$run/s.json" ${NB_EXTRA_ENV:-} \
					"$ZC" --dst-dir "$dd" "$sc" > out.txt 2> err.txt
			fi
			echo $? > rc
		) 2> /dev/null # bash's notices of a death by signal
		if [ -n "$xfs" ]; then
			cp "$dd"/* "$T/$run"/ 2> /dev/null
			rm -rf "$dd"
		fi
	done
	cd "$T" || exit 1
}

# same_as_plain: exit status, stdout and every file of the plain run
# identical in the preloaded run.
same_as_plain() {
	local f
	[ -s plain/out.txt ] || fail "the plain run printed nothing: $(cat plain/err.txt)"
	assert_eq "$(cat shim/rc)" "$(cat plain/rc)" "exit status (preloaded vs plain)"
	if ! cmp -s plain/out.txt shim/out.txt; then
		diff plain/out.txt shim/out.txt | head -20 | sed 's/^/      | /' >&2
		grep -v '^probe' plain/err.txt | head -5 | sed 's/^/      plain stderr: /' >&2
		grep -v '^probe' shim/err.txt | head -5 | sed 's/^/      preloaded stderr: /' >&2
		fail "stdout differs ('<' plain, '>' preloaded)"
	fi
	for f in plain/*.bin plain/*.log; do
		[ -e "$f" ] || continue
		[ -e "shim/${f#plain/}" ] || fail "preloaded run left no ${f#plain/}"
		cmp "$f" "shim/${f#plain/}" >&2 || fail "${f#plain/} differs (plain vs preloaded)"
	done
}

counter() {
	[ -s shim/s.json ] || fail "no stats from the preloaded run: $(grep -v '^probe' shim/err.txt | head -3)"
	jget shim/s.json "j['counters']['$1']"
}

# deferred: at least one read was served as a phantom.
deferred() {
	local d
	d=$(counter deferred_reads)
	[ "$d" -gt 0 ] || fail "zero-copy did not engage: deferred_reads=$d"
}

# engaged: reads served as phantoms and writes served by the kernel.
engaged() {
	deferred
	local f
	f=$(counter forwarded_writes)
	[ "$f" -gt 0 ] || fail "zero-copy did not engage: forwarded_writes=$f (deferred_reads=$(counter deferred_reads))"
}

# met_phantom: the scenario acted on its buffer while it was guarded (and
# the plain run, as a check of the probe itself, never saw a guard).
met_phantom() {
	assert_nogrep 'guarded=1' plain/err.txt
	grep -q 'guarded=1' shim/err.txt ||
		fail "the buffer was never guarded when the scenario acted on it: $(grep '^probe' shim/err.txt | head -3)"
}

# always_guarded WHAT: every "probe WHAT ..." line of the preloaded run
# (taken after a write, once the loop is armed) found the buffer guarded:
# the loop stayed zero-copy, it did not fall back to plain.
always_guarded() {
	local all on
	all=$(grep -c "^probe $1 " shim/err.txt)
	on=$(grep -c "^probe $1 .*guarded=1" shim/err.txt)
	[ "$all" -gt 0 ] || fail "no probe '$1' in the preloaded run"
	[ "$on" -eq "$all" ] ||
		fail "'$1': buffer guarded at $on of $all probes after arming (deferred_reads=$(counter deferred_reads)): $(grep "^probe $1 .*guarded=0" shim/err.txt | head -3 | tr '\n' ' ')"
}

# copy_case DST HOW [xfs]: the plain copy loop; the destination gets the
# file, and the kernel moved it under the library.
copy_case() {
	zc_both "copy-$1-$2" ${3:-}
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	engaged
}

# ---- the copy loop itself: bytes, return values, offsets ----

# readv/preadv of one iovec are reads; writev/sendmsg/pwritev of three
# iovecs - one in the buffer's first partial page, two meeting inside its
# guarded pages - are one write each, served piece by piece.
test_file_to_tcp_with_readv_writev_of_three_iovecs_matches_plain() { copy_case tcp readv-writev; }
test_file_to_unix_socket_with_preadv_sendmsg_matches_plain() { copy_case unix preadv-sendmsg; }
test_file_to_pipe_with_readv_writev_of_three_iovecs_matches_plain() { copy_case pipe readv-writev; }
test_file_to_file_with_preadv_pwritev_matches_plain() { copy_case file preadv-pwritev; }

# nginx with `sendfile off`: pread 32K into two alternating buffers, one
# writev of the unsent tail of one plus all of the other, non-blocking
# socket with a 16K send buffer, EAGAIN then poll.
test_nginx_like_writev_of_two_buffers_on_a_nonblocking_socket_matches_plain() {
	zc_both nginx-writev-nonblocking
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	# the socket really was full, both runs
	assert_grep 'writev calls, [1-9][0-9]* EAGAIN$' plain/err.txt
	assert_grep 'writev calls, [1-9][0-9]* EAGAIN$' shim/err.txt
	engaged
	# nearly every byte went by the kernel (the first buffer is read plain)
	local fb
	fb=$(counter forwarded_bytes)
	[ "$fb" -gt $((6 * 1024 * 1024 - 65536)) ] || fail "only $fb bytes forwarded"
}

test_file_to_pipe_with_read_write_matches_plain() { copy_case pipe read-write; }
test_file_to_pipe_with_pread_write_matches_plain() { copy_case pipe pread-write; }

test_file_to_unix_socket_with_read_write_matches_plain() { copy_case unix read-write; }
test_file_to_unix_socket_with_pread_write_matches_plain() { copy_case unix pread-write; }
test_file_to_unix_socket_with_read_send_matches_plain() { copy_case unix read-send; }
test_file_to_unix_socket_with_read_sendto_null_address_matches_plain() { copy_case unix read-sendto; }

test_file_to_tcp_with_read_write_matches_plain() { copy_case tcp read-write; }
test_file_to_tcp_with_pread_write_matches_plain() { copy_case tcp pread-write; }
test_file_to_tcp_with_read_send_matches_plain() { copy_case tcp read-send; }
test_file_to_tcp_with_read_sendto_null_address_matches_plain() { copy_case tcp read-sendto; }

test_file_to_file_same_fs_with_read_write_matches_plain() { copy_case file read-write; }
test_file_to_file_same_fs_with_pread_write_matches_plain() { copy_case file pread-write; }
test_file_to_file_same_fs_with_pread_pwrite_matches_plain() { copy_case file pread-pwrite; }

# /tmp (ext4 here) -> /dev/shm (tmpfs): copy_file_range(2) answers EXDEV
# across file-system types; sendfile(2) writes to any file at its position.
test_file_to_file_across_fs_with_read_write_matches_plain() { copy_case xfs read-write xfs; }
test_file_to_file_across_fs_with_pread_write_matches_plain() { copy_case xfs pread-write xfs; }

# A positional write across file systems has no single kernel call
# (sendfile writes at the file position, copy_file_range says EXDEV): the
# phantom must be materialised for the plain pwrite. Reads deferred is what
# makes this a test of that.
test_file_to_file_across_fs_with_pread_pwrite_matches_plain() {
	zc_both copy-xfs-pread-pwrite xfs
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	deferred
}

# ---- how the loop keeps its buffers ----

# Two heap buffers back to back, used alternately (python, nginx): each
# one's guarded pages border the other's memory.
test_two_adjacent_heap_buffers_used_alternately_both_stay_zero_copy() {
	zc_both two-buffers-alternating
	same_as_plain
	engaged
	always_guarded "buffer A"
	always_guarded "buffer B"
}

# The program maps and unmaps a page between iterations (any other work
# that uses mmap): the loop itself is unchanged and must stay zero-copy.
test_one_buffer_loop_stays_zero_copy_when_the_program_maps_and_unmaps_memory() {
	zc_both one-buffer-and-mmap-calls
	same_as_plain
	engaged
	always_guarded "buffer A"
}

test_two_buffer_loop_stays_zero_copy_when_the_program_maps_and_unmaps_memory() {
	zc_both two-buffers-and-mmap-calls
	same_as_plain
	engaged
	always_guarded "buffer A"
	always_guarded "buffer B"
}

# ---- end of file ----

test_short_read_at_eof_returns_the_remainder_then_0() {
	zc_both eof-short-tail
	same_as_plain
	assert_grep '^it 64 r 13522$' plain/out.txt
	assert_grep '^read at EOF again: 0$' plain/out.txt
	engaged
}

test_reads_at_and_past_eof_return_0() {
	zc_both eof-read-past
	same_as_plain
	assert_grep '^read past EOF: 0, offset 5242880$' plain/out.txt
	assert_grep '^pread past EOF: 0$' plain/out.txt
	assert_grep '^read across EOF: 12293, offset 4194304$' plain/out.txt
	engaged
}

test_file_of_exactly_one_chunk_served_eight_times() {
	zc_both eof-one-chunk-file
	same_as_plain
	assert_eq "$(grep -c '^it 1 r 0$' plain/out.txt)" 8 "EOF after one chunk, per pass"
	engaged
}

# The same file sent again after lseek(fd, 0) (a server keeping a file
# open): the read that finds EOF leaves the buffer as it is - nothing for
# the program to have touched - so every pass after the arming one stays
# zero-copy.
test_file_sent_again_after_lseek_to_0_stays_zero_copy() {
	zc_both eof-one-chunk-file
	same_as_plain
	assert_eq "$(counter deferred_reads)" 7 "passes 2-8 served as phantoms"
	assert_eq "$(counter disarms)" 0 "disarms"
}

# The program never looks at its buffer: reaching the end of the file (a
# short read, then reads that return 0) is no touch of a phantom and no
# "modified" miss against the pair (misses back a pair off).
test_reads_at_the_end_of_the_file_are_not_counted_as_touches() {
	zc_both eof-short-tail
	same_as_plain
	engaged
	assert_eq "$(counter misses_modified)" 0 "'modified' misses, though the program never touches its buffer"
}

# Another process changes the source between two iterations: the loop
# reads what is there at each read, as plain - the appended megabyte, or
# the end of the file where it now is.
test_source_grown_by_another_process_between_iterations_is_read_to_its_new_end() {
	zc_both source-grows
	same_as_plain
	assert_grep '^destination: 5242880 bytes' shim/out.txt
	engaged
}

test_source_cut_by_another_process_between_iterations_ends_the_loop_there() {
	zc_both source-shrinks
	same_as_plain
	# cut to 300000 after 4 x 64K were read: one short read, then 0
	assert_grep '^it 4 r 37856$' shim/out.txt
	assert_grep '^it 5 r 0$' shim/out.txt
	assert_grep '^destination: 300000 bytes' shim/out.txt
	engaged
}

# The steady state of an armed loop changes no protection: the buffer is
# guarded once and stays guarded, each read only replaces the phantom's
# backing. Counted with strace over a 64-iteration loop.
test_steady_state_makes_no_mprotect_per_iteration() {
	mkdir -p st && cd st || fail "cd"
	timeout "$RUN_TIMEOUT" strace -f -qq -e trace=mprotect -o trace.txt \
		-E LD_PRELOAD="$PRELOAD" -E NOBOUNCE_ARM_AFTER=1 -E NOBOUNCE_MIN_CHUNK=4K \
		-E NOBOUNCE_STATS="$PWD/s.json" \
		"$ZC" --dst-dir "$PWD" copy-unix-read-write > out.txt 2> err.txt ||
		fail "zc under strace: $(tail -3 err.txt)"
	local d guards opens
	d=$(jget s.json "j['counters']['deferred_reads']")
	[ "$d" -ge 60 ] || fail "only $d deferred reads"
	guards=$(grep -c 'PROT_NONE' trace.txt)
	# one guard for the one buffer...
	assert_eq "$guards" 1 "mprotect(PROT_NONE) calls for $d deferred reads"
	# ...opened at most once (the read that meets the end of the file
	# replaces it; libc's own calls elsewhere are not counted)
	local at
	at=$(sed -n 's/.*mprotect(\(0x[0-9a-f]*\), [0-9]*, PROT_NONE).*/\1/p' trace.txt)
	opens=$(grep -c "mprotect($at, [0-9]*, PROT_READ|PROT_WRITE)" trace.txt)
	[ "$opens" -le 1 ] || fail "the buffer was opened $opens times"
}

# A program that looks at every buffer pays a fault and a fill each time:
# after a few such misses the pair backs off to the plain path; once the
# program stops looking and the cool-down has passed, it arms again.
test_touching_every_buffer_disarms_and_the_pair_rearms_after_the_program_stops() {
	zc_both touch-then-stop
	same_as_plain
	local disarms arms deferred
	disarms=$(counter disarms)
	arms=$(jget shim/s.json "j['loops'][0]['arms']")
	deferred=$(counter deferred_reads)
	[ "$disarms" -ge 1 ] || fail "never disarmed: disarms=$disarms"
	[ "$arms" -ge 2 ] || fail "never armed again: arms=$arms"
	# 128 inspected iterations, of which only the few before each back-off
	# were deferred; most of the 128 quiet ones after it are deferred again
	[ "$deferred" -ge 40 ] && [ "$deferred" -le 200 ] ||
		fail "deferred reads $deferred: not backed off, or not re-armed"
	assert_eq "$(grep -c '^  inspect it' shim/out.txt)" 128 "inspections"
}

# The library keeps RLIMIT_FSIZE between writes; a setrlimit by the
# program reaches it at once: the write at the new limit is cut short and
# the next fails with EFBIG, as plain.
test_rlimit_fsize_lowered_by_the_program_applies_to_the_next_write() {
	NB_EXTRA_ENV="NOBOUNCE_MIN_CHUNK_FILE=4K" zc_both fsize-lowered-midway
	same_as_plain
	assert_grep ' -1 EFBIG' shim/out.txt
	engaged
}

# ---- a TCP socket as the source (pipe-backed phantoms) ----

# sock_case SCENARIO: the loop reads from a TCP socket fed in uneven
# pieces; the destination gets the stream exactly, in both runs.
sock_case() {
	zc_both "$1"
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	cmp shim/src.bin shim/dst.bin >&2 || fail "preloaded run: destination is not the source"
}

test_tcp_source_to_file_moves_every_byte_through_a_pool_pipe() {
	sock_case tcp-src-file
	engaged
}

test_tcp_source_to_file_with_a_page_aligned_buffer() {
	sock_case tcp-src-file-aligned
	engaged
}

test_tcp_source_relayed_to_tcp() {
	sock_case tcp-src-tcp
	engaged
}

test_tcp_source_relayed_to_a_unix_socket() {
	sock_case tcp-src-unix
	engaged
}

test_tcp_source_to_a_blocking_pipe() {
	sock_case tcp-src-pipe
	engaged
}

# Inspected buffers are filled from their pool pipe: the program sees the
# stream's bytes at its offset, and the rest still goes by the kernel.
test_tcp_source_buffers_the_program_inspects_hold_the_stream_bytes() {
	sock_case tcp-src-file-inspect
	assert_grep '^inspected buffers: some, wrong: 0$' shim/out.txt
	deferred
}

# dd copying a file onto itself at a later block, overlapping (seek 1) and
# not (seek 64): every read is a phantom of the file being written, and
# the write over a phantom's range must fill it first (the kernel copy
# would read what the loop has just written). Same file as plain.
test_a_file_copied_onto_itself_matches_plain() {
	local seek run
	mkdata a0.bin 8M
	for seek in 1 64; do
		for run in plain shim; do
			cp a0.bin "a-$run.bin"
			if [ $run = plain ]; then
				dd if="a-$run.bin" of="a-$run.bin" bs=64K count=32 seek=$seek conv=notrunc status=none
			else
				env LD_PRELOAD="$PRELOAD" NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK_FILE=4K \
					NOBOUNCE_STATS="$T/s$seek.json" \
					dd if="a-$run.bin" of="a-$run.bin" bs=64K count=32 seek=$seek conv=notrunc status=none
			fi || fail "dd ($run, seek $seek) failed"
		done
		cmp a-plain.bin a-shim.bin >&2 || fail "seek $seek: the file differs from the plain run's"
		[ "$(jget "s$seek.json" "j['counters']['deferred_reads']")" -gt 0 ] ||
			fail "seek $seek: no read was served as a phantom"
	done
}

# A socket read written whole into a file is moved out of its pool pipe;
# the file range becomes the buffer's backing. The program looking at the
# buffer afterwards, overwriting or truncating that range of the file
# first, or writing the buffer to a second file, sees the stream's bytes;
# two buffers used in turn both stay right. Once the program closes the
# file, no descriptor of the process names it.
test_socket_buffers_written_to_a_file_are_backed_by_that_file_afterwards() {
	sock_case tcp-src-file-after-write
	assert_grep '^read 8392929 bytes, looked several times, wrong 0$' shim/out.txt
	assert_grep '^descriptors naming dst.bin after close: 0$' shim/out.txt
	assert_grep '^last buffer after close: right$' shim/out.txt
	local m
	m=$(counter moved_to_file)
	[ "$m" -ge 50 ] || fail "socket phantoms were not moved into the file: moved_to_file=$m"
	engaged
}

# RLIMIT_FSIZE cuts such a move short inside the buffer: the count is the
# plain write's, the next write fails with EFBIG, and the buffer holds the
# stream (its first part read back from the file, the rest from the pipe).
test_a_move_into_a_file_cut_short_by_rlimit_fsize_keeps_the_buffer_right() {
	zc_both tcp-src-file-fsize
	same_as_plain
	assert_grep '^write at the limit: cut at the limit$' shim/out.txt
	assert_grep '^buffer after the short write: right$' shim/out.txt
	assert_grep '^next write: EFBIG$' shim/out.txt
	assert_grep '^dst.bin: a prefix, wrong chunks 0$' shim/out.txt
	engaged
}

# NOBOUNCE_PIPE_SIZE caps what one splice from a socket takes (the pool
# pipe's capacity): the old kernels' 16 KiB workaround is a setting. The
# read itself still returns everything queued, as read(2) would (the rest
# by a plain read): the cap shows in the splice calls, seen with strace.
test_pipe_size_caps_each_splice_from_a_socket_as_the_16k_workaround_needs() {
	NB_EXTRA_ENV="NOBOUNCE_PIPE_SIZE=16K" sock_case tcp-src-file
	engaged
	mkdir -p "$T/st"
	( cd "$T/st" && timeout "$RUN_TIMEOUT" strace -f -qq -e trace=splice -o "$T/splice.txt" \
		env LD_PRELOAD="$PRELOAD" NOBOUNCE_MODE=on NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=4K \
		NOBOUNCE_MIN_CHUNK_STREAM=4K NOBOUNCE_MIN_CHUNK_PIPE=4K NOBOUNCE_PIPE_SIZE=16K \
		"$ZC" --dst-dir "$T/st" tcp-src-file > out.txt 2> err.txt ) || fail "traced run failed"
	cmp "$T/st/src.bin" "$T/st/dst.bin" >&2 || fail "traced run: destination is not the source"
	local n big
	n=$(grep -c 'splice(.*= [0-9]' "$T/splice.txt")
	big=$(awk '/splice\(/ && $NF ~ /^[0-9]+$/ && $NF + 0 > 16384' "$T/splice.txt" | wc -l)
	[ "$n" -gt 0 ] || fail "no splice call in the traced run"
	[ "$big" -eq 0 ] || fail "$big splice calls moved more than 16K with NOBOUNCE_PIPE_SIZE=16K"
}

# fork right after a socket read: the buffer's bytes sit in a pool pipe
# the child would share; they are put into memory first, so the child
# sees them and the parent still sends every byte.
test_fork_after_a_socket_read_child_and_parent_each_see_the_bytes() {
	sock_case tcp-src-fork
	assert_grep '^child after fork: buffer right$' shim/out.txt
	engaged
}

# 1000 connections in turn, each its own byte pattern into its own file:
# every file right, and no descriptor left behind (the pool reuses its
# pipes; the count after the last connection is the one after the first).
test_a_thousand_short_connections_leak_nothing_and_never_cross() {
	zc_both tcp-many-connections
	same_as_plain
	assert_grep '^connections 1000, wrong 0, descriptors after the first == the last$' shim/out.txt
	deferred
}

test_unix_socket_source_to_file() {
	sock_case unix-src-file
	engaged
}

test_unix_socket_source_relayed_to_tcp() {
	sock_case unix-src-tcp
	engaged
}

test_pipe_source_to_file() {
	sock_case pipe-src-file
	engaged
}

test_pipe_source_relayed_to_tcp() {
	sock_case pipe-src-tcp
	engaged
}

test_pipe_source_buffers_the_program_inspects_hold_the_stream_bytes() {
	sock_case pipe-src-file-inspect
	assert_grep '^inspected buffers: some, wrong: 0$' shim/out.txt
	deferred
}

# GNU cat from a pipe into a file, the library's defaults: its reads are
# at most the pipe's 64K, below NOBOUNCE_MIN_CHUNK_STREAM, so it is left
# plain; with the minimum lowered it is served - the same bytes both ways.
test_cat_from_a_pipe_into_a_file_plain_by_default_and_served_when_asked() {
	mkdata in.bin 16M
	head -c 16M in.bin | env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/d.json" cat > out1.bin
	assert_same in.bin out1.bin
	assert_eq "$(jget d.json "j['counters']['deferred_reads']")" 0 "deferred reads by default"
	head -c 16M in.bin | env LD_PRELOAD="$LIB" NOBOUNCE_MIN_CHUNK_STREAM=16K \
		NOBOUNCE_STATS="$T/l.json" cat > out2.bin
	assert_same in.bin out2.bin
	[ "$(jget l.json "j['counters']['forwarded_writes']")" -gt 100 ] ||
		fail "cat from a pipe not served: $(cat l.json)"
}

# A non-blocking relay with epoll: reads that find nothing (EAGAIN), a
# 16K send buffer, writes cut short and resumed from where they stopped -
# inside a pipe-backed phantom (the rest is tee'd past the part sent).
test_nonblocking_epoll_relay_with_partial_writes_moves_every_byte() {
	sock_case tcp-epoll-relay
	assert_grep '^partial writes [1-9][0-9]*, EAGAIN reading [0-9]+, writing [1-9][0-9]*$' shim/err.txt
	engaged
}

# Seeded random operation sequences over socket and pipe sources (see
# zc.c sc_random): random read calls and sizes into two buffers, random
# inspections and forks, random write pieces with write, writev and
# pwrite. The destination must be the stream, every look must see its
# bytes. Seeds that ever fail are added here for good.
test_random_operation_sequences_keep_every_byte() {
	local seed d=0
	for seed in 1 2 3 4 5 6 7 8 9 10 11 12 100 101 102 103 104 105; do
		mkdir "r$seed" && cd "r$seed" || fail "cd"
		timeout "$RUN_TIMEOUT" env LD_PRELOAD="$PRELOAD" NOBOUNCE_ARM_AFTER=1 \
			NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_MIN_CHUNK_STREAM=4K NOBOUNCE_STATS="$PWD/s.json" \
			"$ZC" "random-$seed" > out.txt 2> err.txt || fail "seed $seed: status $?"
		assert_grep "^seed $seed: (tcp|pipe), [0-9]+ bytes, all, wrong 0$" out.txt
		cmp src.bin dst.bin >&2 || fail "seed $seed: the file is not the stream"
		[ "$seed" -lt 100 ] || d=$((d + $(jget s.json "j['counters']['deferred_reads']")))
		cd ..
	done
	[ "$d" -gt 200 ] || fail "the quiet seeds were hardly served: $d deferred reads"
}

# The gauntlet (zc.c sc_gauntlet): seeded operation sequences over every
# source (file, TCP, UNIX, pipe) and destination (file, TCP, UNIX, pipe),
# blocking and non-blocking, with and without EINTR storms, programs that
# look at their buffers and programs that never do: random reads (read,
# recv, readv of one or two iovecs, pread), looks, byte changes, forked
# children, lseek skips, dup'd destinations, writes in random pieces
# resumed after partial ones. Each seed runs plain and preloaded; both
# must find the destination to be exactly what the program wrote and
# every look right. Seeds 0-63 are every combination (looking); 64-127
# the same without looks (a sample of them under the sanitizers).
test_gauntlet_every_source_and_destination_kind_keeps_every_byte() {
	local seed seeds d=0 n=0
	if [ -n "${NB_TEST_PROG:-}" ]; then
		seeds=$(seq 0 7 127)
	else
		seeds="$(seq 0 63) $(seq 64 3 127)"
	fi
	for seed in $seeds; do
		rm -rf "$T/plain" "$T/shim"
		zc_both "gauntlet-$seed"
		same_as_plain
		assert_grep "^gauntlet $seed: .*: dst.out is what the program wrote, wrong 0$" shim/out.txt
		d=$((d + $(counter deferred_reads)))
		n=$((n + 1))
	done
	echo "gauntlet: $n seeds, $d reads served as phantoms" >&2
	[ "$d" -gt $((n * 5)) ] || fail "the gauntlet hardly reached the library: $d deferred reads"
}

# An unprivileged user whose pipe budget is spent (fs.pipe-user-pages-*
# lowered, pipe(7)): new pipes get the minimum size and F_SETPIPE_SZ is
# refused, so the pool's pipes stay small. The copy, run as nobody, is
# exact and the same as plain. The limits are the machine's: set for the
# two runs only, and put back.
test_an_exhausted_per_user_pipe_budget_keeps_every_byte() {
	[ "$(id -u)" = 0 ] || fail "needs root to lower the per-user pipe limits"
	local soft hard run
	soft=$(cat /proc/sys/fs/pipe-user-pages-soft)
	hard=$(cat /proc/sys/fs/pipe-user-pages-hard)
	chmod 777 "$T"
	for run in plain shim; do
		mkdir -m 777 "$T/$run"
		(
			cd "$T/$run" || exit 1
			echo 8 > /proc/sys/fs/pipe-user-pages-soft
			echo 16 > /proc/sys/fs/pipe-user-pages-hard
			if [ $run = plain ]; then
				timeout "$RUN_TIMEOUT" setpriv --reuid=65534 --regid=65534 --clear-groups \
					"$ZC" tcp-src-file > out.txt 2> err.txt
			else
				timeout "$RUN_TIMEOUT" setpriv --reuid=65534 --regid=65534 --clear-groups \
					env LD_PRELOAD="$PRELOAD" NOBOUNCE_ARM_AFTER=1 NOBOUNCE_MIN_CHUNK=4K \
					NOBOUNCE_MIN_CHUNK_STREAM=4K NOBOUNCE_STATS="$T/$run/s.json" \
					"$ZC" tcp-src-file > out.txt 2> err.txt
			fi
			echo $? > rc
			echo "$soft" > /proc/sys/fs/pipe-user-pages-soft
			echo "$hard" > /proc/sys/fs/pipe-user-pages-hard
		)
	done
	assert_eq "$(cat /proc/sys/fs/pipe-user-pages-soft) $(cat /proc/sys/fs/pipe-user-pages-hard)" \
		"$soft $hard" "pipe limits put back"
	cd "$T" || fail "cd"
	same_as_plain
	cmp shim/src.bin shim/dst.bin >&2 || fail "preloaded run: destination is not the source"
	[ "$(counter arms)" -ge 1 ] || fail "the loop never armed: the small pipes were not tried"
}

# Six threads, each copying eight connections one after another (48
# streams, each its own bytes and file, checked by the thread itself),
# sharing the pool: none wrong.
test_six_threads_times_eight_connections_each_keep_every_byte() {
	zc_both tcp-src-threads-connections
	same_as_plain
	assert_grep '^threads 6, 8 connections each, streams wrong 0$' shim/out.txt
	engaged
}

# The same six streams while another thread keeps sending SIGUSR1 (a
# handler without SA_RESTART) to random ones of them: reads and writes
# fail with EINTR or come back short all the time; every file right.
test_six_streams_under_a_storm_of_signals_keep_every_byte() {
	zc_both tcp-src-threads-signals
	same_as_plain
	assert_grep '^threads 6, 1 connections each, streams wrong 0, under a storm of signals$' shim/out.txt
	engaged
}

# taken_over WHICH LINE: three runs of tcp-src-WHICH-taken-over, each
# printing LINE in both runs, with reads served as phantoms.
taken_over() {
	local i
	for i in 1 2 3; do
		zc_both "tcp-src-$1-taken-over"
		same_as_plain
		assert_grep "^$2\$" shim/out.txt
		deferred
		rm -rf "$T/plain" "$T/shim"
	done
}

# Another thread dup2()s /dev/null onto the loop's destination file after
# 20 reads: the writes go on succeeding, and the file holds exactly a
# prefix of the stream - nothing reaches it through a stale number.
test_destination_taken_over_by_another_thread_mid_stream() {
	taken_over dst 'destination taken over by another thread: dst.out is a prefix of the stream, failed writes 0'
}

# The same with the source: after the dup2 the reads return the new
# file's bytes, so the copy is a prefix of the stream and then all of
# the new source - no phantom of the old socket is mistaken for it.
test_source_taken_over_by_another_thread_mid_stream() {
	taken_over src 'source taken over by another thread: dst.out is a prefix of the stream, then all of the new source, failed writes 0'
}

# Six threads, each its own TCP stream (its own pattern) into its own
# file, sharing the pipe pool; their feeders are forked while the others'
# phantoms are alive (filled before each fork). Every file right.
test_six_threads_each_with_its_own_stream_share_the_pool_without_crossing() {
	zc_both tcp-src-threads
	same_as_plain
	assert_grep '^threads 6, 1 connections each, streams wrong 0$' shim/out.txt
	deferred
}

# The program claims the library's own top number with dup2 while a
# pool pipe holds its buffer's bytes: the phantom is filled first, the
# pipe given up - nothing reaches the program's new file, nothing is lost
# (without the fill: SIGPIPE and a wrong file, measured).
test_dup2_onto_the_librarys_descriptor_while_a_pipe_holds_the_bytes() {
	sock_case tcp-src-claim
	assert_grep '^claimed the highest number: yes$' shim/out.txt
	engaged
}

# Descriptors run out while pipe phantoms exist: the library fills them,
# gives its numbers back, the program opens exactly as many as plain.
test_emfile_while_pipes_hold_bytes_gives_every_number_back() {
	sock_case tcp-src-emfile
	assert_grep '^descriptors opened until EMFILE: [0-9]+$' shim/out.txt
	engaged
}

# NOBOUNCE_MAX_PIPES=0: no pool pipe, the plain path, the same bytes.
test_tcp_source_without_pool_pipes_stays_plain() {
	NB_EXTRA_ENV="NOBOUNCE_MAX_PIPES=0" zc_both tcp-src-file
	same_as_plain
	cmp shim/src.bin shim/dst.bin >&2 || fail "preloaded run: destination is not the source"
	assert_eq "$(counter deferred_reads)" 0 "deferred reads without pipes"
}

# Few descriptors: the pool cannot hide its pipes at the top of the table
# (and gives them back on EMFILE); the plain path, the same bytes.
test_tcp_source_with_a_low_descriptor_limit_keeps_every_byte() {
	NB_ULIMIT_N=48 zc_both tcp-src-file
	same_as_plain
	cmp shim/src.bin shim/dst.bin >&2 || fail "preloaded run: destination is not the source"
}

# ---- the program looks at or changes its buffer ----

test_unaligned_buffer_edges_go_out_from_the_file_with_the_pages() {
	# malloc's buffer starts 16 bytes into a page: the first and last
	# partial pages are read for real, and sent from the file in the same
	# kernel call as the pages while the program leaves them alone.
	zc_both copy-tcp-read-write
	same_as_plain
	engaged
	local e f
	e=$(counter edge_bytes)
	f=$(counter forwarded_writes)
	# 4080 head + 16 tail bytes per 64 KiB write (the last one may be short)
	[ "$e" -ge $(((f - 1) * 4096)) ] ||
		fail "edges not sent from the file: edge_bytes=$e for $f forwarded writes"
}

test_changed_edge_goes_out_from_memory_and_the_rest_from_the_file() {
	zc_both modify-head
	same_as_plain
	local e
	e=$(counter edge_bytes)
	[ "$e" -gt 0 ] || fail "unchanged edges were not sent from the file: edge_bytes=$e"
}

test_checksum_of_the_buffer_before_the_write_sees_the_file_bytes() {
	zc_both inspect-checksum
	same_as_plain
	met_phantom
	engaged
}

test_changed_first_byte_is_sent_changed() {
	zc_both modify-head
	same_as_plain
	assert_eq "$(cmp -l plain/src.bin plain/dst.bin | wc -l)" 8 "bytes changed by the program"
	met_phantom
	engaged
}

test_changed_middle_byte_is_sent_changed() {
	zc_both modify-middle
	same_as_plain
	assert_eq "$(cmp -l plain/src.bin plain/dst.bin | wc -l)" 8 "bytes changed by the program"
	met_phantom
	engaged
}

test_changed_last_byte_is_sent_changed() {
	zc_both modify-tail
	same_as_plain
	assert_eq "$(cmp -l plain/src.bin plain/dst.bin | wc -l)" 8 "bytes changed by the program"
	met_phantom
	engaged
}

# Page-aligned buffer: the first and last bytes lie in guarded pages.
test_changed_first_byte_of_an_aligned_buffer_is_sent_changed() {
	zc_both modify-head-aligned
	same_as_plain
	assert_eq "$(cmp -l plain/src.bin plain/dst.bin | wc -l)" 8 "bytes changed by the program"
	met_phantom
	engaged
}

test_changed_last_byte_of_an_aligned_buffer_is_sent_changed() {
	zc_both modify-tail-aligned
	same_as_plain
	assert_eq "$(cmp -l plain/src.bin plain/dst.bin | wc -l)" 8 "bytes changed by the program"
	met_phantom
	engaged
}

test_buffer_written_to_two_destinations_reaches_both() {
	zc_both two-destinations
	same_as_plain
	assert_eq "$(stat -c %s plain/second.bin)" $((8 * 65536)) "second destination size"
	met_phantom
	engaged
}

test_another_thread_reading_the_buffer_sees_the_file_bytes() {
	zc_both thread-reads-buffer
	same_as_plain
	met_phantom
	engaged
}

test_forked_child_reading_the_buffer_sees_the_file_bytes() {
	zc_both fork-child-reads-buffer
	same_as_plain
	met_phantom
	engaged
}

test_forked_child_writing_the_untouched_buffer_sends_the_file_bytes() {
	zc_both fork-child-writes-buffer
	same_as_plain
	met_phantom
	engaged
}

test_realloc_between_read_and_write_keeps_the_bytes() {
	zc_both realloc-keeps-bytes
	same_as_plain
	met_phantom
	engaged
}

# 256K buffers mapped by glibc, grown to 4 MiB and shrunk back: glibc
# moves their pages with its own mremap, which no hook sees.
test_realloc_of_a_mapped_buffer_between_read_and_write_keeps_the_bytes() {
	zc_both realloc-mapped-buffer
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	met_phantom
	engaged
}

# 1 MiB buffers (mapped by glibc): freed after the read, a calloc'd one
# takes its place - usually at the same address, untouched - and is
# written: zeros, never the old file bytes.
test_freed_buffer_replaced_by_fresh_memory_sends_zeros() {
	zc_both free-then-fresh-buffer
	same_as_plain
	# Iterations 2 and 6 of 1 MiB each wrote the fresh buffer.
	local i
	for i in 2 6; do
		cmp -n 1048576 -i $((i * 1048576)):0 plain/dst.bin /dev/zero >&2 ||
			fail "plain run: chunk $i is not zeros"
	done
	cmp -n 1048576 plain/src.bin plain/dst.bin >&2 || fail "plain run: chunk 0 is not the file's"
	met_phantom
	engaged
}

test_memcpy_out_of_the_buffer_copies_the_file_bytes() {
	zc_both memcpy-out
	same_as_plain
	met_phantom
	engaged
}

test_madvise_dontneed_after_the_write_leaves_zeros() {
	zc_both madvise-dontneed
	same_as_plain
	assert_eq "$(grep -c 'madvise it [0-9]*: 0, nonzero bytes 0$' plain/out.txt)" 8 "zeroed buffers (plain)"
	met_phantom
	engaged
}

test_munmap_then_mmap_fixed_gives_zeros_that_are_sent_as_zeros() {
	zc_both munmap-mmap-fixed
	same_as_plain
	assert_eq "$(grep -c 'fresh nonzero bytes 0$' plain/out.txt)" 8 "fresh mappings (plain)"
	met_phantom
	engaged
}

# The new mapping is asked for anywhere; the kernel usually hands back the
# hole just unmapped (zc's "probe mmap ... same_address" lines).
test_munmap_then_mmap_anywhere_gives_zeros_that_are_sent_as_zeros() {
	zc_both munmap-mmap-anywhere
	same_as_plain
	assert_eq "$(grep -c 'fresh nonzero bytes 0$' plain/out.txt)" 8 "fresh mappings (plain)"
	met_phantom
	engaged
}

test_mmap_fixed_over_the_buffer_gives_zeros_that_are_sent_as_zeros() {
	zc_both mmap-fixed-over
	same_as_plain
	assert_eq "$(grep -c 'fresh nonzero bytes 0$' plain/out.txt)" 8 "fresh mappings (plain)"
	met_phantom
	engaged
}

# ---- the source changes meaning or content between read and write ----

test_source_closed_and_number_reused_before_the_write_sends_the_original_bytes() {
	zc_both close-and-dup2-source
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	assert_grep '^the number now reads 16 bytes' plain/out.txt
	met_phantom
	engaged
}

test_pwrite_over_the_source_before_the_write_sends_the_bytes_as_read() {
	zc_both pwrite-source
	same_as_plain
	cmp -s plain/src.bin plain/dst.bin && fail "plain run: the source was not changed"
	met_phantom
	engaged
}

test_pwrite_through_another_descriptor_before_the_write_sends_the_bytes_as_read() {
	zc_both pwrite-source-other-fd
	same_as_plain
	cmp -s plain/src.bin plain/dst.bin && fail "plain run: the source was not changed"
	met_phantom
	engaged
}

test_pwrite_into_the_buffers_partial_first_page_of_the_source_sends_the_bytes_as_read() {
	zc_both pwrite-source-edge
	same_as_plain
	cmp -s plain/src.bin plain/dst.bin && fail "plain run: the source was not changed"
	met_phantom
}

test_ftruncate_of_the_source_before_the_write_sends_the_bytes_as_read() {
	zc_both ftruncate-source
	same_as_plain
	assert_eq "$(stat -c %s plain/dst.bin)" $((6 * 65536)) "destination size (plain)"
	met_phantom
	engaged
}

# ---- stdio: glibc's internal writes and reads never see a guard ----

# fwrite of a phantom on a write-only stream, after a buffered header:
# the header is flushed first, the chunk goes by the kernel, ftell stays
# right (the stream's cached offset is dropped), the file is exact.
test_fwrite_after_buffered_bytes_is_served_and_keeps_the_stream_position() {
	zc_both stdio-fwrite
	same_as_plain
	assert_grep '^ftell [0-9]+, wrong along the way 0, ferror 0$' shim/out.txt
	engaged
}

test_fwrite_of_a_guarded_buffer_writes_the_file_bytes() {
	zc_both fwrite-phantom
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	assert_nogrep 'error 1' plain/out.txt
	met_phantom
	engaged
}

test_fread_into_a_guarded_buffer_then_fwrite_writes_the_file_bytes() {
	zc_both fread-into-phantom
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	grep -q 'probe before-fread it [0-9]* guarded=1' shim/err.txt ||
		fail "fread never met a guarded buffer"
	engaged
}

# ---- vectors and socket reads ----

test_writev_with_a_header_iovec_then_the_buffer() {
	zc_both writev-header
	same_as_plain
	assert_eq "$(grep -c 'writev it [0-9]*: 65551$' plain/out.txt)" 8 "writev returns (plain)"
	met_phantom
	engaged
}

test_recv_into_a_guarded_buffer_receives_every_byte() {
	zc_both recv-into-phantom
	same_as_plain
	assert_eq "$(grep -c 'recv it [0-9]*: 32768,' plain/out.txt)" 8 "recv returns (plain)"
	met_phantom
	engaged
}

test_readv_into_a_guarded_buffer_reads_every_byte() {
	zc_both readv-into-phantom
	same_as_plain
	assert_eq "$(grep -c 'readv it [0-9]*: 65536,' plain/out.txt)" 8 "readv returns (plain)"
	met_phantom
	engaged
}

# ---- signals ----

test_programs_own_segv_handler_gets_its_own_faults_while_phantoms_exist() {
	zc_both own-segv-handler
	same_as_plain
	assert_eq "$(grep -c 'own fault it [0-9]*: handler ran 1 time(s)' plain/out.txt)" 8 "own faults (plain)"
	assert_grep '^handler total 8$' plain/out.txt
	met_phantom
	engaged
}

test_null_dereference_while_phantoms_exist_still_dies_of_sigsegv() {
	zc_both null-deref
	same_as_plain
	assert_eq "$(cat shim/rc)" $((128 + 11)) "death by SIGSEGV"
	# Killed processes write no stats: the probe shows the phantom.
	met_phantom
}

# A write blocked on a peer that stopped reading, after bytes moved: the
# alarm's handler ends it with the count, as write(2) - with SA_RESTART
# too (signal() installs it), where the library's own calls would be
# restarted by the kernel: it waits in poll between them instead.
test_write_stalled_then_interrupted_by_an_sa_restart_handler_returns_the_count() {
	zc_both alarm-stall-restart
	same_as_plain
	assert_grep '^it 2 write: partial, alarms 1$' shim/out.txt
	met_phantom
	engaged
}

test_write_stalled_then_interrupted_by_a_plain_handler_returns_the_count() {
	zc_both alarm-stall-norestart
	same_as_plain
	assert_grep '^it 2 write: partial, alarms 1$' shim/out.txt
	met_phantom
	engaged
}

# execve(2) copies argv from the caller's memory: a command string inside
# a guarded buffer would make it fail with EFAULT (measured before the
# exec hooks existed: all four below failed). fork+execl/execlp/execle,
# posix_spawn, system and popen each start "sh -c <string in the buffer>".
test_programs_started_with_arguments_inside_a_guarded_buffer_get_them() {
	zc_both spawn-args-from-buffer
	same_as_plain
	assert_eq "$(grep -c '^spawned-ok$' shim/out.txt)" 5 \
		"commands that ran (fork+execl, +execlp, +execle, posix_spawn, system)"
	assert_grep "^popen: ok, read 'spawned-ok'$" shim/out.txt
	assert_grep '^posix_spawn: ok, status 0$' shim/out.txt
	met_phantom
	engaged
}

test_write_to_a_pipe_without_readers_with_sigpipe_ignored_is_epipe() {
	zc_both epipe-ignored
	same_as_plain
	assert_grep '^write to a pipe without readers: -1 EPIPE$' plain/out.txt
	met_phantom
	engaged
}

test_write_to_a_pipe_without_readers_with_default_sigpipe_dies_of_sigpipe() {
	zc_both epipe-default
	same_as_plain
	assert_eq "$(cat shim/rc)" $((128 + 13)) "death by SIGPIPE"
	met_phantom
}

# ---- a non-blocking destination ----

# 96K writes into a 64K O_NONBLOCK pipe, emptied only when a write says
# EAGAIN. Partial counts may differ only where plain has them too: the
# totals, the content, and the kinds of results must agree; when plain
# shows no partial write, every call must agree. Non-blocking destinations
# are not forwarded (forward.c), so reads deferred is the engagement.
test_nonblocking_full_pipe_gives_eagain_as_plain() {
	zc_both nonblock-full-pipe
	assert_eq "$(cat shim/rc)" "$(cat plain/rc)" "exit status"
	assert_grep '^EAGAIN seen: yes$' plain/out.txt
	assert_grep '^EAGAIN seen: yes$' shim/out.txt
	assert_grep '^every write returned a positive count or -1 EAGAIN: yes$' shim/out.txt
	assert_nogrep '-> (0|-1 [^E]|-1 E[^A])' shim/calls.log
	diff plain/out.txt shim/out.txt >&2 || fail "totals differ"
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	cmp plain/dst.bin shim/dst.bin >&2 || fail "destination differs"
	if grep -q '^partial writes 0,' plain/calls.log; then
		diff plain/calls.log shim/calls.log >&2 || fail "no partial writes plain: every call must match"
	fi
	met_phantom
	deferred
}

# ---- threads ----

test_eight_threads_copying_at_once_each_get_their_own_bytes() {
	zc_both threads8
	same_as_plain
	assert_eq "$(grep -c ' match$' shim/out.txt)" 8 "threads whose destination matches"
	engaged
}

# Each worker's loop is an ordinary armed loop over a heap buffer: every
# one of them stays zero-copy while the others run.
test_eight_threads_copying_at_once_each_stay_zero_copy() {
	zc_both threads8
	same_as_plain
	local w
	for w in 0 1 2 3 4 5 6 7; do always_guarded "worker $w"; done
}

# The same with buffers each worker mallocs itself: glibc serves them from
# one arena per thread (mapped heaps, each reserving PROT_NONE space above
# what it uses).
test_eight_threads_with_buffers_from_their_own_malloc_arenas_each_stay_zero_copy() {
	zc_both threads8-own-arenas
	same_as_plain
	assert_eq "$(grep -c ' match$' shim/out.txt)" 8 "threads whose destination matches"
	local w
	for w in 0 1 2 3 4 5 6 7; do always_guarded "worker $w"; done
}

# ---- stack buffers are never guarded ----

# refused_for REASON: the loop came to arm (so the refusal was tested) and
# was refused for its buffer: never counted armed, the reason recorded.
refused_for() {
	[ "$(counter arms)" = 0 ] || fail "a loop on a buffer that is never guarded counted armed"
	jget shim/s.json '[(l.get("not_served"), l.get("buffer_refusals", 0) > 0) for l in j["loops"] if l["bytes"] > 1000000]' > refused.txt
	assert_grep "\('$1', True\)" refused.txt
}

# never_guarded SCENARIO: no read was deferred, no probe ever found the
# buffer guarded, and the loop was refused for its buffer.
never_guarded() {
	zc_both "$1"
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	assert_nogrep 'guarded=1' shim/err.txt
	assert_eq "$(counter deferred_reads)" 0 "deferred reads"
	refused_for shared
}

test_buffer_in_a_shared_anonymous_mapping_is_never_guarded() { never_guarded buffer-shared-anon; }
test_buffer_in_a_shared_file_mapping_is_never_guarded() { never_guarded buffer-shared-file; }
test_buffer_in_a_private_file_mapping_is_never_guarded() { never_guarded buffer-private-file; }

test_o_direct_source_is_never_deferred() {
	zc_both source-o-direct
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	assert_nogrep 'guarded=1' shim/err.txt
	assert_eq "$(counter deferred_reads)" 0 "deferred reads"
}

test_stack_buffer_in_main_thread_is_never_guarded() {
	zc_both stack-buffer
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	assert_nogrep 'guarded=1' shim/err.txt
	assert_eq "$(counter deferred_reads)" 0 "deferred reads into the stack"
	refused_for stack
}

test_stack_buffer_in_a_thread_is_never_guarded() {
	zc_both thread-stack-buffer
	same_as_plain
	cmp plain/src.bin plain/dst.bin >&2 || fail "plain run: destination is not the source"
	assert_nogrep 'guarded=1' shim/err.txt
	assert_eq "$(counter deferred_reads)" 0 "deferred reads into the stack"
	refused_for stack
}

# make stress: the soak runs every scenario plain and preloaded and
# compares them; a short one here shows it runs, serves reads as phantoms
# and finds nothing. A bad duration is one clear line and status 2.
test_the_stress_soak_compares_plain_and_preloaded_runs() {
	[ -z "${NB_TEST_PROG:-}" ] || return 0 # it runs the normal build's programs
	local out rc
	out=$(TMPDIR=$T bash "$NB_ROOT/scripts/stress.sh" 4 2>&1)
	rc=$?
	echo "$out" | tail -3 >&2
	assert_eq "$rc" 0 "stress status"
	echo "$out" | grep -Eq '^stress: [1-9][0-9]* scenario runs .* [1-9][0-9]* reads served as phantoms, 0 divergences$' ||
		fail "no clean stress summary: $(echo "$out" | tail -1)"
	out=$(bash "$NB_ROOT/scripts/stress.sh" 10s 2>&1)
	rc=$?
	assert_eq "$rc" 2 "status for a bad duration"
	assert_eq "$(echo "$out" | wc -l)" 1 "lines for a bad duration"
	assert_grep "must be a whole number of seconds, not '10s'" <(echo "$out")
}

run_tests
