# Chunks decoded and written by the workers (issue 14): the main thread
# hands each chunk it has k verified symbols of to the worker that owns
# it, and takes it back to mark it done.  With every chunk job slowed by
# the slow_chunk failpoint (20 ms each, a disk that stalls), jobs pile up
# with the workers while symbols keep coming:
#   1. with 1 and with 4 workers the bundle is released bit-exact, every
#      chunk went through a worker (chunk_jobs = chunks_done), several
#      were with the workers at once (chunk_jobs_max > 1), workers checked
#      descriptor signatures (sig_checks_early) and the shared cache kept
#      the checks to about one per chunk over two passes, and most
#      symbols of chunks already written were not hashed (hash_skipped);
#   2. a transfer preempted (max_transfers_in_flight = 1) while chunks of
#      it are with a worker: the receiver waits for them, does not mark
#      them done for the transfer that took the slot, and both bundles are
#      released bit-exact;
#   3. SIGTERM while jobs are queued, before the last chunk has come:
#      the receiver ends within seconds, every job given run and counted
#      (chunk_jobs = chunks_done at exit), nothing in the store; after a
#      restart it resumes from those chunks and releases bit-exact;
#   4. workers far behind (32 slots, 20 ms a chunk, one pass): the main
#      thread waits for them with a quarter of the slots busy, the ingest
#      queue holds the rest, and the bundle is released with no drop.
. "$(dirname "$0")/lib.sh"

keys sender
rand_file "$T/bundle/a.bin" 12000000
text_file "$T/bundle/b.txt" 3000000
rand_file "$T/bundle/c/d.bin" 300000

stat_of() { # NAME: from the receiver's last stats or exiting line
	grep -o " $1=[0-9]*" "$T/recv.err" | tail -n 1 | cut -d= -f2
}

note "1. slow chunk jobs, 1 and 4 workers"
for w in 1 4; do
	rm -rf "$T/staging" "$T/store" "$T/quarantine.log" "$T/recv.err"
	receiver_conf "workers = $w"
	SLUICE_FAILPOINT=slow_chunk start_recv
	RATE=400M sender_conf "passes = 2"
	send --version "w$w" "$T/bundle"
	wait_state RELEASED 60
	assert_same_tree "$T/bundle" "$(released bundle "w$w")"
	stop_recv
	jobs=$(stat_of chunk_jobs) done=$(stat_of chunks_done)
	max=$(stat_of chunk_jobs_max)
	early=$(stat_of sig_checks_early) checks=$(stat_of sig_checks)
	skipped=$(stat_of hash_skipped) red=$(stat_of redundant)
	echo "workers=$w chunk_jobs=$jobs chunks_done=$done chunk_jobs_max=$max sig_checks=$checks sig_checks_early=$early hash_skipped=$skipped redundant=$red"
	[ "${done:-0}" -gt 10 ] || die "workers=$w: chunks_done=$done"
	# A chunk whose job ended after its transfer was done is counted as
	# a job but not as done: none can be here (one transfer).
	[ "$jobs" = "$done" ] || die "workers=$w: chunk_jobs=$jobs, chunks_done=$done"
	[ "${max:-0}" -gt 1 ] || die "workers=$w: never more than one job at once"
	# Descriptors of the live transfer checked by the workers, and no
	# more checks than chunks plus the first (the transfer's admission,
	# on the main thread), the heartbeats (never cached) and the odd
	# race between two workers.
	hb=$(stat_of heartbeats)
	[ "${early:-0}" -gt 0 ] || die "workers=$w: no signature checked early"
	# The second pass's symbols of chunks already written are not
	# hashed (ingest_hint_chunk): most of what is redundant.
	[ "${skipped:-0}" -gt $((red / 2)) ] ||
		die "workers=$w: $skipped of $red redundant symbols left unhashed"
	[ "${checks:-0}" -le $((done + 1 + hb + w)) ] ||
		die "workers=$w: $checks signature checks for $done chunks"
	grep -q "drop_staging_write\|drop_decode_failed\|drop_chunk_hash" \
	    "$T/recv.err" && die "workers=$w: a chunk failed"
done

