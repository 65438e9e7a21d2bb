#!/usr/bin/env bash
# Drives `meshka dev` with kcat (librdkafka), the way an operator would:
# produce and consume with every codec, a 1 MiB value, metadata, a clean
# SIGTERM shutdown, and a restart that must keep what was written.
#
# Environment: MESHKA_BIN (the meshka binary), MESHKA_ADDR (host:port to
# listen on), WORKDIR (an empty scratch directory).
set -euo pipefail

: "${MESHKA_BIN:?MESHKA_BIN must name the meshka binary}"
: "${MESHKA_ADDR:?MESHKA_ADDR must be host:port}"
: "${WORKDIR:?WORKDIR must name a scratch directory}"

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
	"$MESHKA_BIN" dev --listen "$MESHKA_ADDR" --data-dir "$DATA" >>"$LOG" 2>&1 &
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
	# librdkafka before 2.10 reads a Produce minimum of v3 (Kafka 4.0,
	# kfake) as "no compression support" and silently sends plain
	# batches; its debug log says so, and the run notes it rather than
	# failing, since the upstream alone decides that minimum.
	kc -P -t "$topic" -z "$codec" -K: -d msg <"$sent" 2>"$WORKDIR/$topic.produce.log" ||
		fail "$topic: produce failed: $(grep -v '^%7|' "$WORKDIR/$topic.produce.log")"
	if grep -q 'not compressing batch' "$WORKDIR/$topic.produce.log"; then
		log "$topic: NOTE: this librdkafka declined to compress ($(grep -m1 -o 'Broker does not support.*' "$WORKDIR/$topic.produce.log"))"
	fi
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
log "PASS"
