package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshka/meshka/mesh"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line       string
		verb       verb
		topic      string
		key, value string
		err        string
	}{
		{line: "", verb: none},
		{line: "   \t", verb: none},
		{line: "PUB t k v", verb: pub, topic: "t", key: "k", value: "v"},
		{line: "pub t k hello  world ", verb: pub, topic: "t", key: "k", value: "hello  world "},
		{line: "PUB  t\tk  two spaces", verb: pub, topic: "t", key: "k", value: " two spaces"},
		{line: "PUB t k", verb: pub, topic: "t", key: "k", value: ""},
		{line: "PUB t k ", verb: pub, topic: "t", key: "k", value: ""},
		{line: `PUB t "a b" "x\ny"`, verb: pub, topic: "t", key: "a b", value: "x\ny"},
		{line: `PUB t "" ""`, verb: pub, topic: "t", key: "", value: ""},
		{line: `PUB t k {"json": 1}`, verb: pub, topic: "t", key: "k", value: `{"json": 1}`},
		{line: `PUB t k a "quote" inside`, verb: pub, topic: "t", key: "k", value: `a "quote" inside`},
		{line: "SUB t", verb: sub, topic: "t"},
		{line: "sub t a/+/c", verb: sub, topic: "t"},
		{line: "Sub t # ", verb: sub, topic: "t"},
		{line: "PUB", err: "usage: PUB topic key value"},
		{line: "PUB t", err: "usage: PUB topic key value"},
		{line: "PUB t   ", err: "usage: PUB topic key value"},
		{line: "PUB a/b k v", err: `invalid topic name "a/b"`},
		{line: "PUB .. k v", err: `topic name ".." is not allowed`},
		{line: "PUB " + strings.Repeat("t", 250) + " k v", err: "at most 249 characters, got 250"},
		{line: `PUB t "a b`, err: "key: an unterminated or invalid quoted string"},
		{line: `PUB t "a"b v`, err: "a quoted key must be followed by a space"},
		{line: `PUB t k "x" y`, err: `value: a value starting with '"' must be one quoted string`},
		{line: "SUB", err: "usage: SUB topic [key-pattern]"},
		{line: "SUB t a b", err: "usage: SUB topic [key-pattern]"},
		{line: "SUB t a/#/b", err: "'#' must be its last level"},
		{line: "SUB t k+", err: "a wildcard must be a whole level"},
		{line: "FOO t", err: `unknown command "FOO"`},
		{line: "\x00\x01 x", err: `unknown command "\x00\x01"`},
		{line: strings.Repeat("X", 100), err: `unknown command "` + strings.Repeat("X", 32) + `..."`},
	}
	for _, tc := range tests {
		c, err := parseLine([]byte(tc.line))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if c.verb != tc.verb || c.topic != tc.topic || string(c.key) != tc.key || string(c.value) != tc.value {
			t.Errorf("%q: got %v %q %q %q, want %v %q %q %q", tc.line, c.verb, c.topic, c.key, c.value, tc.verb, tc.topic, tc.key, tc.value)
		}
		if c.verb == pub && (c.key == nil || c.value == nil) {
			t.Errorf("%q: a nil key or value would be Kafka's null", tc.line)
		}
	}
}

// A SUB's pattern becomes the key filter.
func TestParseSubFilter(t *testing.T) {
	c, err := parseLine([]byte("SUB t sensors/+/temp"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mesh.KeyPattern("sensors/+/temp")
	for _, key := range []string{"sensors/1/temp", "sensors/1/hum", "sensors/temp"} {
		if got := c.filter.Match([]byte(key)); got != want.Match([]byte(key)) || got != (key == "sensors/1/temp") {
			t.Errorf("%q: the SUB's filter says %v", key, got)
		}
	}
}

// The parser must not keep the reader's buffer, which the next line
// overwrites.
func TestParseLineDoesNotAlias(t *testing.T) {
	line := []byte("PUB t key value")
	c, err := parseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	copy(line, bytes.Repeat([]byte("z"), len(line)))
	if string(c.key) != "key" || string(c.value) != "value" {
		t.Fatalf("after the buffer changed: key %q value %q", c.key, c.value)
	}
}

func TestAppendMsg(t *testing.T) {
	tests := []struct {
		key, value []byte
		want       string
	}{
		{[]byte("k"), []byte("hello world"), "MSG t 2 7 k hello world\n"},
		{[]byte("a b"), []byte("x\ny"), `MSG t 2 7 "a b" "x\ny"` + "\n"},
		{nil, nil, `MSG t 2 7 "" ""` + "\n"},
		{[]byte{}, []byte(" lead"), `MSG t 2 7 "" ` + " lead\n"},
		{[]byte(`"q`), []byte(`"v"`), `MSG t 2 7 "\"q" "\"v\""` + "\n"},
		{[]byte("ключ"), []byte{0xff, 'a'}, `MSG t 2 7 ключ "\xffa"` + "\n"},
		{[]byte("tab\tkey"), []byte("del\x7f"), `MSG t 2 7 "tab\tkey" "del\x7f"` + "\n"},
	}
	for _, tc := range tests {
		got := string(appendMsg(nil, mesh.Record{Topic: "t", Partition: 2, Offset: 7, Key: tc.key, Value: tc.value}))
		if got != tc.want {
			t.Errorf("key %q value %q: %q, want %q", tc.key, tc.value, got, tc.want)
		}
	}
}

// FuzzParseLine: no line crashes the parser, and a PUB's key and value
// written as a MSG line writes them parse back the same, so what a
// subscriber reads can be published again unchanged.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"PUB t k v", `PUB t "a b" "x\ny"`, "SUB t a/+/#", "sub t", "PUB t k  v ", `PUB t "\xff" "\u00e9"`, "FOO", "", `PUB t "" "`, "PUB t k\t\"x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := parseLine(line)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("%q: the error %q would break the ERR line", line, msg)
			}
			return
		}
		if c.verb != pub {
			return
		}
		msg := appendMsg(nil, mesh.Record{Topic: c.topic, Key: c.key, Value: c.value})
		if bytes.Count(msg, []byte("\n")) != 1 || msg[len(msg)-1] != '\n' {
			t.Fatalf("%q: MSG line %q is not one line", line, msg)
		}
		// "MSG t 0 0 key value\n" as "PUB t key value".
		fields := bytes.SplitN(msg, []byte(" "), 5)
		again, err := parseLine(append([]byte("PUB "+c.topic+" "), bytes.TrimSuffix(fields[4], []byte("\n"))...))
		if err != nil {
			t.Fatalf("%q: MSG line %q does not parse back: %v", line, msg, err)
		}
		if again.topic != c.topic || !bytes.Equal(again.key, c.key) || !bytes.Equal(again.value, c.value) {
			t.Fatalf("%q: parsed key %q value %q, after the MSG line %q key %q value %q", line, c.key, c.value, msg, again.key, again.value)
		}
	})
}
