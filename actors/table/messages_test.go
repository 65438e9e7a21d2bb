package table

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/meshka/meshka/records"
)

// An entry crosses nodes as it is: an empty value stays a value, a
// header's null stays null and an empty header value stays empty, though
// protobuf tells neither from a missing field.
func TestItemRoundTrip(t *testing.T) {
	in := Entry{Key: []byte{}, Value: []byte{}, Partition: 2, Offset: 9, Timestamp: 1234,
		Headers: []records.Header{{Key: "null"}, {Key: "empty", Value: []byte{}}, {Key: "v", Value: []byte("x")}}}
	b, err := proto.Marshal(NewItem(in))
	if err != nil {
		t.Fatal(err)
	}
	var it Item
	if err := proto.Unmarshal(b, &it); err != nil {
		t.Fatal(err)
	}
	out := it.Entry()
	if out.Key == nil || out.Value == nil || len(out.Value) != 0 || out.Partition != 2 || out.Offset != 9 || out.Timestamp != 1234 {
		t.Fatalf("entry %+v", out)
	}
	if len(out.Headers) != 3 || out.Headers[0].Value != nil || out.Headers[1].Value == nil || len(out.Headers[1].Value) != 0 ||
		!bytes.Equal(out.Headers[2].Value, []byte("x")) {
		t.Fatalf("headers %+v", out.Headers)
	}
}

func TestIdentity(t *testing.T) {
	up, topic, err := ParseIdentity(Identity("default", "orders.v2"))
	if err != nil || up != "default" || topic != "orders.v2" {
		t.Fatalf("%q %q %v", up, topic, err)
	}
	for _, bad := range []string{"", "default", "/t", "default/", "a/b/c"} {
		if _, _, err := ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%q) took it", bad)
		}
	}
}

// FuzzRequests answers requests decoded from any bytes another node might
// send, from a loaded table: every one gets a response of its kind, none
// panics.
func FuzzRequests(f *testing.F) {
	for _, m := range []proto.Message{
		&GetRequest{Key: []byte("a")},
		&ScanRequest{Prefix: []byte("a"), After: []byte("a"), HasAfter: true, Limit: 2},
		&ScanRequest{Limit: -5},
		&WaitRequest{Partition: 7, Offset: -1},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := New([]int64{0, 0}, []int64{2, 0}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.Apply(0, []records.Record{{Offset: 0, Key: []byte("a"), Value: []byte("1")}, {Offset: 1, Key: []byte("ab"), Value: []byte("2")}}, 2); err != nil {
			t.Fatal(err)
		}
		a := &Actor{topic: "t", table: tb}
		for _, m := range []proto.Message{&GetRequest{}, &ScanRequest{}, &WaitRequest{}} {
			if proto.Unmarshal(b, m) != nil {
				continue
			}
			resp := a.answer(m)
			if _, wait := m.(*WaitRequest); resp == nil && !wait {
				t.Fatalf("%T %v: no answer from a loaded table", m, m)
			}
			if resp != nil {
				if _, err := proto.Marshal(resp); err != nil {
					t.Fatalf("%T: %v", resp, err)
				}
			}
		}
	})
}
