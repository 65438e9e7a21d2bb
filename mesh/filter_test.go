package mesh

import (
	"testing"
)

func TestKeyPattern(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"a/b", []string{"a/b"}, []string{"a", "a/b/c", "a/c", "a/b/"}},
		{"a/+", []string{"a/b", "a/", "a/xyz"}, []string{"a", "a/b/c", "b/a"}},
		{"+/b", []string{"a/b", "/b"}, []string{"a/c", "b", "$SYS/b"}},
		{"a/#", []string{"a", "a/b", "a/b/c", "a/"}, []string{"b", "ab", "b/a"}},
		{"#", []string{"a", "a/b", "", "/"}, []string{"$SYS", "$SYS/x"}},
		{"+", []string{"a", ""}, []string{"a/b", "$x"}},
		{"a/+/c/#", []string{"a/b/c", "a/x/c/d/e"}, []string{"a/b", "a/b/d", "a/b/c2"}},
		{"$SYS/#", []string{"$SYS", "$SYS/broker"}, []string{"SYS/broker"}},
		{"+/+", []string{"a/b", "/"}, []string{"a", "a/b/c"}},
	}
	for _, c := range cases {
		kf, err := KeyPattern(c.pattern)
		if err != nil {
			t.Fatalf("KeyPattern(%q): %v", c.pattern, err)
		}
		for _, k := range c.match {
			if !kf.Match([]byte(k)) {
				t.Errorf("pattern %q does not match key %q", c.pattern, k)
			}
		}
		for _, k := range c.miss {
			if kf.Match([]byte(k)) {
				t.Errorf("pattern %q matches key %q", c.pattern, k)
			}
		}
		if kf.Match(nil) {
			t.Errorf("pattern %q matches a record without a key", c.pattern)
		}
	}
	for _, bad := range []string{"", "a/#/b", "a#", "a/b+", "#/a", "a/+x"} {
		if _, err := KeyPattern(bad); err == nil {
			t.Errorf("KeyPattern(%q) accepted", bad)
		}
	}
}

func TestKeyExactAndPrefix(t *testing.T) {
	exact, prefix := KeyExact([]byte("dev-1")), KeyPrefix([]byte("dev-"))
	for _, c := range []struct {
		key           []byte
		exact, prefix bool
	}{
		{[]byte("dev-1"), true, true},
		{[]byte("dev-10"), false, true},
		{[]byte("dev"), false, false},
		{[]byte(""), false, false},
		{nil, false, false},
	} {
		if exact.Match(c.key) != c.exact || prefix.Match(c.key) != c.prefix {
			t.Errorf("key %q: exact %v, prefix %v; want %v, %v", c.key, exact.Match(c.key), prefix.Match(c.key), c.exact, c.prefix)
		}
	}
	var any KeyFilter
	if !any.Match(nil) || !any.Match([]byte("x")) {
		t.Error("the zero KeyFilter does not take every key")
	}
	if empty := KeyPrefix(nil); !empty.Match([]byte("x")) || empty.Match(nil) {
		t.Error("an empty prefix takes every key, not a missing one")
	}
}

func TestFilterHeaders(t *testing.T) {
	f := Filter{Headers: [][]HeaderMatch{
		{{Name: "kind", Value: []byte("a")}, {Name: "region", Value: []byte("eu")}},
		{{Name: "kind", Value: []byte("b")}},
		{{Name: "gone", Value: nil}},
	}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	h := func(kv ...string) []Header {
		var out []Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	for _, c := range []struct {
		headers []Header
		want    bool
	}{
		{h("kind", "a", "region", "eu"), true},
		{h("region", "eu", "x", "y", "kind", "a"), true},
		{h("kind", "a"), false},
		{h("kind", "a", "region", "us"), false},
		{h("kind", "b"), true},
		{h("kind", "c"), false},
		{nil, false},
		{[]Header{{Key: "gone"}}, true},
		{[]Header{{Key: "gone", Value: []byte{}}}, false},
	} {
		if got := f.Match([]byte("k"), c.headers); got != c.want {
			t.Errorf("headers %v: Match %v, want %v", c.headers, got, c.want)
		}
	}
	key, _ := KeyPattern("k/#")
	both := Filter{Key: key, Headers: [][]HeaderMatch{{{Name: "kind", Value: []byte("b")}}}}
	if !both.Match([]byte("k/1"), h("kind", "b")) || both.Match([]byte("j/1"), h("kind", "b")) || both.Match([]byte("k/1"), h("kind", "a")) {
		t.Error("a key and a header condition are not both required")
	}
	for _, bad := range []Filter{
		{Headers: [][]HeaderMatch{{}}},
		{Headers: [][]HeaderMatch{{{Value: []byte("v")}}}},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate accepted %+v", bad)
		}
	}
}

// Matching allocates nothing: it runs for every record and subscriber.
func TestFilterMatchDoesNotAllocate(t *testing.T) {
	key, _ := KeyPattern("a/+/c/#")
	f := Filter{Key: key, Headers: [][]HeaderMatch{{{Name: "x", Value: []byte("1")}}, {{Name: "y", Value: []byte("2")}}}}
	k, hs := []byte("a/b/c/d"), []Header{{Key: "y", Value: []byte("2")}}
	if n := testing.AllocsPerRun(1000, func() { f.Match(k, hs) }); n != 0 {
		t.Fatalf("Match allocates %.1f times", n)
	}
}

func FuzzKeyPattern(f *testing.F) {
	for _, s := range []string{"a/+/c", "#", "a/#", "+", "$SYS/#", "a//b"} {
		f.Add(s, "a/b/c")
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		kf, err := KeyPattern(pattern)
		if err != nil {
			return
		}
		got := kf.Match([]byte(key))
		if !wildcard(pattern) && got != (pattern == key) {
			t.Fatalf("pattern %q without wildcards: Match(%q) = %v", pattern, key, got)
		}
		if pattern == "#" && got != (len(key) == 0 || key[0] != '$') {
			t.Fatalf("pattern # : Match(%q) = %v", key, got)
		}
	})
}

func wildcard(p string) bool {
	for _, c := range p {
		if c == '+' || c == '#' {
			return true
		}
	}
	return false
}
