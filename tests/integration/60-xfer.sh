#!/usr/bin/env bash
# One program-level write served from a file by a kernel path (shim/xfer.c)
# against the plain write of the same bytes. build/prog/xferlog runs each
# case twice into identical fresh destinations - once with write/send/
# pwrite from memory, once with nb_xfer() (and the plain call where it
# declines, as the library will) - and logs every return value, errno,
# the signals handled during each call, what the destination received
# (count and checksum), both descriptors' positions and how the process
# ended. The two logs must be identical; '#' lines are notes (which path
# served, why one declined, exact counts where they legitimately differ)
# and are not compared, but the tests check them to make sure the kernel
# path really ran. Every socket is on 127.0.0.1; every peer is a child of
# xferlog that limits itself with alarm() and is killed by PID.
#
# Not tested: a count above 0x7ffff000. write(2), sendfile(2), splice(2)
# and copy_file_range(2) all cut a count to MAX_RW_COUNT = 0x7ffff000
# (rw_verify_area), and nb_xfer cuts it first (NB_XFER_MAX; unit test
# huge_count_is_cut_like_write shows a count of SIZE_MAX, which sendfile
# itself refuses with EINVAL, served like write). A differential run would
# move 2 GiB per mode to show the same cut.
. "$(dirname "$0")/lib.sh"

XL=$PROG/xferlog

# xferlog compiles shim/xfer.c in, but make rebuilds test programs only
# when their own sources change: never test a stale copy of the mechanism.
for f in "$NB_ROOT"/shim/xfer.c "$NB_ROOT"/shim/xfer.h; do
	if [ "$f" -nt "$XL" ]; then
		echo "    FAIL: $XL is older than $f: touch tests/prog/xferlog.c && make progs" >&2
		echo 1 > "$NB_RESULTS/fail"
		exit 1
	fi
done

# run_mode MODE CASE [DIR]: xferlog's log for one mode in CASE.MODE.
run_mode() {
	local rc=0
	timeout 90 "$XL" "$@" > "$2.$1" 2> "$2.$1.err" || rc=$?
	[ "$rc" -eq 0 ] || { sed 's/^/      | /' "$2.$1" "$2.$1.err" >&2; fail "xferlog $*: status $rc"; }
	assert_grep '^exit [0-9]+$|^killed by SIG' "$2.$1"
	assert_nogrep 'SETUP FAILED|UNEXPECTED|: NO$|^FAIL|peer reported nothing' "$2.$1"
}

# compare CASE: the two logs without notes must be identical.
compare() {
	grep -v '^#' "$1.plain" > "$1.plain.cmp"
	grep -v '^#' "$1.xfer" > "$1.xfer.cmp"
	if ! cmp -s "$1.plain.cmp" "$1.xfer.cmp"; then
		echo "      diff <plain write> <nb_xfer> for case $1:" >&2
		diff "$1.plain.cmp" "$1.xfer.cmp" | head -40 | sed 's/^/      | /' >&2
		fail "case $1: nb_xfer's log differs from the plain write's"
	fi
}

# same CASE...: both modes, logs identical.
same() {
	local c
	for c in "$@"; do
		run_mode plain "$c"
		run_mode xfer "$c"
		compare "$c"
	done
}

# small_tmpfs MODE CASE: the case on a fresh 1 MiB tmpfs of its own.
small_tmpfs() {
	local m rc=0
	m=$(mktemp -d "$T/small.XXXXXX")
	mount -t tmpfs -o size=1m,mode=0700 nb-xfer-test "$m" ||
		fail "cannot mount a 1 MiB tmpfs on $m (needs root): ENOSPC would go untested"
	trap 'umount "'"$m"'" 2>/dev/null' EXIT
	timeout 90 "$XL" "$1" "$2" "$m" > "$2.$1" 2> "$2.$1.err" || rc=$?
	umount "$m" || fail "umount $m"
	trap - EXIT
	rmdir "$m"
	[ "$rc" -eq 0 ] || fail "xferlog $1 $2: status $rc"
	assert_grep '^exit 0$' "$2.$1"
	assert_nogrep 'SETUP FAILED' "$2.$1"
}

