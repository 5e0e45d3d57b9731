#!/usr/bin/env bash
# Real Debian programs with the library preloaded: every output is
# byte-identical to the input (or to a plain run), and in observe mode the
# report shows the loop the program really runs (strace shows how each
# one copies: chunk size, buffer reuse, read/pread/recv). Also the JSON
# stats file: one per process, 0600, valid, never through a symlink, never
# over an existing file, never clobbered by a forked child.
. "$(dirname "$0")/lib.sh"

# ---- helpers local to this file ----

# stop_int NAME: SIGINT to the served program itself (python exits cleanly
# and writes its exit report), waited for up to 10 s; then the ordinary
# stop. Not to timeout: it would pass the signal on to its whole process
# group as well, and a second KeyboardInterrupt while python exits makes it
# die by SIGINT (Python re-raises it after finalizing), with no report.
stop_int() {
	local pid child st
	pid=$(cat "$T/$1.pid") || return 0
	child=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null)
	kill -INT ${child:-$pid} 2>/dev/null
	for _ in $(seq 100); do
		st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || break
		[ "$st" = Z ] && break
		sleep 0.1
	done
	stop "$1"
}

# one_loop REPORT: the report names exactly one loop.
one_loop() { assert_grep 'observe report: 1 copy loop found' "$1"; }

# ---- coreutils cat ----

test_cat_file_to_pipe_to_pipe_to_file_is_identical_and_each_cat_reports_its_loop() {
	mkdata in.bin 16M
	export NOBOUNCE_MODE=observe
	nb_run cat in.bin 2> r1.txt | nb_run cat 2> r2.txt | nb_run cat > out.bin 2> r3.txt
	assert_same in.bin out.bin
	one_loop r1.txt
	assert_grep 'fd 3 \(file\) -> fd 1 \(pipe\): 128 iterations, 16.0 MiB, chunks \[128K:128\]' r1.txt
	assert_grep 'splice would serve it' r1.txt
	# Pipe reads return what the writer put in: sizes vary, bytes do not.
	assert_grep 'fd 0 \(pipe\) -> fd 1 \(pipe\): [0-9]+ iterations, 16.0 MiB' r2.txt
	assert_grep 'splice would serve it' r2.txt
	assert_grep 'fd 0 \(pipe\) -> fd 1 \(file\): [0-9]+ iterations, 16.0 MiB' r3.txt
	assert_grep 'splice would serve it' r3.txt
}

test_cat_file_to_file_on_the_same_fs_uses_copy_file_range_and_reports_no_loop() {
	mkdata in.bin 8M
	NOBOUNCE_MODE=observe NOBOUNCE_STATS=$T/s.json nb_run cat in.bin > out.bin 2> report.txt
	assert_same in.bin out.bin
	# The kernel already copies: nothing bounces through user space.
	assert_nogrep '\-> fd' report.txt
	assert_eq "$(jget s.json 'len(j["loops"])')" 0 "loops in stats"
}

# coreutils try copy_file_range first; from ext4 to tmpfs it fails with
# EXDEV and cat falls back to 128K read/write: a real loop.
test_cat_file_to_file_across_filesystems_is_identical_and_reported() {
	[ "$(stat -f -c %T /dev/shm)" = tmpfs ] || fail "/dev/shm is not tmpfs"
	[ "$(stat -f -c %T .)" != tmpfs ] || fail "scratch dir is on tmpfs: not across file systems"
	local dst
	dst=$(mktemp /dev/shm/nb-30-xfs.XXXXXX)
	trap "rm -f '$dst'" EXIT
	mkdata in.bin 8M
	NOBOUNCE_MODE=observe nb_run cat in.bin > "$dst" 2> report.txt
	assert_same in.bin "$dst"
	one_loop report.txt
	assert_grep 'fd 3 \(file\) -> fd 1 \(file\): 64 iterations, 8.0 MiB, chunks \[128K:64\]' report.txt
	assert_grep '(sendfile|copy_file_range) would serve it' report.txt
}

# The same run, on what the report claims: cat itself has just seen
# copy_file_range fail with EXDEV for this pair, so the path that would
# serve it is sendfile (which works file -> file across file systems).
test_cat_across_filesystems_report_names_a_path_that_works_across_filesystems() {
	local dst
	dst=$(mktemp /dev/shm/nb-30-xfs.XXXXXX)
	trap "rm -f '$dst'" EXIT
	mkdata in.bin 8M
	NOBOUNCE_MODE=observe NOBOUNCE_STATS=$T/s.json nb_run cat in.bin > "$dst" 2> report.txt
	assert_same in.bin "$dst"
	assert_eq "$(jloop s.json file file kernel_path)" sendfile \
		"kernel path for ext4 -> tmpfs; report: $(grep serve report.txt)"
}

