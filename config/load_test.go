package config

import (
	"fmt"
	"strings"
	"testing"
)

// wantErr describes one expected error; msg is a substring of Error.Msg.
type wantErr struct {
	line, col int
	path, msg string
}

func (w wantErr) String() string {
	return fmt.Sprintf("%d:%d: %s: ...%s...", w.line, w.col, w.path, w.msg)
}

func checkErrors(t *testing.T, got Errors, want []wantErr) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		g, w := got[i], want[i]
		ok = g.Line == w.line && g.Column == w.col && g.Path == w.path && strings.Contains(g.Msg, w.msg)
	}
	if !ok {
		t.Errorf("got errors:\n%v\nwant:\n%v", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []wantErr
	}{
		{
			name:    "unknown top-level key",
			content: "node:\n  id: 1\nkafak:\n  max_frame_bytes: 1MiB\n",
			want:    []wantErr{{3, 1, "kafak", `unknown key "kafak" (did you mean "kafka"?)`}},
		},
		{
			name:    "unknown nested key",
			content: "kafka:\n  max_frame_byte: 1MiB\n",
			want:    []wantErr{{2, 3, "kafka.max_frame_byte", `unknown key "max_frame_byte" (did you mean "max_frame_bytes"?)`}},
		},
		{
			name:    "unknown key in flow mapping",
			content: "log: {level: info, formt: json}\n",
			want:    []wantErr{{1, 20, "log.formt", `(did you mean "format"?)`}},
		},
		{
			name:    "unknown key without a close match lists the known ones",
			content: "cache:\n  colour: blue\n",
			want:    []wantErr{{2, 3, "cache.colour", "known keys: partition_max_bytes, node_max_bytes, idle_timeout, bootstrap"}},
		},
		{
			name:    "a route on the schema registry's paths",
			content: "http:\n  schema_registry:\n    enabled: true\n  routes:\n    - method: GET\n      path: /subjects/{s}\n      topic: t\n      capability: fetch\n",
			want:    []wantErr{{6, 13, "http.routes[0].path", "is the schema registry's"}},
		},
		{
			name:    "a produce route converting values without a schema",
			content: "http:\n  schema_registry: {enabled: true}\n  routes:\n    - method: POST\n      path: /p\n      topic: t\n      capability: produce\n      value_format: avro\n",
			want:    []wantErr{{8, 21, "http.routes[0].value_format", `must be json (or absent: values as they are), got "avro"`}},
		},
		{
			name:    "a route's value schema version",
			content: "http:\n  schema_registry: {enabled: true}\n  routes:\n    - method: POST\n      path: /p\n      topic: t\n      capability: produce\n      value_format: json\n      value_schema: {subject: s, version: first}\n",
			want:    []wantErr{{9, 43, "http.routes[0].value_schema.version", "must be latest or a version number"}},
		},
		{
			name:    "a fetch route with a value schema",
			content: "http:\n  schema_registry: {enabled: true}\n  routes:\n    - method: GET\n      path: /f\n      topic: t\n      capability: fetch\n      value_format: json\n      value_schema: {subject: s}\n",
			want:    []wantErr{{9, 21, "http.routes[0].value_schema", "drop value_schema"}},
		},
		{
			name:    "duplicate key",
			content: "log:\n  level: info\n  level: debug\n",
			want:    []wantErr{{3, 3, "log.level", `duplicate key "level" (first set at line 2)`}},
		},
		{
			name:    "string for int",
			content: "node:\n  id: seven\n",
			want:    []wantErr{{2, 7, "node.id", `expected an integer, got "seven"`}},
		},
		{
			name:    "float for int",
			content: "dev:\n  brokers: 1.5\n",
			want:    []wantErr{{2, 12, "dev.brokers", "expected an integer, got 1.5"}},
		},
		{
			// The key's range, not int32's, is what the operator must meet.
			name:    "int overflowing int32",
			content: "dev:\n  partitions: 3000000000\n",
			want:    []wantErr{{2, 15, "dev.partitions", "must be between 1 and 1000, got 3000000000"}},
		},
		{
			name:    "node.id below its range",
			content: "node:\n  id: -1\n",
			want:    []wantErr{{2, 7, "node.id", "must be between 0 and 2147483647, got -1"}},
		},
		{
			name:    "node.id above int32",
			content: "node:\n  id: 2147483648\n",
			want:    []wantErr{{2, 7, "node.id", "must be between 0 and 2147483647, got 2147483648"}},
		},
		{
			name:    "node.id below int32",
			content: "node:\n  id: -3000000000\n",
			want:    []wantErr{{2, 7, "node.id", "must be between 0 and 2147483647, got -3000000000"}},
		},
		{
			name:    "node.id beyond int64",
			content: "node:\n  id: 99999999999999999999\n",
			want:    []wantErr{{2, 7, "node.id", "must be between 0 and 2147483647, got 99999999999999999999"}},
		},
		{
			name:    "list for string",
			content: "node:\n  listen:\n    - a:1\n",
			want:    []wantErr{{3, 5, "node.listen", "expected a string, got a list"}},
		},
		{
			name:    "mapping for list",
			content: "upstream:\n  brokers: {a: 1}\n",
			want:    []wantErr{{2, 12, "upstream.brokers", "expected a list, got a mapping"}},
		},
		{
			name:    "scalar for section",
			content: "kafka: fast\n",
			want:    []wantErr{{1, 8, "kafka", `expected a mapping, got "fast"`}},
		},
		{
			name:    "top level not a mapping",
			content: "- node\n",
			want:    []wantErr{{1, 1, "", "expected a mapping, got a list"}},
		},
		{
			name:    "bare integer duration",
			content: "upstream:\n  request_timeout: 10\n",
			want:    []wantErr{{2, 20, "upstream.request_timeout", `has no unit: write e.g. "10s"`}},
		},
		{
			name:    "bad size unit",
			content: "kafka:\n  max_frame_bytes: 10 MiBs\n",
			want:    []wantErr{{2, 20, "kafka.max_frame_bytes", `unknown unit "MiBs"`}},
		},
		{
			name:    "validation error carries the value position",
			content: "# comment\nkafka:\n  max_inflight_per_conn:   0\n",
			want:    []wantErr{{3, 28, "kafka.max_inflight_per_conn", "must be between 1 and 1024, got 0"}},
		},
		{
			name:    "listen on all interfaces without advertise",
			content: "node:\n  id: 1\n  listen: \"0.0.0.0:9092\"\n",
			want:    []wantErr{{3, 11, "node.listen", "listens on all interfaces (0.0.0.0); set node.advertise"}},
		},
		{
			name:    "listen on all interfaces, advertise left empty",
			content: "node:\n  listen: \"[::]:9092\"\n  advertise: \"\"\n",
			want:    []wantErr{{2, 11, "node.listen", "listens on all interfaces (::)"}},
		},
		{
			name:    "listen with an empty host",
			content: "node: {listen: \":9092\"}\n",
			want:    []wantErr{{1, 16, "node.listen", "listens on all interfaces (empty host)"}},
		},
		{
			name:    "validation error on a list element",
			content: "cache:\n  bootstrap: [ok, \"not ok\"]\n",
			want:    []wantErr{{2, 19, "cache.bootstrap[1]", `invalid topic name "not ok"`}},
		},
		{
			name:    "validation error for a default has no position",
			content: "cache:\n  partition_max_bytes: 2GiB\n",
			want:    []wantErr{{0, 0, "cache.node_max_bytes", "must be at least cache.partition_max_bytes (2GiB), got 1GiB"}},
		},
		{
			name:    "syntax error",
			content: "node:\n  id: 1\nlog: [info\n",
			want:    []wantErr{{3, 0, "", "invalid YAML: did not find expected ',' or ']'"}},
		},
		{
			name:    "tab indentation",
			content: "node:\n\tid: 1\n",
			want:    []wantErr{{2, 0, "", "invalid YAML: found character that cannot start any token"}},
		},
		{
			name:    "second document",
			content: "node:\n  id: 1\n---\nlog:\n  level: info\n",
			want:    []wantErr{{3, 1, "", "single YAML document"}},
		},
		{
			name:    "merge keys",
			content: "log:\n  <<: {level: info}\n",
			want:    []wantErr{{2, 3, "log", "merge keys (<<) are not supported"}},
		},
		{
			name:    "aliases are followed",
			content: "cluster:\n  name: &n edge\nupstream:\n  client_id: *n\n  brokers: [*n]\n",
			want:    []wantErr{{5, 13, "upstream.brokers[0]", `must be host:port, e.g. "127.0.0.1:9092", got "edge"`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, tc.content)
			checkErrors(t, errs, tc.want)
		})
	}
}