test_file_to_tcp_blocking() {
	same tcp_block
	[ "$(grep -c '^# via sendfile (socket)' tcp_block.xfer)" -eq 4 ] ||
		fail "not every write went through sendfile: $(grep '^#' tcp_block.xfer)"
	assert_grep '^peer received=4359840 ' tcp_block.xfer
	# NOBOUNCE_SEND_CHUNK (default 32K): one write, 32 sendfile calls
	assert_grep '^# via sendfile \(socket\) calls=32$' tcp_block.xfer
}

test_file_to_tcp_one_call_when_send_chunk_is_off() {
	mkdir one && cd one
	XFERLOG_SEND_CHUNK=0 same tcp_block
	[ "$(grep -c '^# via sendfile (socket) calls=1$' tcp_block.xfer)" -eq 4 ] ||
		fail "not one sendfile per write: $(grep '^#' tcp_block.xfer)"
}

test_file_to_tcp_nonblocking_tiny_sndbuf_slow_reader() {
	# The counts of single calls are the kernel's socket-buffer accounting
	# (copied pages for write, spliced ones for sendfile): compared are
	# the first call's class, the totals, what the peer got, and that no
	# call ever returned more than asked or EAGAIN after moving bytes.
	same tcp_nonblock
	assert_grep '^first call: partial; partial counts: seen; EAGAIN: seen; counts above the ask: 0$' \
		tcp_nonblock.xfer
	assert_grep '^# chunk 0 call: [0-9]+$' tcp_nonblock.xfer
}

test_file_to_unix_stream_socket() {
	same unix_block unix_nonblock
	assert_grep '^# via sendfile \(socket\)' unix_block.xfer
	assert_grep '^first call: partial; partial counts: seen; EAGAIN: seen; counts above the ask: 0$' \
		unix_nonblock.xfer
}

test_file_to_pipe_blocking() {
	same pipe_block
	[ "$(grep -c '^# via splice (pipe)' pipe_block.xfer)" -eq 3 ] ||
		fail "pipe writes not spliced: $(grep '^#' pipe_block.xfer)"
	# a write of PIPE_BUF bytes is atomic for write(2): left to it
	assert_grep '^# fallback refused' pipe_block.xfer
}

test_file_to_pipe_nonblocking_full_and_partly_full() {
	same pipe_nonblock
	assert_grep '^full: write 100000@0 n=100000 -> r=-1 EAGAIN' pipe_nonblock.xfer
	assert_grep '^# via splice \(pipe_nonblock\)' pipe_nonblock.xfer
	# misaligned sources and partial last pages would change the count
	# or the slots left behind: the plain write serves them
	assert_grep '^# fallback not_now' pipe_nonblock.xfer
}

test_file_to_file_same_fs() {
	same file_same_fs
	[ "$(grep -c '^# via copy_file_range' file_same_fs.xfer)" -eq 3 ] ||
		fail "tmpfs -> tmpfs not by copy_file_range: $(grep '^#' file_same_fs.xfer)"
	assert_grep '^dst position=1348576$' file_same_fs.xfer
}

test_file_to_file_cross_fs() {
	[ "$(stat -f -c %T /tmp)" != "$(stat -f -c %T /dev/shm)" ] ||
		fail "/tmp and /dev/shm are the same file-system type here: no cross-fs case"
	same file_cross_fs
	# copy_file_range: EXDEV across file systems, then sendfile
	[ "$(grep -c '^# via sendfile (copy_file_range)' file_cross_fs.xfer)" -eq 3 ] ||
		fail "ext4 -> tmpfs not by sendfile: $(grep '^#' file_cross_fs.xfer)"
}

test_pwrite_offset_leaves_the_position() {
	same file_pwrite file_pwrite_cross_fs
	[ "$(grep -c '^dst position=5$' file_pwrite.xfer)" -eq 2 ] || fail "the position moved"
	assert_grep '^pwrite 1000@0 at -1 n=1000 -> r=-1 EINVAL' file_pwrite.xfer
	[ "$(grep -c '^# via copy_file_range' file_pwrite.xfer)" -eq 2 ] ||
		fail "pwrite not by copy_file_range: $(grep '^#' file_pwrite.xfer)"
	# sendfile has no output offset: across file systems pwrite is plain
	assert_grep '^# fallback unsupported err=EXDEV' file_pwrite_cross_fs.xfer
}

