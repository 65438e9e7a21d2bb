//go:build unix

package test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kcat (librdkafka) writing raw bytes to topics the rules check: a file
// holding a valid Avro, JSON or Protobuf value in the wire format is
// delivered; one holding bytes that are not is refused (INVALID_RECORD,
// which librdkafka reports as "Broker failed to validate record") and
// kcat fails; upstream holds the valid ones alone.
func TestKcatSchemaValidateProduce(t *testing.T) {
	kcatOr(t)
	s := startSchemaEnv(t)
	ctx := timeout(t, time.Minute)
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		topic        string
		valid, wrong []byte
	}{
		{"avro-users", s.avro("ann", 30), s.avro("ann", 30)[:6]},
		{"json-users", s.json(`{"name":"ann"}`), s.json(`{"age":3}`)},
		{"proto-users", s.proto("ann", 30), append(s.proto("ann", 30), 0xff)},
	}
	for _, c := range cases {
		// kcat -P with file arguments sends each file as one message.
		out, err := kcat(ctx, "", "-P", "-b", s.env.Addr(), "-t", c.topic, "-p", "0", file(c.topic+"-ok", c.valid))
		if err != nil {
			t.Fatalf("%s: kcat refused a valid value: %v\n%s", c.topic, err, out)
		}
		out, err = kcat(ctx, "", "-P", "-b", s.env.Addr(), "-t", c.topic, "-p", "0", file(c.topic+"-bad", c.wrong))
		if err == nil || !strings.Contains(out, "Broker failed to validate record") {
			t.Fatalf("%s: kcat wrote an invalid value: %v\n%s", c.topic, err, out)
		}
		cl := s.env.DirectClient(t, kgo.ConsumeTopics(c.topic), fromStart())
		recs := consumeN(t, ctx, cl, 1)
		if !bytes.Equal(recs[0].Value, c.valid) {
			t.Fatalf("%s: upstream holds %x, want %x", c.topic, recs[0].Value, c.valid)
		}
		if more := cl.PollRecords(timeout(t, time.Second), 10); more.NumRecords() > 0 {
			t.Fatalf("%s: upstream holds more than the valid value: %x", c.topic, more.Records()[0].Value)
		}
	}
}
