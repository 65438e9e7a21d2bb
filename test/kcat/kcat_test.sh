#!/usr/bin/env bash
# Drives `meshka dev` with kcat (librdkafka), the way an operator would:
# produce and consume with every codec, a 1 MiB value, metadata, a clean
# SIGTERM shutdown, and a restart that must keep what was written; then
# `meshka run` in front of an upstream that advertises Produce from v0, as
# Apache Kafka 4.0 does, with every codec again. The Go test that runs this
# script (test/kcat_test.go) then reads both upstreams directly and checks
# the codec of every batch kcat wrote.
#
# Environment: MESHKA_BIN (the meshka binary), MESHKA_ADDR (host:port to
# listen on), WORKDIR (an empty scratch directory), KAFKA4_UPSTREAM (that
# upstream's brokers, comma-separated) and KAFKA4_ADDR (host:port for the
# meshka in front of it).
set -euo pipefail

: "${MESHKA_BIN:?MESHKA_BIN must name the meshka binary}"
: "${MESHKA_ADDR:?MESHKA_ADDR must be host:port}"
: "${WORKDIR:?WORKDIR must name a scratch directory}"
: "${KAFKA4_UPSTREAM:?KAFKA4_UPSTREAM must list the brokers of the Kafka 4.0-like upstream}"
: "${KAFKA4_ADDR:?KAFKA4_ADDR must be host:port}"

LOG="$WORKDIR/meshka.log"
DATA="$WORKDIR/data"
meshka_pid=""