test_cat_appending_to_a_file_reports_the_append_destination_as_why_not_served() {
	mkdata in.bin 8M
	printf 'first line\n' > out.bin
	NOBOUNCE_MODE=observe nb_run cat in.bin >> out.bin 2> report.txt
	{ printf 'first line\n'; cat in.bin; } > want.bin
	assert_same want.bin out.bin
	assert_grep 'fd 3 \(file\) -> fd 1 \(file\): 64 iterations, 8.0 MiB' report.txt
	assert_grep 'not served: the destination is opened with O_APPEND; stays plain' report.txt
}

test_cat_tcp_to_file_is_identical_and_reports_tcp_to_file_loop() {
	mkdata in.bin 8M
	local p
	p=$(port)
	serve src "$PROG/bounce" in.bin "listen:127.0.0.1:$p"
	wait_listen "$p"
	NOBOUNCE_MODE=observe nb_run cat < "/dev/tcp/127.0.0.1/$p" > out.bin 2> report.txt
	finish src || fail "sender failed"
	assert_same in.bin out.bin
	one_loop report.txt
	# Socket reads come back short; small ones are not tracked at all.
	assert_grep 'fd 0 \(tcp\) -> fd 1 \(file\): [0-9]+ iterations, [0-9.]+ MiB' report.txt
	assert_grep 'splice would serve it' report.txt
}

# ---- dd: opens if= and of= onto descriptors 0 and 1 ----

test_dd_bs_64k_file_to_file_reports_fd0_to_fd1() {
	mkdata in.bin 8M
	: | NOBOUNCE_MODE=observe nb_run dd if=in.bin of=out.bin bs=64K status=none 2> report.txt
	assert_same in.bin out.bin
	one_loop report.txt
	assert_grep 'fd 0 \(file\) -> fd 1 \(file\): 128 iterations, 8.0 MiB, chunks \[64K:128\]' report.txt
	assert_grep 'copy_file_range would serve it' report.txt
}

test_dd_bs_1m_file_to_pipe_reports_large_chunks() {
	mkdata in.bin 8M
	NOBOUNCE_MODE=observe nb_run dd if=in.bin bs=1M status=none 2> report.txt < /dev/null | cat > out.bin
	assert_same in.bin out.bin
	one_loop report.txt
	assert_grep 'fd 0 \(file\) -> fd 1 \(pipe\): 8 iterations, 8.0 MiB, chunks \[>=512K:8\]' report.txt
	assert_grep 'splice would serve it' report.txt
}

# ---- python3 -m http.server (read 64K -> sendto, two alternating buffers) ----

test_python_http_server_download_is_identical_and_reports_file_to_tcp_sendfile() {
	mkdir www
	mkdata www/big.bin 32M
	local p
	p=$(port)
	cd www
	serve py env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe NOBOUNCE_STATS="$T/py-%p.json" \
		"$PY" -m http.server --bind 127.0.0.1 "$p" > "$T/py.out" 2> "$T/py.err"
	cd "$T"
	wait_port "$p"
	curl -s --max-time 30 -o got.bin "http://127.0.0.1:$p/big.bin" || fail "curl failed"
	stop_int py
	assert_same www/big.bin got.bin
	local f
	f=$(echo py-*.json)
	[ -f "$f" ] || { cat py.err >&2; fail "no stats file py-<pid>.json"; }
	"$PY" -m json.tool "$f" > /dev/null || fail "$f is not valid JSON"
	assert_eq "$(jget "$f" 'j["program"]')" python3
	assert_eq "$(jloop "$f" file tcp kernel_path)" sendfile
	assert_eq "$(jloop "$f" file tcp bytes)" 33554432
	assert_eq "$(jloop "$f" file tcp iterations)" 512
	assert_grep 'fd [0-9]+ \(file\) -> fd [0-9]+ \(tcp\): 512 iterations, 32.0 MiB, chunks \[64K:512\]' py.err
	assert_grep 'sendfile would serve it' py.err
}

# ---- socket sources in mode on ----

