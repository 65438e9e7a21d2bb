package kafkawire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func prefixOf(b ...byte) (p [4]byte) {
	copy(p[:], b)
	return p
}

func sizePrefix(n uint32) (p [4]byte) {
	binary.BigEndian.PutUint32(p[:], n)
	return p
}

func TestCheckSize(t *testing.T) {
	const max = 1 << 20
	cases := []struct {
		name   string
		prefix [4]byte
		size   int32
		errHas string // empty: accepted
	}{
		{"header minimum", sizePrefix(minRequestSize), minRequestSize, ""},
		{"typical", sizePrefix(300), 300, ""},
		{"exactly the limit", sizePrefix(max), max, ""},
		{"one over the limit", sizePrefix(max + 1), 0, "limit"},
		{"2 MiB", sizePrefix(2 << 20), 0, "limit"},
		{"zero", sizePrefix(0), 0, "below"},
		{"below header", sizePrefix(minRequestSize - 1), 0, "below"},
		{"minus one", sizePrefix(0xFFFFFFFF), 0, "negative"},
		{"most negative", sizePrefix(0x80000000), 0, "negative"},
		{"HTTP GET", prefixOf('G', 'E', 'T', ' '), 0, "HTTP"},
		{"HTTP POST", prefixOf('P', 'O', 'S', 'T'), 0, "HTTP"},
		{"HTTP/2 preface", prefixOf('P', 'R', 'I', ' '), 0, "HTTP"},
		{"HTTP response", prefixOf('H', 'T', 'T', 'P'), 0, "HTTP"},
		{"TLS 1.0 record", prefixOf(0x16, 0x03, 0x01, 0x02), 0, "TLS"},
		{"TLS 1.2 record", prefixOf(0x16, 0x03, 0x03, 0x00), 0, "TLS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			size, err := checkSize(c.prefix, max)
			if c.errHas == "" {
				if err != nil || size != c.size {
					t.Fatalf("checkSize = %d, %v; want %d, nil", size, err, c.size)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkSize accepted %x as size %d", c.prefix, size)
			}
			// The error is what the operator reads in the log: it must
			// say what was wrong.
			if !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("error %q does not mention %q", err, c.errHas)
			}
		})
	}
}

// A TLS record of a size that also happens to be a plausible Kafka frame
// must still be named as TLS when the limit is large enough to admit it.
func TestCheckSizeTLSUnderHugeLimit(t *testing.T) {
	_, err := checkSize(prefixOf(0x16, 0x03, 0x01, 0x00), 1<<30)
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("err = %v, want a TLS message", err)
	}
}

func headerBytes(key, version int16, corr int32, idLen int16, rest ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(idLen))
	return append(b, rest...)
}

func TestParseHeader(t *testing.T) {
	cases := []struct {
		name     string
		frame    []byte
		clientID string
		body     []byte
		err      bool
	}{
		{"null client id", headerBytes(3, 12, 77, -1, 0, 9), "", []byte{0, 9}, false},
		{"empty client id", headerBytes(3, 12, 77, 0, 0, 9), "", []byte{0, 9}, false},
		{"client id", headerBytes(3, 12, 77, 3, 'a', 'b', 'c', 0, 9), "abc", []byte{0, 9}, false},
		{"client id fills frame", headerBytes(3, 12, 77, 2, 'x', 'y'), "xy", []byte{}, false},
		{"client id too long", headerBytes(3, 12, 77, 4, 'a', 'b', 'c'), "", nil, true},
		{"client id max length", headerBytes(3, 12, 77, 0x7FFF, 'a'), "", nil, true},
		{"length -2", headerBytes(3, 12, 77, -2, 0), "", nil, true},
		{"length -32768", headerBytes(3, 12, 77, -32768, 0), "", nil, true},
		{"nine bytes", headerBytes(3, 12, 77, -1)[:9], "", nil, true},
		{"empty", nil, "", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := parseHeader(c.frame)
			if c.err {
				if err == nil {
					t.Fatalf("accepted: %+v", h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.key != 3 || h.version != 12 || h.corrID != 77 {
				t.Fatalf("key %d version %d corr %d, want 3 12 77", h.key, h.version, h.corrID)
			}
			if h.clientID != c.clientID || !bytes.Equal(h.body, c.body) {
				t.Fatalf("client id %q body %x, want %q %x", h.clientID, h.body, c.clientID, c.body)
			}
		})
	}
}

func TestParseHeaderNegativeFields(t *testing.T) {
	h, err := parseHeader(headerBytes(-1, -1, -5, -1))
	if err != nil {
		t.Fatal(err)
	}
	if h.key != -1 || h.version != -1 || h.corrID != -5 {
		t.Fatalf("got key %d version %d corr %d", h.key, h.version, h.corrID)
	}
}

func TestSkipTags(t *testing.T) {
	body := []byte{0xB0, 0xD1}
	cases := []struct {
		name string
		in   []byte
		want []byte
		err  bool
	}{
		{"no tags", append([]byte{0}, body...), body, false},
		{"no tags, no body", []byte{0}, []byte{}, false},
		{"one tag", append([]byte{1, 5, 2, 'h', 'i'}, body...), body, false},
		{"two tags", append([]byte{2, 0, 0, 1, 1, 'z'}, body...), body, false},
		{"empty", nil, nil, true},
		{"count truncated", []byte{0x80}, nil, true},
		{"tag id missing", []byte{1}, nil, true},
		{"size missing", []byte{1, 5}, nil, true},
		{"data truncated", []byte{1, 5, 3, 'a', 'b'}, nil, true},
		{"more tags than bytes", []byte{3, 0, 0}, nil, true},
		{"huge count", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 0}, nil, true},
		{"huge size", []byte{1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 'a'}, nil, true},
		{"size 2^64-1", []byte{1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 'a'}, nil, true},
		{"overlong varint", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := skipTags(c.in)
			if c.err {
				if err == nil {
					t.Fatalf("accepted, rest %x", got)
				}
				if !errors.Is(err, errTruncated) {
					t.Fatalf("err = %v, want errTruncated", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("skipTags = %x, %v; want %x", got, err, c.want)
			}
		})
	}
}
