#!/usr/bin/env bash
# The Confluent REST Proxy API driven with curl, as docs/http.md shows it.
# BASE is meshka's HTTP listener (http://host:port), CLUSTER upstream's
# cluster id; the topic events exists with 3 partitions.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
# has NAME TEXT WANT...: every WANT is in TEXT.
has() {
	local name=$1 text=$2
	shift 2
	for want in "$@"; do
		grep -qF -- "$want" <<<"$text" || fail "$name: no $want in: $text"
	done
}
# status NAME TEXT CODE: the answer's status (its last line) is CODE.
status() { [ "$(tail -n1 <<<"$2")" = "$3" ] || fail "$1: want status $3: $2"; }
# post URL CONTENT-TYPE BODY: the answer's body, then its status on a line of its own.
post() { curl -sS -X POST -H "Content-Type: $2" -d "$3" -w '\n%{http_code}' "$1"; }

V3="$BASE/v3/clusters/$CLUSTER"

out=$(curl -sS "$BASE/v3/clusters")
has "list clusters" "$out" '"kind":"KafkaClusterList"' "\"cluster_id\":\"$CLUSTER\"" "\"related\":\"$V3/topics\""

out=$(curl -sS "$V3/topics/events/partitions")
has "partitions" "$out" '"kind":"KafkaPartitionList"' '"partition_id":2'

out=$(post "$V3/topics/events/records" application/json '{"value":{"type":"JSON","data":{"name":"testUser"}}}')
has "v3 JSON value" "$out" '"error_code":200' '"topic_name":"events"' '"value":{"type":"JSON","size":19}'
status "v3 JSON value" "$out" 200

out=$(post "$V3/topics/events/records" application/json \
	'{"partition_id":1,"headers":[{"name":"Header-1","value":"SGVhZGVyLTE="}],"key":{"type":"BINARY","data":"Zm9vYmFy"},"value":{"type":"STRING","data":"My message"},"timestamp":"2021-02-05T19:14:42Z"}')
has "v3 binary key, headers" "$out" '"partition_id":1' '"timestamp":"2021-02-05T19:14:42Z"' \
	'"key":{"type":"BINARY","size":6}' '"value":{"type":"STRING","size":10}'
status "v3 binary key, headers" "$out" 200

# Streaming: a chunked body, one delivery report per record, in order.
out=$(printf '%s\n' '{"partition_id":0,"value":{"type":"STRING","data":"one"}}' \
	'{"partition_id":0,"value":{"type":"STRING","data":"two"}}' \
	'{"partition_id":0,"value":{"type":"STRING","data":"three"}}' |
	curl -sS -X POST -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @- "$V3/topics/events/records")
[ "$(grep -c '"error_code":200' <<<"$out")" = 3 ] || fail "stream: want 3 reports, got: $out"
offsets=$(grep -o '"offset":[0-9]*' <<<"$out" | cut -d: -f2 | tr '\n' ' ')
read -r a b c <<<"$offsets"
[ "$b" = $((a + 1)) ] && [ "$c" = $((a + 2)) ] || fail "stream: offsets $offsets not in order"

out=$(post "$BASE/topics/events" application/vnd.kafka.json.v2+json '{"records":[{"key":"alice","value":{"count":1}}]}')
has "v2 json" "$out" '"key_schema_id":null' '"offsets":[{"partition":' '"error_code":null'
status "v2 json" "$out" 200

out=$(post "$BASE/topics/events" application/vnd.kafka.binary.v2+json '{"records":[{"key":"a2V5","value":"aGVsbG8="}]}')
has "v2 binary" "$out" '"error":null'
status "v2 binary" "$out" 200

out=$(curl -sS "$BASE/topics")
has "v2 topics" "$out" '"events"'

out=$(curl -sS -w '\n%{http_code}' "$BASE/v3/clusters/nope")
has "wrong cluster" "$out" '"error_code":404' 'Cluster nope cannot be found.'
status "wrong cluster" "$out" 404

out=$(post "$V3/topics/events/records" application/json '{"value":{"type":"JSON","data":}}')
has "malformed JSON" "$out" '"error_code":400' 'invalid character'
status "malformed JSON" "$out" 400

out=$(post "$V3/topics/nowhere/records" application/json '{"value":{"type":"STRING","data":"x"}}')
has "unknown topic" "$out" '"error_code":40403'
status "unknown topic" "$out" 404

out=$(post "$BASE/topics/events" application/vnd.kafka.avro.v2+json '{"records":[{"value":"x"}]}')
has "v2 avro" "$out" '"error_code":415' 'schema registry'
status "v2 avro" "$out" 415

# v2 consumer instances, as the REST Proxy's quick start drives them.
out=$(post "$BASE/consumers/my_json_consumer" application/vnd.kafka.v2+json \
	'{"name": "my_consumer_instance", "format": "json", "auto.offset.reset": "earliest"}')
has "v2 create consumer" "$out" '"instance_id":"my_consumer_instance"' \
	"\"base_uri\":\"$BASE/consumers/my_json_consumer/instances/my_consumer_instance\""
status "v2 create consumer" "$out" 200
INSTANCE="$BASE/consumers/my_json_consumer/instances/my_consumer_instance"

out=$(post "$INSTANCE/subscription" application/vnd.kafka.v2+json '{"topics":["events"]}')
status "v2 subscribe" "$out" 204

# The group's first rebalance may take a moment: read until the JSON
# record produced above comes.
for _ in $(seq 1 40); do
	out=$(curl -sS -H 'Accept: application/vnd.kafka.json.v2+json' "$INSTANCE/records?timeout=500")
	grep -qF '"value":{"count":1}' <<<"$out" && break
done
has "v2 records" "$out" '"topic":"events"' '"key":"alice"' '"value":{"count":1}' '"partition":' '"offset":'

out=$(post "$INSTANCE/offsets" application/vnd.kafka.v2+json '')
status "v2 commit" "$out" 200

out=$(curl -sS -X DELETE -H 'Content-Type: application/vnd.kafka.v2+json' -w '\n%{http_code}' "$INSTANCE")
status "v2 delete consumer" "$out" 204

out=$(curl -sS -w '\n%{http_code}' -H 'Accept: application/vnd.kafka.json.v2+json' "$INSTANCE/records")
has "v2 deleted consumer" "$out" '"error_code":40403'
status "v2 deleted consumer" "$out" 404

echo "confluent_curl: all passed"
