package admin

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// A peer's answer, whatever its bytes, decodes to a status or an error,
// and a status decoded encodes and decodes again to the same.
func FuzzNodeStatus(f *testing.F) {
	good, _ := json.Marshal(NodeStatus{ID: 2, Kafka: "10.0.0.2:9092", Ready: true, Started: time.Unix(1, 0).UTC(),
		Partitions: []Partition{{Topic: "orders", Partition: 3}}, Groups: []string{"g"}, Actors: map[string]int{"partition": 1}})
	f.Add(good)
	f.Add([]byte(`{"id": "x"}`))
	f.Add([]byte(`{"partitions": [{"topic": 1}]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, err := decodeNodeStatus(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := json.Marshal(ns)
		if err != nil {
			t.Fatalf("a decoded status does not encode: %v", err)
		}
		if _, err := decodeNodeStatus(bytes.NewReader(again)); err != nil {
			t.Fatalf("an encoded status does not decode: %v\n%s", err, again)
		}
	})
}
