#!/usr/bin/env bash
# The Confluent REST Proxy API's schema formats driven with curl, as
# docs/http.md shows them. BASE is meshka's HTTP listener (http://host:port)
# with the built-in schema registry on, CLUSTER upstream's cluster id; the
# topics users, people and items exist, and nothing is registered yet.
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
# id FIELD TEXT: the number FIELD holds in TEXT.
id() { grep -o "\"$1\":[0-9]*" <<<"$2" | head -n1 | cut -d: -f2; }

V3="$BASE/v3/clusters/$CLUSTER"
USER='{\"type\":\"record\",\"name\":\"User\",\"fields\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"age\",\"type\":\"int\"}]}'

# v3 AVRO: the schema as text, registered under users-value.
out=$(post "$V3/topics/users/records" application/json "{\"value\":{\"type\":\"AVRO\",\"schema\":\"$USER\",\"data\":{\"name\":\"ann\",\"age\":31}}}")
has "v3 AVRO text" "$out" '"error_code":200' '"type":"AVRO"' '"subject":"users-value"' '"schema_version":1'
status "v3 AVRO text" "$out" 200
USER_ID=$(id schema_id "$out")

out=$(post "$V3/topics/users/records" application/json "{\"value\":{\"type\":\"AVRO\",\"schema_id\":$USER_ID,\"data\":{\"name\":\"bob\",\"age\":40}}}")
has "v3 AVRO id" "$out" '"error_code":200' "\"schema_id\":$USER_ID"

out=$(post "$V3/topics/users/records" application/json '{"key":{"type":"STRING","data":"u3"},"value":{"type":"AVRO","data":{"name":"cid","age":7}}}')
has "v3 AVRO latest" "$out" '"error_code":200' '"key":{"type":"STRING","size":2}' "\"schema_id\":$USER_ID"

out=$(post "$V3/topics/users/records" application/json "{\"value\":{\"type\":\"AVRO\",\"schema_id\":$USER_ID,\"data\":{\"name\":\"dan\"}}}")
has "v3 AVRO refused" "$out" '"error_code":400' 'Error serializing message'
status "v3 AVRO refused" "$out" 400

# v3 JSONSCHEMA under a subject of its own, then its version 1.
out=$(post "$V3/topics/people/records" application/json \
	'{"value":{"type":"JSONSCHEMA","subject":"people","schema":"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}","data":{"name":"ann"}}}')
has "v3 JSONSCHEMA text" "$out" '"error_code":200' '"type":"JSONSCHEMA"' '"subject":"people"'
out=$(post "$V3/topics/people/records" application/json '{"value":{"type":"JSONSCHEMA","subject":"people","schema_version":1,"data":{"name":"bob"}}}')
has "v3 JSONSCHEMA version" "$out" '"error_code":200' '"schema_version":1'

# v3 PROTOBUF.
out=$(post "$V3/topics/items/records" application/json \
	'{"value":{"type":"PROTOBUF","schema":"syntax = \"proto3\"; message Item { string item_name = 1; int32 qty = 2; }","data":{"item_name":"bolt","qty":3}}}')
has "v3 PROTOBUF text" "$out" '"error_code":200' '"type":"PROTOBUF"' '"subject":"items-value"'

# v2 avro: a string key and the record value; then by the ids answered.
out=$(post "$BASE/topics/users" application/vnd.kafka.avro.v2+json \
	"{\"key_schema\":\"{\\\"type\\\":\\\"string\\\"}\",\"value_schema\":\"$USER\",\"records\":[{\"key\":\"u1\",\"value\":{\"name\":\"ann\",\"age\":31}}]}")
has "v2 avro text" "$out" "\"value_schema_id\":$USER_ID" '"error_code":null'
status "v2 avro text" "$out" 200
KEY_ID=$(id key_schema_id "$out")
out=$(post "$BASE/topics/users" application/vnd.kafka.avro.v2+json \
	"{\"key_schema_id\":$KEY_ID,\"value_schema_id\":$USER_ID,\"records\":[{\"key\":\"u2\",\"value\":{\"name\":\"bob\",\"age\":40}},{\"key\":\"u9\",\"value\":{\"name\":9}}]}")
has "v2 avro ids" "$out" "\"key_schema_id\":$KEY_ID" '"error_code":null' '"error_code":42203'
status "v2 avro ids" "$out" 200
out=$(post "$BASE/topics/users" application/vnd.kafka.avro.v2+json '{"records":[{"value":{"name":"x","age":1}}]}')
has "v2 avro no schema" "$out" '"error_code":42202'
status "v2 avro no schema" "$out" 422

out=$(post "$BASE/topics/people" application/vnd.kafka.jsonschema.v2+json \
	'{"value_schema":"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}","records":[{"value":{"name":"ann"}}]}')
has "v2 jsonschema" "$out" '"value_schema_id":' '"error_code":null'
status "v2 jsonschema" "$out" 200

out=$(post "$BASE/topics/items" application/vnd.kafka.protobuf.v2+json \
	'{"value_schema":"syntax = \"proto3\"; message Item { string item_name = 1; int32 qty = 2; }","records":[{"value":{"item_name":"bolt","qty":3}}]}')
has "v2 protobuf" "$out" '"value_schema_id":' '"error_code":null'
status "v2 protobuf" "$out" 200

# A v2 avro consumer reads them back as JSON.
out=$(post "$BASE/consumers/users_readers" application/vnd.kafka.v2+json '{"name":"reader","format":"avro","auto.offset.reset":"earliest"}')
status "v2 avro consumer" "$out" 200
A="$BASE/consumers/users_readers/instances/reader"
out=$(post "$A/subscription" application/vnd.kafka.v2+json '{"topics":["users"]}')
status "v2 avro subscribe" "$out" 204
all=""
for _ in $(seq 1 40); do
	all+=$(curl -sS -H 'Accept: application/vnd.kafka.avro.v2+json' "$A/records?timeout=500")
	grep -qF '"key":"u2"' <<<"$all" && grep -qF '"name":"cid"' <<<"$all" && break
done
has "v2 avro records" "$all" '"value":{"name":"ann","age":31}' '"key":"u2","value":{"name":"bob","age":40}' \
	"\"key_schema_id\":$KEY_ID,\"value_schema_id\":$USER_ID" '"value":{"name":"cid","age":7}'

echo "confluent_schemas_curl: all passed"
