package testenv

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/registry"
	"github.com/meshka/meshka/schema/validate"
	"github.com/meshka/meshka/schema/wire"
)

// UserSchema is an Avro record of a name (string) and an age (int), the
// schema AvroUsers registers.
const UserSchema = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}`

// AvroUsers is a schema source holding UserSchema as the first version of
// subject, and that schema's id.
func AvroUsers(tb testing.TB, subject string) (validate.Source, int) {
	tb.Helper()
	st, mu := registry.New(), new(sync.RWMutex)
	recs, res, err := st.Plan(registry.Register{Subject: subject, Schema: registry.Schema{Type: schema.Avro, Schema: UserSchema}})
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range recs {
		if err := st.Apply(r); err != nil {
			tb.Fatal(err)
		}
	}
	return validate.NewStateSource(st, mu), res.ID
}

// AvroUser is a UserSchema value in Confluent's wire format, under
// schema id.
func AvroUser(id int, name string, age int32) []byte {
	b := wire.Append(nil, uint32(id), nil)
	b = binary.AppendVarint(b, int64(len(name)))
	b = append(b, name...)
	return binary.AppendVarint(b, int64(age))
}

// StartWithSchemasUpstream is StartWithSchemas with extra options for the
// upstream cluster (see StartWith).
func StartWithSchemasUpstream(tb testing.TB, src validate.Source, upstreamOpts []kfake.Opt, opts ...Option) *Env {
	tb.Helper()
	return startSchemas(tb, nil, upstreamOpts, nil, src, opts)
}
