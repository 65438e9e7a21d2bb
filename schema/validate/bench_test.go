package validate

import (
	"strings"
	"testing"

	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/registry"
)

// BenchmarkCheckBatch checks a batch of 100 Avro records of about 1 KiB
// each (a record of strings, a long and an array of 20 strings), key
// strings, uncompressed: the cost Produce validation adds per batch.
func BenchmarkCheckBatch(b *testing.B) {
	st := registry.New()
	id := register(b, st, "orders-value", schema.Avro, `{"type":"record","name":"Order","fields":[
		{"name":"id","type":"string"},{"name":"customer","type":"string"},{"name":"total","type":"long"},
		{"name":"lines","type":{"type":"array","items":"string"}}]}`)
	v := mustNew(b, NewStateSource(st, nil), Rule{Topic: "orders", Key: spec(String), Value: &Spec{Format: Avro, Subject: "orders-value"}, ValidateProduce: true})
	var payload []byte
	str := func(s string) { payload = appendLong(payload, int64(len(s))); payload = append(payload, s...) }
	str("order-000000000001")
	str("customer-" + strings.Repeat("x", 40))
	payload = appendLong(payload, 123456)
	payload = appendLong(payload, 20)
	for range 20 {
		str(strings.Repeat("line item ", 4) + "sku-0001")
	}
	payload = append(payload, 0) // the array's end
	value := framed(id, nil, payload)
	recs := make([]records.Record, 100)
	for i := range recs {
		recs[i] = records.Record{Key: []byte("order-000000000001"), Value: value}
	}
	batch, err := records.EncodeBatch(recs, records.CodecNone)
	if err != nil {
		b.Fatal(err)
	}
	if errs := v.CheckBatch("orders", batch); errs != nil {
		b.Fatal(errs)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if errs := v.CheckBatch("orders", batch); errs != nil {
			b.Fatal(errs)
		}
	}
	b.ReportMetric(float64(len(value)), "value-bytes")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(recs)), "ns/record")
}

func appendLong(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}