log() { printf '%s kcat_test: %s\n' "$(date +%T)" "$*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}

# Every kcat call is bounded so a proxy that stops answering fails the
# script instead of hanging it. -m bounds metadata queries inside kcat too.
kc() { timeout 60 kcat -b "$MESHKA_ADDR" -m 10 "$@"; }

alive() { [[ -n $meshka_pid ]] && kill -0 "$meshka_pid" 2>/dev/null; }

on_exit() {
	local status=$?
	if [[ -n ${kafka4_pid:-} ]] && kill -0 "$kafka4_pid" 2>/dev/null; then
		kill -TERM "$kafka4_pid" 2>/dev/null || true
		wait "$kafka4_pid" 2>/dev/null || true
	fi
	if alive; then
		kill -TERM "$meshka_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			alive || break
			sleep 0.2
		done
		alive && kill -KILL "$meshka_pid" 2>/dev/null || true
		wait "$meshka_pid" 2>/dev/null || true
	fi
	if ((status != 0)); then
		log "exit status $status; meshka log follows"
		cat "$LOG" >&2 || true
	fi
	exit "$status"
}
trap on_exit EXIT

start_meshka() {
	echo "=== meshka dev started by kcat_test.sh ===" >>"$LOG"
	"$MESHKA_BIN" dev --listen "$MESHKA_ADDR" --cluster-bind 127.0.0.1:0 --admin 127.0.0.1:0 --data-dir "$DATA" >>"$LOG" 2>&1 &
	meshka_pid=$!
	for _ in $(seq 1 60); do
		alive || fail "meshka exited during startup"
		if timeout 10 kcat -b "$MESHKA_ADDR" -m 5 -L >/dev/null 2>&1; then
			log "meshka (pid $meshka_pid) answers metadata at $MESHKA_ADDR"
			return 0
		fi
		sleep 0.5
	done
	fail "meshka did not answer kcat -L at $MESHKA_ADDR"
}

# consume_sorted TOPIC OUT reads the whole topic as key:value lines, sorted
# so partitioning does not matter to the comparison.
consume_sorted() {
	kc -C -t "$1" -e -o beginning -q -f '%k:%s\n' >"$2.raw"
	LC_ALL=C sort "$2.raw" >"$2"
}

start_meshka

for codec in none gzip snappy lz4 zstd; do
	topic="kcat-$codec"
	sent="$WORKDIR/$topic.sent"
	got="$WORKDIR/$topic.got"
	# A repeated filler makes the batches compressible.
	filler=$(printf "$codec%.0s" {1..8})
	for i in $(seq -w 1 100); do
		printf 'key-%s:value-%s-%s\n' "$i" "$i" "$filler"
	done >"$sent"
	# Whether librdkafka compresses is its own choice (see test/kcat_test.go,
	# which checks what upstream stored); the records must round-trip.
	kc -P -t "$topic" -z "$codec" -K: <"$sent" 2>"$WORKDIR/$topic.produce.log" ||
		fail "$topic: produce failed: $(cat "$WORKDIR/$topic.produce.log")"
	consume_sorted "$topic" "$got"
	LC_ALL=C sort -o "$sent" "$sent"
	if ! diff -u "$sent" "$got"; then
		fail "$topic: consumed records differ from produced ones"
	fi
	log "$topic: 100 records round-tripped"
done

# A 1 MiB value does not fit Kafka's default max.message.bytes (1048588)
# once the batch around it is counted, so upstream must refuse it and meshka
# must hand that refusal back as MESSAGE_TOO_LARGE rather than drop the
# connection. It goes uncompressed so the outcome does not depend on
# whether this librdkafka compresses (see above).
big="$WORKDIR/big.bin"
head -c 786432 /dev/urandom | base64 -w0 >"$big"
[[ $(stat -c %s "$big") -eq 1048576 ]] || fail "big value is $(stat -c %s "$big") bytes, want 1048576"
if kc -P -t kcat-big -p 0 -X message.max.bytes=4194304 "$big" 2>"$WORKDIR/big.produce.err"; then
	fail "a 1 MiB value was accepted above the default max.message.bytes"
fi
grep -q 'Message size too large' "$WORKDIR/big.produce.err" ||
	fail "1 MiB value refused with something other than MESSAGE_TOO_LARGE: $(cat "$WORKDIR/big.produce.err")"
log "1 MiB value refused with MESSAGE_TOO_LARGE, as Kafka does"

# The largest round value that fits (1 MiB less 1 KiB) must come back byte
# for byte: one record batch near the frame and fetch size limits.
head -c 785664 /dev/urandom | base64 -w0 >"$big"
[[ $(stat -c %s "$big") -eq 1047552 ]] || fail "big value is $(stat -c %s "$big") bytes, want 1047552"
kc -P -t kcat-big -p 0 -X message.max.bytes=4194304 "$big"
kc -C -t kcat-big -p 0 -o beginning -c 1 -e -q -f '%s' >"$WORKDIR/big.got"
cmp "$big" "$WORKDIR/big.got" || fail "the 1 MiB - 1 KiB value came back different"
log "1 MiB - 1 KiB value round-tripped byte for byte"

# Metadata names meshka as the only broker and the leader of every
# partition: clients must never be sent to the upstream brokers.
meta="$WORKDIR/meta.txt"
kc -L -t kcat-none >"$meta"
cat "$meta" >&2
grep -Eq "^ +broker 0 at ${MESHKA_ADDR}( |\$)" "$meta" || fail "metadata does not name broker 0 at $MESHKA_ADDR"
brokers=$(grep -Ec '^ +broker [0-9]+ at ' "$meta" || true)
[[ $brokers -eq 1 ]] || fail "metadata lists $brokers brokers, want 1"
grep -q 'topic "kcat-none" with 3 partitions:' "$meta" || fail "kcat-none does not have 3 partitions"
for p in 0 1 2; do
	grep -Eq "^ +partition $p, leader 0, replicas: 0, isrs: 0\$" "$meta" || fail "partition $p of kcat-none is not led by broker 0 alone"
done

# SIGTERM must drain and exit 0 within 15 s.
log "sending SIGTERM to meshka (pid $meshka_pid)"
kill -TERM "$meshka_pid"
deadline=$((SECONDS + 15))
while alive; do
	((SECONDS < deadline)) || fail "meshka still running 15 s after SIGTERM"
	sleep 0.2
done
status=0
wait "$meshka_pid" || status=$?
meshka_pid=""
[[ $status -eq 0 ]] || fail "meshka exited with status $status after SIGTERM, want 0"
log "meshka exited 0 after SIGTERM"

# The embedded upstream persists to the data dir, so a restart still has
# every record written before the shutdown.
start_meshka
consume_sorted kcat-none "$WORKDIR/kcat-none.after-restart"
if ! diff -u "$WORKDIR/kcat-none.sent" "$WORKDIR/kcat-none.after-restart"; then
	fail "kcat-none after restart differs from what was produced"
fi
log "kcat-none kept its 100 records across a restart"

# Consumer groups (-G): two kcat members of one group share a topic, every
# line is printed exactly once between them, and stopping them commits
# their offsets, so a third member of the group finds nothing left.
# librdkafka commits on revocation and on close, so no line is printed
# twice. The first 100 lines also create the topic (3 partitions); the other
# 100 are written once both members hold partitions.
grp_topic=kcat-group
grp_sent="$WORKDIR/group.sent"
for i in $(seq -w 1 200); do
	printf 'gkey-%s:gvalue-%s\n' "$i" "$i"
done >"$grp_sent"
head -n 100 "$grp_sent" | kc -P -t "$grp_topic" -K: || fail "$grp_topic: produce failed"

# Without -q kcat reports each rebalance on stderr ("... rebalanced ...:
# assigned: ..."); -u writes each line as it comes, so the files can be
# watched. A short session keeps a lost member from stalling the group for
# librdkafka's default 45 s.
# Members are started as simple commands so $! is the member itself (via
# timeout, which passes SIGTERM on), not a subshell around it.
group_member=(kcat -b "$MESHKA_ADDR" -m 10 -G kcat-grp -u -X auto.offset.reset=earliest
	-X session.timeout.ms=6000 -X heartbeat.interval.ms=500 -f '%k:%s\n')
m1="" m2=""
# group_fail stops the members and shows what they logged before failing.
group_fail() {
	local pid
	for pid in $m1 $m2; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	for f in "$WORKDIR"/group.m*.err; do
		[[ -e $f ]] && { echo "--- $f" && cat "$f"; } >&2
	done
	fail "$@"
}
# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
	local what=$1 deadline=$((SECONDS + $2))
	shift 2
	until "$@"; do
		((SECONDS < deadline)) || group_fail "timed out waiting for $what ($(lines) lines printed)"
		sleep 0.2
	done
}
assigned() { grep -q 'assigned: ' "$WORKDIR/group.$1.err" 2>/dev/null; }
lines() { cat "$WORKDIR"/group.m1.out "$WORKDIR"/group.m2.out 2>/dev/null | wc -l; }
have_all() { (($(lines) >= 200)); }