# curl receives with recv into its buffer and writes the file with
# fwrite: with the minimum lowered (curl's reads are below
# NOBOUNCE_MIN_CHUNK_STREAM), the reads become pool-pipe phantoms and the
# fwrites are served from them; the download is exact.
test_curl_download_with_the_library_in_mode_on_is_identical() {
	mkdir www
	mkdata www/big.bin 32M
	local p
	p=$(port)
	cd www
	serve py "$PY" -m http.server --bind 127.0.0.1 "$p" > "$T/py.out" 2> "$T/py.err"
	cd "$T"
	wait_port "$p"
	env LD_PRELOAD="$LIB" NOBOUNCE_MIN_CHUNK_STREAM=4K NOBOUNCE_STATS="$T/curl.json" \
		curl -s --max-time 30 -o got.bin "http://127.0.0.1:$p/big.bin" || fail "curl failed"
	stop_int py
	assert_same www/big.bin got.bin
	[ "$(jget curl.json "j['counters']['forwarded_writes']")" -gt 0 ] ||
		fail "curl's fwrites were never served: $(cat curl.json)"
}

# GNU cat reading a TCP stream (bash's /dev/tcp as its stdin) into a file:
# page-aligned 128K buffer, reads of what is queued; served when the
# minimum allows it, identical either way.
test_cat_from_a_tcp_socket_into_a_file_in_mode_on_is_identical() {
	mkdata in.bin 32M
	local p run
	for run in default lowered; do
		p=$(port)
		serve snd socat -u FILE:in.bin "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr"
		wait_listen "$p"
		if [ $run = default ]; then
			env LD_PRELOAD="$LIB" NOBOUNCE_STATS="$T/$run.json" \
				bash -c 'exec cat < /dev/tcp/127.0.0.1/$1' _ "$p" > "out.$run" ||
				fail "cat failed"
		else
			env LD_PRELOAD="$LIB" NOBOUNCE_MIN_CHUNK_STREAM=16K NOBOUNCE_STATS="$T/$run.json" \
				bash -c 'exec cat < /dev/tcp/127.0.0.1/$1' _ "$p" > "out.$run" ||
				fail "cat failed"
		fi
		finish snd || fail "sender failed"
		assert_same in.bin "out.$run"
	done
	[ "$(jget lowered.json "j['counters']['forwarded_writes']")" -gt 0 ] ||
		fail "cat's writes were never served: $(cat lowered.json)"
}

# netcat-openbsd receiving a stream into a file under the library in mode
# on (minimum lowered): its buffer is on the stack, which is never
# guarded - the loop is recognised, left plain, and the file is exact.
test_nc_receiving_into_a_file_in_mode_on_is_identical_and_never_guarded() {
	mkdata in.bin 16M
	local p
	p=$(port)
	serve nc env LD_PRELOAD="$LIB" NOBOUNCE_MIN_CHUNK=4K NOBOUNCE_MIN_CHUNK_STREAM=4K \
		NOBOUNCE_STATS="$T/nc.json" nc -l 127.0.0.1 "$p" < /dev/null > out.bin
	wait_listen "$p"
	"$PROG/bounce" in.bin "tcp:127.0.0.1:$p" || fail "sender failed"
	finish nc || fail "nc failed"
	assert_same in.bin out.bin
	# The loop came to arm and was refused for its buffer: not counted
	# armed, the reason recorded (so the refusal was tested).
	assert_eq "$(jget nc.json "j['counters']['arms']")" 0 "nc's loop on a stack buffer counted armed"
	assert_eq "$(jloop nc.json tcp file not_served)" stack "why nc's loop is not served"
	assert_eq "$(jget nc.json "j['counters']['deferred_reads']")" 0 "reads into nc's stack buffer deferred"
}

# ---- socat and netcat ----

test_socat_file_to_tcp_to_listening_nc_is_identical_and_reports_sendfile() {
	mkdata in.bin 8M
	local p
	p=$(port)
	serve nc nc -l 127.0.0.1 "$p" < /dev/null > out.bin
	wait_listen "$p"
	NOBOUNCE_MODE=observe nb_run socat -u FILE:in.bin "TCP:127.0.0.1:$p" 2> report.txt ||
		fail "socat failed: $(cat report.txt)"
	finish nc || fail "nc failed"
	assert_same in.bin out.bin
	one_loop report.txt
	assert_grep 'fd [0-9]+ \(file\) -> fd [0-9]+ \(tcp\): 1024 iterations, 8.0 MiB, chunks \[8K:1024\]' report.txt
	assert_grep 'sendfile would serve it' report.txt
}