test_o_append_refused() {
	same file_append
	assert_grep '^# fallback refused' file_append.xfer
	# O_APPEND set where the cached flags do not show it: EBADF, nothing moved
	assert_grep '^# fallback unsupported err=EBADF' file_append.xfer
}

test_peer_gone_epipe_sigpipe_msg_nosignal() {
	same tcp_reset_dfl tcp_reset_ign tcp_reset_handler tcp_reset_nosignal tcp_reset_blocked \
		tcp_fin_big_handler unix_gone_dfl unix_gone_ign unix_gone_nosignal \
		pipe_gone_dfl pipe_gone_ign pipe_gone_handler pipe_gone_midway
	# After a FIN the first write still goes out whole when it is one call;
	# cut into NOBOUNCE_SEND_CHUNK calls, the peer's reset to the first one
	# can end it with that count (the class tcp_fin_big_handler logs).
	XFERLOG_SEND_CHUNK=0 same tcp_fin_dfl tcp_fin_handler tcp_fin_nosignal
	# default disposition: the process dies of SIGPIPE at the same call
	local c
	for c in tcp_reset_dfl tcp_fin_dfl unix_gone_dfl pipe_gone_dfl; do
		assert_grep '^killed by SIGPIPE$' "$c.xfer"
	done
	assert_grep '^2nd n=100000 -> r=-1 EPIPE sigs=-$' tcp_reset_ign.xfer
	assert_grep '^2nd n=100000 -> r=-1 EPIPE sigs=PIPE1$' tcp_reset_handler.xfer
	# MSG_NOSIGNAL: EPIPE, no signal, the process lives
	for c in tcp_reset_nosignal tcp_fin_nosignal unix_gone_nosignal; do
		assert_grep '^exit 0$' "$c.xfer"
		assert_nogrep 'sigs=PIPE' "$c.xfer"
		assert_grep 'r=-1 EPIPE sigs=-$' "$c.xfer"
	done
	# SIGPIPE blocked by the program: none left pending by MSG_NOSIGNAL,
	# one by a plain EPIPE, and that one is not taken away
	assert_grep '^after unblocking: handled 1$' tcp_reset_blocked.xfer
	# a count never comes with SIGPIPE, though sendfile raises one when the
	# reset arrives between its internal chunks (taken back)
	assert_grep '^1st n=100000 -> count sigs=-$' tcp_fin_big_handler.xfer
	# a pipe write that loses its reader midway: the count and SIGPIPE
	assert_grep '^write 1M@4096 n=1048576 -> r=[0-9]+ sigs=PIPE1$' pipe_gone_midway.xfer
}

test_eintr_with_and_without_sa_restart() {
	same eintr_tcp eintr_tcp_restart eintr_unix eintr_unix_restart eintr_pipe eintr_pipe_restart
	local c
	for c in eintr_tcp eintr_unix eintr_pipe; do
		assert_grep '^write 1M@4096 n=1048576 -> r=-1 EINTR sigs=ALRM1$' "$c.xfer"
		assert_grep '^# via' "$c.xfer"
	done
	for c in eintr_tcp_restart eintr_unix_restart eintr_pipe_restart; do
		assert_grep '^write 1M@4096 n=1048576 -> r=1048576 sigs=ALRM3$' "$c.xfer"
	done
}

test_eintr_after_bytes_moved_returns_the_count() {
	# With SA_RESTART too: the plain write returns the count, and so must
	# the kernel path (a second kernel call would be restarted instead).
	same eintr_pipe_partial eintr_pipe_partial_restart eintr_pipe_partial_misaligned \
		eintr_tcp_partial eintr_tcp_partial_restart eintr_unix_partial_restart
	assert_grep '^write 1M@4096 -> r=65536  sigs=ALRM1$' eintr_pipe_partial_restart.xfer
	local c
	for c in eintr_tcp_partial eintr_tcp_partial_restart eintr_unix_partial_restart; do
		assert_grep '^write 4M@0 -> partial sigs=ALRM1$' "$c.xfer"
	done
}