timeout 120 "${group_member[@]}" "$grp_topic" >"$WORKDIR/group.m1.out" 2>"$WORKDIR/group.m1.err" &
m1=$!
wait_for "member 1 to be assigned partitions" 30 assigned m1
timeout 120 "${group_member[@]}" "$grp_topic" >"$WORKDIR/group.m2.out" 2>"$WORKDIR/group.m2.err" &
m2=$!
wait_for "member 2 to be assigned partitions" 30 assigned m2
tail -n +101 "$grp_sent" | kc -P -t "$grp_topic" -K: || group_fail "$grp_topic: produce failed"
wait_for "200 lines from the two members" 60 have_all
# SIGTERM, not SIGINT: background jobs of a script ignore SIGINT. kcat
# leaves the group and commits on either.
kill -TERM "$m1" "$m2"
for pid in "$m1" "$m2"; do
	status=0
	wait "$pid" || status=$?
	((status == 0)) || group_fail "group member (pid $pid) exited with status $status after SIGTERM"
done
cat "$WORKDIR/group.m1.err" "$WORKDIR/group.m2.err" >&2
for m in m1 m2; do
	[[ -s "$WORKDIR/group.$m.out" ]] || group_fail "group member $m printed nothing though it held partitions"
done
cat "$WORKDIR/group.m1.out" "$WORKDIR/group.m2.out" | LC_ALL=C sort >"$WORKDIR/group.got"
LC_ALL=C sort -o "$grp_sent" "$grp_sent"
if ! diff -u "$grp_sent" "$WORKDIR/group.got"; then
	group_fail "$grp_topic: the two members together did not print each line exactly once"