test_socat_tcp_relay_is_identical_and_reports_tcp_to_tcp_splice() {
	mkdata in.bin 8M
	local p1 p2
	p1=$(port)
	p2=$(port)
	serve sink "$PROG/bounce" "listen:127.0.0.1:$p2" out.bin
	serve relay env LD_PRELOAD="$LIB" NOBOUNCE_MODE=observe \
		socat "TCP-LISTEN:$p1,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.1:$p2" 2> report.txt
	wait_listen "$p1"
	"$PROG/bounce" in.bin "tcp:127.0.0.1:$p1" || fail "sender failed"
	finish relay || fail "relay socat failed: $(cat report.txt)"
	finish sink || fail "receiver failed"
	assert_same in.bin out.bin
	one_loop report.txt
	assert_grep 'fd [0-9]+ \(tcp\) -> fd [0-9]+ \(tcp\): [0-9]+ iterations, [0-9.]+ MiB' report.txt
	assert_grep 'splice would serve it' report.txt
}

test_nc_client_sending_a_file_is_identical_and_reports_file_to_tcp() {
	mkdata in.bin 8M
	local p
	p=$(port)
	serve sink "$PROG/bounce" "listen:127.0.0.1:$p" out.bin
	wait_listen "$p"
	NOBOUNCE_MODE=observe nb_run nc -N 127.0.0.1 "$p" < in.bin 2> report.txt ||
		fail "nc failed: $(cat report.txt)"
	finish sink || fail "receiver failed"
	assert_same in.bin out.bin
	one_loop report.txt
	assert_grep 'fd 0 \(file\) -> fd [0-9]+ \(tcp\): 512 iterations, 8.0 MiB, chunks \[16K:512\]' report.txt
	# nc's buffer is on its stack: no promise of sendfile, the reason.
	assert_grep 'not served: the buffer is on the stack \(sendfile needs' report.txt
	assert_nogrep 'would serve it' report.txt
}

# ---- negative cases: the bytes written are not the bytes read ----

test_gzip_compress_and_decompress_report_no_loop() {
	mkdata in.bin 8M
	export NOBOUNCE_MODE=observe
	nb_run gzip -c in.bin 2> r1.txt | nb_run gzip -dc > out.bin 2> r2.txt
	assert_same in.bin out.bin
	assert_grep '0 copy loops found' r1.txt
	assert_grep '0 copy loops found' r2.txt
	assert_nogrep '\-> fd' r1.txt
	assert_nogrep '\-> fd' r2.txt
}

test_program_writing_a_different_buffer_reports_no_loop() {
	mkdata in.bin 8M
	NOBOUNCE_MODE=observe NOBOUNCE_STATS=$T/s.json nb_run "$PROG/bounce" --transform in.bin out.bin \
		2> report.txt || fail "bounce failed: $(cat report.txt)"
	assert_same in.bin out.bin
	assert_grep '0 copy loops found' report.txt
	assert_eq "$(jget s.json 'len(j["loops"])')" 0 "loops in stats"
	assert_eq "$(jget s.json 'j["counters"]["bounces"]')" 0 "bounces"
}

# tar reads file data into its record buffer after the header blocks and
# writes whole records: the archive must be exactly a plain run's.
test_tar_to_cat_archive_is_identical_to_a_plain_run() {
	mkdir -p dir/sub
	mkdata dir/a.bin 8M
	mkdata dir/sub/b.bin 3000123
	mkdata dir/c.bin 1000
	local opts=(--sort=name --mtime=@1000000000 --owner=0 --group=0 --numeric-owner --format=gnu)
	tar "${opts[@]}" -cf - dir | cat > plain.tar
	NOBOUNCE_MODE=observe nb_run tar "${opts[@]}" -cf - dir 2> r1.txt | NOBOUNCE_MODE=observe nb_run cat \
		> pre.tar 2> r2.txt
	[ "${PIPESTATUS[0]}" = 0 ] || fail "tar failed: $(cat r1.txt)"
	assert_same plain.tar pre.tar
	assert_grep 'tar\[[0-9]+\] observe report' r1.txt
	assert_grep 'fd 0 \(pipe\) -> fd 1 \(file\)' r2.txt
	mkdir x
	tar -xf pre.tar -C x || fail "archive does not extract"
	assert_same dir/a.bin x/dir/a.bin
	assert_same dir/sub/b.bin x/dir/sub/b.bin
}

# ---- NOBOUNCE_STATS ----