test_enospc_on_a_small_tmpfs() {
	local c
	for c in enospc_same_fs enospc_cross_fs; do
		small_tmpfs plain "$c"
		small_tmpfs xfer "$c"
		compare "$c"
		assert_grep 'r=-1 ENOSPC sigs=-$' "$c.xfer"
	done
	[ "$(grep -c '^# via copy_file_range' enospc_same_fs.xfer)" -eq 5 ] ||
		fail "ENOSPC case not by copy_file_range: $(grep '^#' enospc_same_fs.xfer)"
	assert_grep '^# via sendfile \(copy_file_range\)' enospc_cross_fs.xfer
}

test_efbig_and_sigxfsz_under_rlimit_fsize() {
	# sendfile into a file continues after a short write inside the kernel
	# and would raise SIGXFSZ at the limit where write(2) returns the count
	# (measured); nb_xfer cuts the count first.
	same efbig_same_fs efbig_cross_fs efbig_same_fs_dfl efbig_cross_fs_dfl efbig_cross_fs_ign \
		efbig_cross_fs_boundary efbig_pwrite
	local c
	for c in efbig_same_fs efbig_cross_fs; do
		assert_grep '^write n=65536 -> r=34464 sigs=-$' "$c.xfer"
		assert_grep '^write n=65536 -> r=-1 EFBIG sigs=XFSZ1$' "$c.xfer"
	done
	assert_grep '^killed by SIGXFSZ$' efbig_same_fs_dfl.xfer
	assert_grep '^killed by SIGXFSZ$' efbig_cross_fs_dfl.xfer
	assert_grep '^write n=200000 -> r=131072 sigs=-$' efbig_cross_fs_boundary.xfer
	assert_grep '^# via sendfile \(copy_file_range\)' efbig_cross_fs.xfer
}

test_short_source_never_more_than_moved() {
	run_mode xfer short_source
	[ "$(grep -c '^ok ' short_source.xfer)" -eq 7 ] || fail "short_source: $(cat short_source.xfer)"
}

test_refusals_before_any_system_call() {
	run_mode xfer refusals
	[ "$(grep -c '^ok ' refusals.xfer)" -eq 5 ] || fail "refusals: $(cat refusals.xfer)"
}

test_documented_zero_copy_reader_sees_the_file_at_read_time() {
	# sendfile(2) NOTES: the file's pages travel by reference. A reader of
	# the pipe or socket gets the file's bytes as of its own read: if the
	# file is rewritten or truncated in between, the plain write's reader
	# still gets the old bytes, the kernel path's does not. Pinned here so
	# that a kernel that behaves otherwise is noticed; the caller must keep
	# sources that may change off the kernel path (see xfer.c).
	local c
	for c in rewritten_pipe rewritten_unix rewritten_tcp truncated_pipe; do
		run_mode plain "$c"
		run_mode xfer "$c"
		assert_grep 'the reader got the bytes as of the write$' "$c.plain"
		assert_grep 'the reader got the bytes as of its read$' "$c.xfer"
	done
}

# Socket and pipe sources: the bytes sit in one of the library's pipes and
# go out with nb_xfer_from_pipe (tee'd copies, splice). Every case again,
# its bytes coming from a pipe this time; writes too large for one pipe
# (pipe-max-size) stay plain, as the library's pipes never hold them.
test_every_case_from_a_pipe_source_matches_plain() {
	local c n=0
	for c in $("$XL" list); do
		case $c in enospc_*) continue ;; esac
		mkdir -p "p.$c" && cd "p.$c" || fail "cd"
		XFERLOG_FROM_PIPE=1 same "$c"
		cd ..
		n=$((n + $(grep -c '^# via' "p.$c/$c.xfer" || true)))
	done
	for c in enospc_same_fs enospc_cross_fs; do
		XFERLOG_FROM_PIPE=1 small_tmpfs plain "$c"
		XFERLOG_FROM_PIPE=1 small_tmpfs xfer "$c"
		compare "$c"
		assert_grep 'r=-1 ENOSPC sigs=-$' "$c.xfer"
	done
	# the pipe path really ran, for sockets, pipes and files alike
	[ "$n" -ge 80 ] || fail "only $n writes went through nb_xfer_from_pipe"
	assert_grep '^# via splice \(pipe\)' p.eintr_pipe_partial/eintr_pipe_partial.xfer
	assert_grep '^# via splice \(socket\)' p.tcp_block/tcp_block.xfer
}

run_tests