fi
log "$grp_topic: two group members printed the 200 lines exactly once ($(wc -l <"$WORKDIR/group.m1.out") + $(wc -l <"$WORKDIR/group.m2.out"))"

# A third member with -e exits once it reaches the end of every partition
# it is assigned, starting from the committed offsets: it prints nothing.
timeout 60 "${group_member[@]}" -e "$grp_topic" >"$WORKDIR/group.m3.out" 2>"$WORKDIR/group.m3.err" ||
	group_fail "third group member failed: $(cat "$WORKDIR/group.m3.err")"
cat "$WORKDIR/group.m3.err" >&2
grep -q 'assigned: ' "$WORKDIR/group.m3.err" || group_fail "third group member was never assigned partitions"
if [[ -s "$WORKDIR/group.m3.out" ]]; then
	group_fail "third group member printed $(wc -l <"$WORKDIR/group.m3.out") lines: the first two did not commit their offsets"
fi
log "$grp_topic: a new member of kcat-grp found nothing left to read"

# meshka run in front of an upstream that advertises Produce from v0, as
# Apache Kafka 4.0 does: librdkafka compresses for it with every codec
# (the Go test checks the batches upstream stored), and the records
# round-trip.
echo "=== meshka run in front of the Kafka 4.0-like upstream ===" >>"$LOG"
"$MESHKA_BIN" run --upstream "$KAFKA4_UPSTREAM" --listen "$KAFKA4_ADDR" --cluster-bind 127.0.0.1:0 --admin 127.0.0.1:0 >>"$LOG" 2>&1 &
kafka4_pid=$!
for _ in $(seq 1 60); do
	kill -0 "$kafka4_pid" 2>/dev/null || fail "meshka run exited during startup"
	timeout 10 kcat -b "$KAFKA4_ADDR" -m 5 -L >/dev/null 2>&1 && break
	sleep 0.5
done
kc4() { timeout 60 kcat -b "$KAFKA4_ADDR" -m 10 "$@"; }
for codec in none gzip snappy lz4 zstd; do
	topic="kcat4-$codec"
	sent="$WORKDIR/kcat-$codec.sent" # sorted above
	kc4 -P -t "$topic" -z "$codec" -K: -d msg <"$sent" 2>"$WORKDIR/$topic.produce.log" ||
		fail "$topic: produce failed: $(grep -v '^%7|' "$WORKDIR/$topic.produce.log")"
	if grep -q 'not compressing batch' "$WORKDIR/$topic.produce.log"; then
		fail "$topic: librdkafka did not compress: $(grep -m1 -o 'Broker does not support.*' "$WORKDIR/$topic.produce.log")"
	fi
	kc4 -C -t "$topic" -e -o beginning -q -f '%k:%s\n' | LC_ALL=C sort >"$WORKDIR/$topic.got"
	diff -u "$sent" "$WORKDIR/$topic.got" || fail "$topic: consumed records differ from produced ones"
	log "$topic: 100 records round-tripped through meshka run"
done
kill -TERM "$kafka4_pid"
status=0
wait "$kafka4_pid" || status=$?
kafka4_pid=""
[[ $status -eq 0 ]] || fail "meshka run exited with status $status after SIGTERM, want 0"
log "PASS"