func TestLoadReportsEveryErrorSorted(t *testing.T) {
	content := `log:
  level: loud
  format: json
kafka:
  max_inflight_per_conn: lots
  max_frame_byts: 1MiB
node:
  id: -4
  listen: "${MESHKA_TEST_UNSET_LISTEN}"
  advertise: nohost
colour: blue
cache:
  partition_max_bytes: 2GiB
`
	_, errs := load(t, content)
	checkErrors(t, errs, []wantErr{
		{2, 10, "log.level", `must be one of debug, info, warn, error; got "loud"`},
		{5, 26, "kafka.max_inflight_per_conn", `expected an integer, got "lots"`},
		{6, 3, "kafka.max_frame_byts", `did you mean "max_frame_bytes"?`},
		{8, 7, "node.id", "must be between 0 and 2147483647, got -4"},
		{9, 12, "node.listen", "environment variable MESHKA_TEST_UNSET_LISTEN is not set"},
		{10, 14, "node.advertise", `must be host:port`},
		{11, 1, "colour", `unknown key "colour"`},
		{0, 0, "cache.node_max_bytes", "must be at least cache.partition_max_bytes"},
	})
}

func TestEnvSubstitution(t *testing.T) {
	t.Setenv("MESHKA_T_BROKER", "kafka-1:9092")
	t.Setenv("MESHKA_T_EMPTY", "")
	t.Setenv("MESHKA_T_LEVEL", "debug")
	t.Setenv("MESHKA_T_NEWLINE", "a\nb")
	tests := []struct {
		name    string
		content string
		check   func(Config) string
		want    []wantErr
	}{
		{
			name:    "set",
			content: "upstream:\n  brokers: [\"${MESHKA_T_BROKER}\"]\n",
			check:   func(c Config) string { return strings.Join(c.Upstream.Brokers, ",") + "|kafka-1:9092" },
		},
		{
			name:    "unquoted in a flow list",
			content: "upstream:\n  brokers: [${MESHKA_T_BROKER}, ${MESHKA_T_UNSET:-kafka-2:9092}]\n",
			check:   func(c Config) string { return strings.Join(c.Upstream.Brokers, ",") + "|kafka-1:9092,kafka-2:9092" },
		},
		{
			name:    "unset with default",
			content: "log:\n  level: ${MESHKA_T_UNSET:-warn}\n",
			check:   func(c Config) string { return c.Log.Level + "|warn" },
		},
		{
			name:    "empty with default",
			content: "log:\n  level: ${MESHKA_T_EMPTY:-error}\n",
			check:   func(c Config) string { return c.Log.Level + "|error" },
		},
		{
			name:    "set overrides default",
			content: "log:\n  level: ${MESHKA_T_LEVEL:-warn}\n",
			check:   func(c Config) string { return c.Log.Level + "|debug" },
		},
		{
			name:    "empty default",
			content: "node:\n  advertise: ${MESHKA_T_UNSET:-}\n",
			check:   func(c Config) string { return c.Node.Advertise + "|" },
		},
		{
			name:    "dollar dollar",
			content: "upstream:\n  client_id: pay$$${MESHKA_T_LEVEL}$$\n",
			check:   func(c Config) string { return c.Upstream.ClientID + "|pay$debug$" },
		},
		{
			name:    "lone dollar is literal",
			content: "upstream:\n  client_id: a$b $\n",
			check:   func(c Config) string { return c.Upstream.ClientID + "|a$b $" },
		},
		{
			name:    "comments are not expanded",
			content: "# set ${MESHKA_T_UNSET} first\nlog:\n  level: info # or ${MESHKA_T_UNSET}\n  format: \"te#xt\" # ${MESHKA_T_UNSET}\n",
			want: []wantErr{
				{4, 11, "log.format", `got "te#xt"`},
			},
		},
		{
			name:    "apostrophe does not hide a comment",
			content: "upstream:\n  client_id: it's mine # ${MESHKA_T_UNSET}\n",
			check:   func(c Config) string { return c.Upstream.ClientID + "|it's mine" },
		},
		{
			name:    "unset without default",
			content: "log:\n  level: debug\n  format: ${MESHKA_T_UNSET}\n",
			want:    []wantErr{{3, 11, "log.format", "environment variable MESHKA_T_UNSET is not set"}},
		},
		{
			name:    "unset inside a quoted string",
			content: "node:\n  advertise: \"${MESHKA_T_LEVEL}.example.com:${MESHKA_T_UNSET}\"\n",
			want:    []wantErr{{2, 45, "node.advertise", "environment variable MESHKA_T_UNSET is not set"}},
		},
		{
			name:    "columns after a substitution refer to the file",
			content: "node: {advertise: \"${MESHKA_T_LEVEL}\", idd: 1}\n",
			want: []wantErr{
				{1, 19, "node.advertise", `must be host:port`},
				{1, 40, "node.idd", `unknown key "idd"`},
			},
		},
		{
			name:    "unterminated",
			content: "log:\n  level: ${MESHKA_T_LEVEL\n",
			// The value that results is not repeated as a validation error.
			want: []wantErr{{2, 10, "log.level", `unterminated "${"`}},
		},
		{
			name:    "invalid name",
			content: "log:\n  level: ${1BAD}\n",
			want:    []wantErr{{2, 10, "log.level", `invalid environment variable reference "${1BAD}"`}},
		},
		{
			name:    "value with a newline",
			content: "log:\n  level: ${MESHKA_T_NEWLINE}\n",
			want:    []wantErr{{2, 10, "log.level", "environment variable MESHKA_T_NEWLINE contains a newline"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, errs := load(t, tc.content)
			checkErrors(t, errs, tc.want)
			if tc.check != nil && errs == nil {
				got, want, _ := strings.Cut(tc.check(cfg), "|")
				if got != want {
					t.Errorf("got %q, want %q", got, want)
				}
			}
		})
	}
}