note "2. a transfer preempted while its chunks are with a worker"
rm -rf "$T/staging" "$T/store" "$T/quarantine.log" "$T/recv.err"
receiver_conf "workers = 2" "max_transfers_in_flight = 1"
SLUICE_FAILPOINT=slow_chunk start_recv
mkdir -p "$T/other"
rand_file "$T/other/x.bin" 6000000
RATE=300M sender_conf "passes = 3"
"$SEND" -c "$T/sender.conf" --version p1 "$T/bundle" >>"$T/send.err" 2>&1 &
S1=$!
PIDS+=("$S1")
sleep 0.4
"$SEND" -c "$T/sender.conf" --version p2 "$T/other" >>"$T/send.err" 2>&1 &
S2=$!
PIDS+=("$S2")
wait "$S1" || die "first sender failed"
wait "$S2" || die "second sender failed"
wait_until 60 grep -q "version=p2 .*state=RELEASED" "$T/quarantine.log" ||
    die "p2 not released"
grep -q "reason=preempted" "$T/quarantine.log" ||
    die "nothing was preempted: the case was not tested"
# The preempted one comes back with a resend of its own.
grep -q "version=p1 .*state=RELEASED" "$T/quarantine.log" ||
    send --version p1 "$T/bundle"
wait_until 60 grep -q "version=p1 .*state=RELEASED" "$T/quarantine.log" ||
    die "p1 not released"
assert_same_tree "$T/bundle" "$(released bundle p1)"
assert_same_tree "$T/other" "$(released other p2)"
kill -0 "$RECV_PID" || die "receiver died"
stop_recv

note "3. SIGTERM with jobs queued, then a restart"
rm -rf "$T/staging" "$T/store" "$T/quarantine.log" "$T/recv.err"
receiver_conf "workers = 1"
SLUICE_FAILPOINT=slow_chunk start_recv
# Slow enough that the stop comes before the last chunk has arrived.
RATE=100M sender_conf "passes = 2"
"$SEND" -c "$T/sender.conf" --version t1 "$T/bundle" >>"$T/send.err" 2>&1 &
S1=$!
PIDS+=("$S1")
wait_until 20 grep -q "state=RECEIVING" "$T/quarantine.log" || die "no transfer"
sleep 0.6
t0=$(date +%s%N)
kill "$RECV_PID"
wait "$RECV_PID"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
echo "stopped in $ms ms, exit $rc"
[ "$rc" = 0 ] || die "receiver exited $rc on SIGTERM"
[ "$ms" -lt 10000 ] || die "SIGTERM took $ms ms"
jobs=$(stat_of chunk_jobs) done=$(stat_of chunks_done)
echo "at exit: chunk_jobs=$jobs chunks_done=$done"
[ "${jobs:-0}" -gt 0 ] || die "no chunk job before the stop"
[ "$jobs" = "$done" ] || die "jobs given but not counted at exit: $jobs vs $done"
[ -z "$(ls -A "$T/store" 2>/dev/null)" ] || die "store not empty after stop"
[ -n "$(staging_leftovers)" ] || die "no staging left to resume from"
restart_recv
wait "$S1" || die "sender failed"
wait_until 60 grep -q "version=t1 .*state=RELEASED" "$T/quarantine.log" ||
    send --version t1 "$T/bundle"
wait_state RELEASED 60
assert_same_tree "$T/bundle" "$(released bundle t1)"
grep -qE 'reason=resumed detail="[1-9][0-9]* chunks already on disk"' \
    "$T/quarantine.log" || die "did not resume from what the workers wrote"
stop_recv
note "4. workers far behind: the queue holds the backlog, not the slots"
# 32 slots: at most 8 chunks with the workers; each takes 20 ms, so the
# workers fall behind an 800 Mbit/s sender by far.  One pass on a clean
# link must still release: the main thread waits for them and the
# ingest queue holds the datagrams meanwhile, where before this fix the
# slots ran out (chunk_limit, then pending_limit) and chunks were lost.
rm -rf "$T/staging" "$T/store" "$T/quarantine.log" "$T/recv.err"
receiver_conf "workers = 2" "max_partial_chunks = 32"
SLUICE_FAILPOINT=slow_chunk start_recv
RATE=800M sender_conf "passes = 1"
send --version b1 "$T/bundle"
wait_state RELEASED 60
assert_same_tree "$T/bundle" "$(released bundle b1)"
stop_recv
max=$(stat_of chunk_jobs_max)
echo "chunk_jobs_max=$max"
# A quarter of the slots (8), give or take the chunks one run of
# datagrams completes at once; never all of them.
[ "${max:-0}" -lt 24 ] || die "$max of 32 slots with the workers"
grep -q "drop_chunk_limit\|drop_pending_limit\|drop_queue_full" "$T/recv.err" &&
    die "datagrams dropped while the workers were behind"
echo "workers decode and write chunks; preemption and stop wait for them"
