package validate_test

import (
	"net"
	"testing"
	"time"

	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/schema/remote"
	"github.com/meshka/meshka/schema/validate"
	"github.com/meshka/meshka/schema/wire"
)

// A source that cannot answer (a registry nothing listens for) makes a
// record unchecked, not invalid: Check returns the UnavailableError
// itself, and CheckBatch stops at it, unless records before it were
// already refused, which refuse the batch anyway.
func TestUnavailableSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	src, err := remote.New(remote.Config{URLs: []string{dead}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	v, err := validate.New([]validate.Rule{{Topic: "t", ValidateProduce: true, Value: &validate.Spec{Format: validate.Avro, Subject: "t-value"}}}, src)
	if err != nil {
		t.Fatal(err)
	}
	withID := wire.Append(nil, 7, nil)
	err = v.Check("t", nil, withID)
	if _, ok := err.(*validate.UnavailableError); !ok || !validate.Unavailable(err) {
		t.Fatalf("Check: %T %v, want an *UnavailableError", err, err)
	}
	batch := func(values ...[]byte) []byte {
		recs := make([]records.Record, len(values))
		for i, b := range values {
			recs[i] = records.Record{Value: b}
		}
		b, err := records.EncodeBatch(recs, records.CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	errs := v.CheckBatch("t", batch(nil, withID, []byte("not avro")))
	if len(errs) != 1 || errs[0].Index != 1 || !validate.Unavailable(errs[0].Err) {
		t.Fatalf("CheckBatch, unavailable at record 1: %+v", errs)
	}
	errs = v.CheckBatch("t", batch([]byte("not avro"), withID, []byte("no")))
	if len(errs) != 1 || errs[0].Index != 0 || validate.Unavailable(errs[0].Err) {
		t.Fatalf("CheckBatch, record 0 invalid, then unavailable: %+v", errs)
	}
}