test_stats_with_pid_in_name_writes_one_private_valid_file_per_process() {
	mkdata in.bin 8M
	export NOBOUNCE_STATS=$T/s-%p.json
	nb_run cat in.bin | nb_run cat > out.bin
	unset NOBOUNCE_STATS
	assert_same in.bin out.bin
	local files=(s-*.json) f
	assert_eq "${#files[@]}" 2 "stats files: ${files[*]}"
	for f in "${files[@]}"; do
		assert_eq "$(stat -c %a "$f")" 600 "mode of $f"
		"$PY" -m json.tool "$f" > /dev/null || fail "$f is not valid JSON"
		assert_eq "s-$(jget "$f" 'j["pid"]').json" "$f" "pid inside $f"
		assert_eq "$(jget "$f" 'j["program"]')" cat
	done
	# One process read the file, the other the pipe.
	local w r
	w=$(grep -l '"src_kind": "file"' s-*.json)
	r=$(grep -l '"src_kind": "pipe"' s-*.json)
	[ -n "$w" ] && [ -n "$r" ] && [ "$w" != "$r" ] || fail "loops not one per process"
	assert_eq "$(jloop "$w" file pipe iterations)" 64
	assert_eq "$(jloop "$w" file pipe bytes)" 8388608
	assert_eq "$(jloop "$w" file pipe chunks)" '{"128K": 64}'
	assert_eq "$(jloop "$r" pipe file bytes)" 8388608
}

test_stats_symlink_planted_at_the_path_is_not_followed() {
	mkdata in.bin 8M
	printf 'precious\n' > target.txt
	ln -s target.txt s.json
	NOBOUNCE_STATS=$T/s.json nb_run "$PROG/bounce" in.bin out.bin 2> err.txt || fail "bounce failed"
	assert_same in.bin out.bin
	assert_eq "$(cat target.txt)" precious "target of the symlink"
	[ -L s.json ] || fail "s.json is no longer the symlink"
	assert_eq "$(grep -c 'cannot write stats' err.txt)" 1 "error lines: $(cat err.txt)"
	assert_grep "s.json" err.txt
	# A dangling symlink: the file it names must not come into existence.
	ln -sf "$T/nothing-here" d.json
	NOBOUNCE_STATS=$T/d.json nb_run "$PROG/bounce" in.bin out.bin 2> err2.txt || fail "bounce failed"
	[ ! -e nothing-here ] || fail "stats written through a dangling symlink"
	assert_eq "$(grep -c 'cannot write stats' err2.txt)" 1 "error lines: $(cat err2.txt)"
}

test_stats_existing_file_is_not_overwritten() {
	mkdata in.bin 8M
	printf 'old report\n' > s.json
	NOBOUNCE_STATS=$T/s.json nb_run "$PROG/bounce" in.bin out.bin 2> err.txt || fail "bounce failed"
	assert_same in.bin out.bin
	assert_eq "$(cat s.json)" 'old report' "existing stats file"
	assert_eq "$(grep -c 'cannot write stats' err.txt)" 1 "error lines: $(cat err.txt)"
	assert_grep 'not overwriting' err.txt
}

# coreutils close fd 2 before exit (gnulib close_stdout), and the stats file
# is opened at exit: the complaint must still reach the original stderr.
test_stats_error_line_survives_a_program_that_closes_stderr() {
	mkdata in.bin 8M
	printf 'old report\n' > s.json
	NOBOUNCE_STATS=$T/s.json nb_run cat in.bin 2> err.txt | cat > out.bin
	assert_same in.bin out.bin
	assert_eq "$(cat s.json)" 'old report' "existing stats file"
	assert_eq "$(grep -c 'cannot write stats' err.txt)" 1 "error lines in cat's stderr"
}

# A fork child (no exec) that exits normally runs the library's exit code
# too; with a name without %p only the parent may write the file.
test_stats_forked_child_does_not_clobber_the_parents_file() {
	mkdata a.bin 8M
	mkdata b.bin 4M
	cat > fork.py <<'EOF'
import os, sys
def copy(src, dst):
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    while True:
        b = os.read(fi, 65536)
        if not b:
            break
        os.write(fo, b)
    os.close(fi)
    os.close(fo)
pid = os.fork()
if pid == 0:
    copy("a.bin", "a.out")
    sys.exit(0)  # a normal exit: atexit, destructors
_, st = os.waitpid(pid, 0)
assert st == 0, st
copy("b.bin", "b.out")
print(os.getpid())
EOF
	local parent
	parent=$(NOBOUNCE_STATS=$T/s.json nb_run "$PY" fork.py 2> err.txt) || fail "fork.py failed: $(cat err.txt)"
	assert_same a.bin a.out
	assert_same b.bin b.out
	[ -f s.json ] || fail "no stats file"
	assert_eq "$(jget s.json 'j["pid"]')" "$parent" "pid in stats"
	# The parent's loop (4 MiB), not the child's (8 MiB).
	assert_eq "$(jloop s.json file file bytes)" 4194304
	assert_nogrep 'cannot write stats' err.txt
}

run_tests
