package registry

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// snapshot is everything a State holds but its cache.
func snapshot(s *State) any {
	return []any{s.subjects, s.ids, s.maxID, s.configs, s.modes}
}

// compact keeps what Kafka's log compaction keeps in the end: the last
// record of each key, in log order, tombstones dropped.
func compact(log []Record) []Record {
	last := map[string]int{}
	for i, r := range log {
		last[string(r.Key)] = i
	}
	var out []Record
	for i, r := range log {
		if last[string(r.Key)] == i && r.Value != nil {
			out = append(out, r)
		}
	}
	return out
}

var pool = []Schema{
	avro(userV1), avro(userV2), avro(userBad), avro(`"string"`), avro(`"int"`),
	avro(`{"type":"record","name":"Address","namespace":"t","fields":[{"name":"city","type":"string"}]}`),
	{Schema: `{"type":"record","name":"Person","namespace":"t","fields":[{"name":"home","type":"t.Address"}]}`,
		References: []Reference{{Name: "t.Address", Subject: "b", Version: 1}}},
	jsonSchema(`{"type":"object"}`), jsonSchema(`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`),
	proto(`syntax = "proto3"; message M { int32 a = 1; }`), proto(`syntax = "proto3"; message M { int32 a = 1; reserved 2; }`),
}

func randomOp(r *rand.Rand) Op {
	subjects := []string{"a", "b", "c", ""}
	subject := subjects[r.IntN(3)]
	levels := []Level{None, Backward, BackwardTransitive, Forward, Full, FullTransitive, ""}
	modes := []Mode{ReadWrite, ReadWrite, ReadOnly, Import}
	switch n := r.IntN(20); {
	case n < 9:
		op := Register{Subject: subject, Schema: pool[r.IntN(len(pool))], Normalize: r.IntN(4) == 0}
		if r.IntN(5) == 0 {
			op.ID, op.Version = 1+r.IntN(30), 1+r.IntN(6)
		}
		return op
	case n < 12:
		return DeleteVersion{Subject: subject, Version: []int{Latest, 1, 2, 3}[r.IntN(4)], Permanent: r.IntN(2) == 0}
	case n < 14:
		return DeleteSubject{Subject: subject, Permanent: r.IntN(2) == 0}
	case n < 16:
		return SetConfig{Subject: subjects[r.IntN(4)], Config: Config{Compatibility: levels[r.IntN(len(levels))]}}
	case n < 17:
		return DeleteConfig{Subject: subjects[r.IntN(4)]}
	case n < 19:
		return SetMode{Subject: subjects[r.IntN(4)], Mode: modes[r.IntN(len(modes))], Force: r.IntN(2) == 0}
	}
	return DeleteMode{Subject: subjects[r.IntN(4)]}
}

// TestReplay drives random operations through Plan and Apply on one state,
// then replays what was written on fresh states: the whole log, the log
// applied twice over, and the log as compaction leaves it. All must agree.
func TestReplay(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 5
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 7))
			a := New()
			var log []Record
			planned := 0
			for range 300 {
				recs, _, err := a.Plan(randomOp(r))
				if err != nil {
					if code(err) <= 0 {
						t.Fatalf("an error without a code: %v", err)
					}
					continue
				}
				planned++
				log = append(log, recs...)
				apply(t, a, recs)
			}
			if planned < 50 {
				t.Fatalf("only %d operations planned", planned)
			}
			want := snapshot(a)

			b := New()
			apply(t, b, log)
			if got := snapshot(b); !reflect.DeepEqual(got, want) {
				t.Fatalf("replay differs:\n%#v\n%#v", got, want)
			}
			// A replay from an earlier offset over the state: records may be
			// refused on the way (an id an import gave again after the
			// schema it stood for was deleted), the state ends the same.
			for _, rec := range log {
				_ = b.Apply(rec)
			}
			if got := snapshot(b); !reflect.DeepEqual(got, want) {
				t.Fatal("a second replay changed the state")
			}
			c := New()
			apply(t, c, compact(log))
			if got := snapshot(c); !reflect.DeepEqual(got, want) {
				t.Fatalf("replay of the compacted log differs:\n%#v\n%#v", got, want)
			}
			// The replayed state plans as the original does.
			for range 50 {
				op := randomOp(r)
				ra, _, ea := a.Plan(op)
				rc, _, ec := c.Plan(op)
				if code(ea) != code(ec) || !reflect.DeepEqual(ra, rc) {
					t.Fatalf("%T%+v planned differently: %v %v", op, op, ea, ec)
				}
			}
		})
	}
}
