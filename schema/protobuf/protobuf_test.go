package protobuf

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/meshka/meshka/schema"
)

func mustParse(t testing.TB, text string, refs ...schema.Reference) *Schema {
	t.Helper()
	s, err := Parse(text, refs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const orders = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  int64 id = 1;
  string customer = 2;
  google.protobuf.Timestamp at = 3;
  repeated Line lines = 4;
  message Line { string sku = 1; int32 qty = 2; }
}
message Refund { int64 order_id = 1; }
`

func TestParse(t *testing.T) {
	for _, bad := range []string{`message {`, `syntax = "proto3"; message M { Unknown u = 1; }`,
		`syntax = "proto3"; import "other.proto";`, `syntax = "proto3"; message M { int32 a = 1; int32 b = 1; }`} {
		if _, err := Parse(bad, nil); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
	a := mustParse(t, orders)
	b := mustParse(t, "// a comment\n"+strings.ReplaceAll(orders, "  ", "\t\t"))
	if a.Canonical() != b.Canonical() || a.Type() != schema.Protobuf {
		t.Fatal("formatting and comments changed the canonical form")
	}
	if c := mustParse(t, strings.Replace(orders, "qty = 2", "qty = 3", 1)); c.Canonical() == a.Canonical() {
		t.Fatal("a field number change kept the canonical form")
	}
}

func TestReferences(t *testing.T) {
	money := schema.Reference{Name: "shop/money.proto", Schema: `syntax = "proto3"; package shop; message Money { int64 cents = 1; }`}
	s := mustParse(t, `syntax = "proto3"; package shop; import "shop/money.proto"; message Price { Money amount = 1; }`, money)
	md, err := s.Message([]int{0})
	if err != nil || md.Fields().ByNumber(1).Message().FullName() != "shop.Money" {
		t.Fatal(md, err)
	}
}

func TestValidate(t *testing.T) {
	s := mustParse(t, orders)
	line, _ := s.Message([]int{0, 0})
	m := dynamicpb.NewMessage(line)
	m.Set(line.Fields().ByName("sku"), protoreflectString("A-1"))
	good, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(good, []int{0, 0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(nil, nil); err != nil { // the empty message
		t.Fatal(err)
	}
	badUTF8 := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff")
	// A field of the wrong wire type is an unknown field to Protobuf, valid.
	wrongType := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1)
	if err := s.Validate(wrongType, []int{0, 0}); err != nil {
		t.Errorf("wrong wire type: %v", err)
	}
	for name, tc := range map[string]struct {
		payload []byte
		indexes []int
	}{
		"truncated":       {good[:len(good)-1], []int{0, 0}},
		"bad utf-8":       {badUTF8, []int{0, 0}},
		"no such message": {good, []int{2}},
		"no such nested":  {good, []int{1, 0}},
		"negative index":  {good, []int{-1}},
	} {
		if err := s.Validate(tc.payload, tc.indexes); err == nil {
			t.Errorf("%s: nil error", name)
		}
	}
	p2 := mustParse(t, `syntax = "proto2"; message R { required int32 a = 1; }`)
	if err := p2.Validate(nil, nil); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("missing required field: %v", err)
	}
}

func TestReadsFrom(t *testing.T) {
	base := `syntax = "proto3"; package p;
message M { int32 a = 1; string b = 2; Inner c = 3; E e = 4; map<string, int32> m = 5; oneof o { int32 x = 6; string y = 7; } int32 z = 8; int32 q = 9; }
message Inner { int32 v = 1; }
enum E { E0 = 0; E1 = 1; }`
	change := func(old, new string) string {
		if !strings.Contains(base, old) {
			t.Fatalf("%q not in the base schema", old)
		}
		return strings.Replace(base, old, new, 1)
	}
	for _, tc := range []struct {
		name   string
		reader string
		ok     bool
	}{
		{"same", base, true},
		{"field added", change("int32 z = 8;", "int32 z = 8; int64 w = 10;"), true},
		{"field renamed", change("int32 a = 1;", "int32 aa = 1;"), true},
		{"field removed (compatible, as in Confluent's registry)", change("int32 z = 8;", ""), true},
		{"field removed, number reserved", change("int32 z = 8;", "reserved 8;"), true},
		{"field removed, name reserved", change("int32 z = 8;", `reserved "z";`), true},
		{"int32 to int64", change("int32 a = 1;", "int64 a = 1;"), true},
		{"int32 to sint32", change("int32 a = 1;", "sint32 a = 1;"), false},
		{"string to bytes", change("string b = 2;", "bytes b = 2;"), true},
		{"string to int32", change("string b = 2;", "int32 b = 2;"), false},
		{"number reused with another type", change("int32 z = 8;", "string z = 8;"), false},
		{"message type changed", change("Inner c = 3;", "M c = 3;"), false},
		{"enum to int32", change("E e = 4;", "int32 e = 4;"), true},
		{"made repeated", change("int32 a = 1;", "repeated int32 a = 1;"), false},
		{"map value changed", change("map<string, int32> m = 5;", "map<string, string> m = 5;"), false},
		{"map to repeated", change("map<string, int32> m = 5;", "repeated int32 m = 5;"), false},
		{"message added", base + "message N {}", true},
		{"package changed", change("package p;", "package q;"), false},
		{"enum value added", change("E1 = 1;", "E1 = 1; E2 = 2;"), true},
		{"enum value removed (compatible: an open enum keeps the number)", change("E1 = 1;", ""), true},
		{"enum value removed, reserved", change("E1 = 1;", "reserved 1;"), true},
		{"field moved into an existing oneof", change("oneof o { int32 x = 6; string y = 7; } int32 z = 8;", "oneof o { int32 x = 6; string y = 7; int32 z = 8; }"), false},
		{"one field moved into a new oneof", change("int32 z = 8;", "oneof n { int32 z = 8; }"), true},
		{"two fields moved into a new oneof", change("int32 z = 8; int32 q = 9;", "oneof n { int32 z = 8; int32 q = 9; }"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := schema.Compatible(mustParse(t, tc.reader), mustParse(t, base))
			if (len(got) == 0) != tc.ok {
				t.Fatalf("Compatible = %q, want ok=%v", got, tc.ok)
			}
		})
	}
	for what, writer := range map[string]string{"message": base + "message N {}", "enum": base + "enum F { F0 = 0; }"} {
		if got := schema.Compatible(mustParse(t, base), mustParse(t, writer)); len(got) != 1 || !strings.Contains(got[0], what) {
			t.Errorf("%s removed: %q", what, got)
		}
	}
	p2 := `syntax = "proto2"; message R { optional int32 a = 1; }`
	if got := schema.Compatible(mustParse(t, `syntax = "proto2"; message R { optional int32 a = 1; required int32 b = 2; }`), mustParse(t, p2)); len(got) == 0 {
		t.Error("required field added: compatible")
	}
	if got := schema.Compatible(mustParse(t, `syntax = "proto2"; message R { required int32 a = 1; }`), mustParse(t, p2)); len(got) == 0 {
		t.Error("field became required: compatible")
	}
}

func FuzzValidate(f *testing.F) {
	s := mustParse(f, orders+`message All { map<string, Order> m = 1; repeated sint64 s = 2 [packed = true]; oneof o { bytes b = 3; double d = 4; } }`)
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0x0a, 0x03, 'A', '-', '1'}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		paths := [][]int{{0}, {0, 0}, {1}, {2}, {5}}
		_ = s.Validate(b, paths[int(which)%len(paths)])
	})
}

func protoreflectString(s string) protoreflect.Value { return protoreflect.ValueOfString(s) }

func FuzzParse(f *testing.F) {
	f.Add(orders)
	f.Add(`syntax = "proto2"; message R { required int32 a = 1; extensions 100 to 200; }`)
	f.Add(`edition = "2023"; message E { int32 a = 1; }`)
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text, nil)
		if err != nil {
			return
		}
		if got := s.ReadsFrom(s); len(got) > 0 {
			t.Fatalf("a schema does not read itself: %q", got)
		}
	})
}

func TestReferenceNamedLikeTheSchema(t *testing.T) {
	ref := schema.Reference{Name: "schema.proto", Schema: `syntax = "proto3"; package r; message R {}`}
	s := mustParse(t, `syntax = "proto3"; import "schema.proto"; message M { r.R r = 1; }`, ref)
	if md, _ := s.Message(nil); md.FullName() != "M" {
		t.Fatal(md.FullName())
	}
}
