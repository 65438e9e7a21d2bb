package validate

import (
	"testing"

	"github.com/meshka/meshka/records"
)

// fuzzValidator checks every format, one topic each.
func fuzzValidator(t testing.TB) (*Validator, *fixture) {
	f := newFixture(t)
	return mustNew(t, f.src,
		Rule{Topic: "avro", Key: spec(String), Value: spec(Avro), ValidateProduce: true},
		Rule{Topic: "json", Key: spec(Int32), Value: &Spec{Format: JSON, Subject: "events-value", Version: Latest}, ValidateProduce: true},
		Rule{Topic: "proto", Key: spec(Int64), Value: &Spec{Format: Protobuf, Subject: "proto-value"}, ValidateProduce: true},
	), f
}

func FuzzValidCheck(f *testing.F) {
	v, fx := fuzzValidator(f)
	f.Add(uint8(0), []byte("k"), framed(fx.avroID, nil, avroUser("ann", 1)))
	f.Add(uint8(1), []byte{0, 0, 0, 1}, framed(fx.jsonID, nil, []byte(`{"name":"a","age":1}`)))
	f.Add(uint8(2), make([]byte, 8), framed(fx.pID, []int{0}, protoUser("a", 1)))
	f.Add(uint8(2), []byte{}, framed(fx.pID, []int{1, 2, 3}, []byte{0x0a, 0x05}))
	topics := []string{"avro", "json", "proto", "none"}
	f.Fuzz(func(t *testing.T, which uint8, key, value []byte) {
		topic := topics[int(which)%len(topics)]
		err := v.Check(topic, key, value)
		if err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
		if topic == "none" && err != nil {
			t.Fatalf("no rule, yet %v", err)
		}
	})
}

func FuzzValidCheckBatch(f *testing.F) {
	v, fx := fuzzValidator(f)
	good, err := records.EncodeBatch([]records.Record{
		{Key: []byte("k"), Value: framed(fx.avroID, nil, avroUser("ann", 1))},
		{Key: []byte("\xff"), Value: []byte("x")},
	}, records.CodecNone)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	if lz, err := records.EncodeBatch([]records.Record{{Value: []byte{0}}}, records.CodecLZ4); err == nil {
		f.Add(lz)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, batch []byte) {
		n := -1
		for _, e := range v.CheckBatch("avro", batch) {
			if e.Err == nil || e.Index < -1 || (e.Index >= 0 && e.Index <= n) {
				t.Fatalf("record errors out of order or empty: %+v", e)
			}
			n = e.Index
		}
	})
}
