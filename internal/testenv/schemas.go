package testenv

import (
	"encoding/binary"
	"net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
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

// StartRegistry is a node serving the built-in schema registry on an HTTP
// listener of its own port, to stand for an external Confluent-compatible
// registry; with user set, every request must carry user's Basic
// credentials (security.users). url is the registry's base URL.
func StartRegistry(tb testing.TB, user, password string, opts ...Option) (e *Env, url string) {
	tb.Helper()
	var cred *config.ScramCredential
	if user != "" {
		var err error
		if cred, err = auth.NewCredential(auth.ScramSHA256, user, password, 4096); err != nil {
			tb.Fatal(err)
		}
	}
	e = Start(tb, append([]Option{func(c *config.Config) {
		c.HTTP.Listen = "127.0.0.1:0"
		c.HTTP.SchemaRegistry.Enabled = true
		// A node alone needs no remoting, whose servers race with each
		// other in one process (see internal/race): the node of the test
		// can have its own.
		c.Cluster.Remote = ""
		if cred != nil {
			c.HTTP.AllowAnonymous = false
			c.Security.Users = []config.User{{Name: user, ScramSHA256: cred}}
		}
	}}, opts...)...)
	return e, "http://" + e.HTTPAddr(tb)
}

// HTTPAddr is the address of the node's HTTP listener.
func (e *Env) HTTPAddr(tb testing.TB) string {
	tb.Helper()
	b, ok := e.Node.Binding("http")
	if !ok {
		tb.Fatal("the node has no HTTP listener")
	}
	a, ok := b.(interface{ Addr() net.Addr })
	if !ok {
		tb.Fatal("the HTTP binding has no address")
	}
	return a.Addr().String()
}

// StopNode drains the node as SIGTERM does and leaves its upstream
// running; StartNode starts it again with the same configuration.
func (e *Env) StopNode(tb testing.TB) { tb.Helper(); e.stopNode(tb) }

// StartNode starts the node StopNode stopped, with Config as it is then
// (so a test can fix a listener's port first).
func (e *Env) StartNode(tb testing.TB) { tb.Helper(); e.startNode(tb) }
