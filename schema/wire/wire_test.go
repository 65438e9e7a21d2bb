package wire

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		id      uint32
		indexes []int
		want    []byte
	}{
		{"avro", 7, nil, []byte{0, 0, 0, 0, 7}},
		{"first message", 1, []int{0}, []byte{0, 0, 0, 0, 1, 0}},
		{"nested", 0x01020304, []int{1, 2}, []byte{0, 1, 2, 3, 4, 4, 2, 4}},
		{"second message", 9, []int{1}, []byte{0, 0, 0, 0, 9, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Append(nil, tc.id, tc.indexes)
			b = append(b, "payload"...)
			if !bytes.Equal(b[:len(tc.want)], tc.want) {
				t.Fatalf("Append = % x, want % x", b[:len(b)-7], tc.want)
			}
			id, idx, payload, err := Decode(b, tc.indexes != nil)
			if err != nil {
				t.Fatal(err)
			}
			if id != tc.id || !slices.Equal(idx, tc.indexes) || string(payload) != "payload" {
				t.Fatalf("Decode = %d %v %q", id, idx, payload)
			}
		})
	}
}

func TestEmptyPathIsFirstMessage(t *testing.T) {
	if b := (Header{ID: 3, Indexes: []int{}}).Append(nil); !bytes.Equal(b, []byte{0, 0, 0, 0, 3, 0}) {
		t.Fatalf("% x", b)
	}
	// A path written out in full as [0] decodes as the short form does.
	_, idx, _, err := Decode([]byte{0, 0, 0, 0, 3, 2, 0}, true)
	if err != nil || !slices.Equal(idx, []int{0}) {
		t.Fatalf("%v %v", idx, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       []byte
		protobuf bool
		want     error
	}{
		{"empty", nil, false, ErrShort},
		{"four bytes", []byte{0, 0, 0, 1}, false, ErrShort},
		{"magic", []byte{1, 0, 0, 0, 1}, false, ErrMagic},
		{"no index count", []byte{0, 0, 0, 0, 1}, true, ErrVarint},
		{"truncated varint", []byte{0, 0, 0, 0, 1, 0x80}, true, ErrVarint},
		{"overlong varint", append([]byte{0, 0, 0, 0, 1}, bytes.Repeat([]byte{0xff}, 11)...), true, ErrVarint},
		{"negative count", []byte{0, 0, 0, 0, 1, 1}, true, ErrIndexes},
		{"absurd count", []byte{0, 0, 0, 0, 1, 0x82, 0x01}, true, ErrIndexes},
		{"count past the end", []byte{0, 0, 0, 0, 1, 6, 2}, true, ErrShort},
		{"negative index", []byte{0, 0, 0, 0, 1, 2, 1}, true, ErrIndexes},
		{"index too large", []byte{0, 0, 0, 0, 1, 2, 0x80, 0x80, 0x80, 0x80, 0x10}, true, ErrIndexes},
		{"truncated index", []byte{0, 0, 0, 0, 1, 4, 2, 0x80}, true, ErrVarint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := Decode(tc.in, tc.protobuf)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 'x'}, false)
	f.Add([]byte{0, 0, 0, 0, 1, 0, 'x'}, true)
	f.Add([]byte{0, 0, 0, 0, 1, 4, 2, 4, 'x'}, true)
	f.Add([]byte{0, 0, 0, 0, 1, 0x80}, true)
	f.Fuzz(func(t *testing.T, b []byte, protobuf bool) {
		id, idx, payload, err := Decode(b, protobuf)
		if err != nil {
			return
		}
		if len(idx) > MaxIndexes {
			t.Fatalf("%d indexes", len(idx))
		}
		again := append(Append(nil, id, idx), payload...)
		id2, idx2, payload2, err := Decode(again, protobuf)
		if err != nil {
			t.Fatalf("re-encoded % x: %v", again, err)
		}
		if id2 != id || !slices.Equal(idx2, idx) || !bytes.Equal(payload2, payload) {
			t.Fatalf("round trip: %d %v % x → %d %v % x", id, idx, payload, id2, idx2, payload2)
		}
	})
}
