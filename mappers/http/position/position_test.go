package position

import (
	"errors"
	"maps"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, m := range []map[int32]int64{{}, {0: 0}, {0: 5, 1: 1 << 40, 7: 3}} {
		got, err := Decode(Encode(m))
		if err != nil || !maps.Equal(got, m) {
			t.Errorf("%v: got %v, %v", m, got, err)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, s := range []string{"", "!!", "AA", Encode(map[int32]int64{1: 2}) + "A", "AgIA"} {
		if _, err := Decode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", s, err)
		}
	}
}

// FuzzDecode: any string decodes or is ErrInvalid; what decodes encodes
// back to the same string.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(map[int32]int64{0: 1, 2: 300}))
	f.Add("AQA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Decode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if again := Encode(m); again != s {
			t.Fatalf("%q decodes to %v, which encodes to %q", s, m, again)
		}
	})
}
