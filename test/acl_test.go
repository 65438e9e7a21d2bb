package test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/config"
)

// aliceRules: alice may write and read topic a and read group g, write
// every orders- topic but orders-secret, and describe the cluster (for
// DescribeAcls).
var aliceRules = []config.ACLRule{
	{Principal: "User:alice", Resource: "topic", Name: "a", Operations: []string{"write", "describe"}, Permission: "allow"},
	{Principal: "User:alice", Resource: "topic", Name: "a", Operations: []string{"read"}},
	{Principal: "User:alice", Resource: "group", Name: "g", Operations: []string{"read"}, Permission: "allow", Host: "*"},
	{Principal: "User:alice", Resource: "topic", Name: "orders-", Pattern: "prefixed", Operations: []string{"write"}},
	{Principal: "User:*", Resource: "topic", Name: "orders-secret", Operations: []string{"write"}, Permission: "deny"},
	{Principal: "User:alice", Resource: "cluster", Operations: []string{"describe"}},
}

func startACL(t *testing.T, rules []config.ACLRule) *secured {
	return startSecured(t, func(cfg *config.Config) {
		cfg.Security.SuperUsers = []string{"User:admin"}
		cfg.Security.ACLs = config.ACLs{Enabled: true, Rules: rules}
	})
}

// aliceClient is alice over SASL_PLAINTEXT with PLAIN.
func (s *secured) aliceClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	return s.client(t, "sasl", append([]kgo.Opt{kgo.SASL(plain.Auth{User: "alice", Pass: s.password}.AsMechanism())}, opts...)...)
}

func produceErr(ctx context.Context, cl *kgo.Client, topic string) error {
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// The acceptance: alice, allowed to write a and read group g, is refused
// writes to b and joins of group h, and does not see b in Metadata;
// a prefixed rule lets her write orders-eu, a deny rule overrides it for
// orders-secret; her group g consumes a.
func TestACLsRefuse(t *testing.T) {
	s := startACL(t, aliceRules)
	ctx := timeout(t, 90*time.Second)
	direct := s.env.DirectClient(t)
	for _, topic := range []string{"a", "b", "orders-eu", "orders-secret"} {
		createTopic(t, ctx, direct, topic, 1, nil)
	}
	cl := s.aliceClient(t)

	if err := produceErr(ctx, cl, "a"); err != nil {
		t.Fatalf("produce to a: %v", err)
	}
	if err := produceErr(ctx, cl, "b"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce to b: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := produceErr(ctx, cl, "orders-eu"); err != nil {
		t.Errorf("produce to orders-eu (prefixed rule): %v", err)
	}
	if err := produceErr(ctx, cl, "orders-secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce to orders-secret (denied): got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// Metadata for every topic leaves b out; asked by name, b is refused.
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, tp := range meta.Topics {
		listed = append(listed, *tp.Topic)
	}
	for _, want := range []string{"a", "orders-eu", "orders-secret"} {
		if !slices.Contains(listed, want) {
			t.Errorf("Metadata for every topic does not list %s: %v", want, listed)
		}
	}
	if slices.Contains(listed, "b") {
		t.Errorf("Metadata for every topic lists b, which alice may not describe: %v", listed)
	}
	named := kmsg.NewPtrMetadataRequest()
	for _, n := range []string{"a", "b"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		named.Topics = append(named.Topics, rt)
	}
	meta, err = named.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range meta.Topics {
		want := int16(0)
		if *tp.Topic == "b" {
			want = kerr.TopicAuthorizationFailed.Code
		}
		if tp.ErrorCode != want {
			t.Errorf("Metadata for %s: error %d, want %d", *tp.Topic, tp.ErrorCode, want)
		}
	}

	// Joining h is refused, at the coordinator lookup and at the join.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "h", []string{"h"}
	fresp, err := fc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := fresp.Coordinators[0].ErrorCode; code != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("FindCoordinator h: error %d, want GROUP_AUTHORIZATION_FAILED", code)
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "h", "consumer", 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}
	jresp, err := join.RequestWith(ctx, cl.Broker(int(s.env.Node.Registry().Self().ID)))
	if err != nil {
		t.Fatal(err)
	}
	if jresp.ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("JoinGroup h: error %d, want GROUP_AUTHORIZATION_FAILED", jresp.ErrorCode)
	}
	hcl := s.aliceClient(t, kgo.ConsumerGroup("h"), kgo.ConsumeTopics("a"))
	if err := hcl.PollFetches(ctx).Err(); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Errorf("a consumer of group h: got %v, want GROUP_AUTHORIZATION_FAILED", err)
	}

	// Group g may consume a, commit and read back its offsets.
	gcl := s.aliceClient(t, kgo.ConsumerGroup("g"), kgo.ConsumeTopics("a"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := gcl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatalf("group g consuming a: %v", err)
	}
	if fs.NumRecords() == 0 {
		t.Fatal("group g read nothing from a")
	}
	if err := gcl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("group g commit: %v", err)
	}
	offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offsets.Lookup("a", 0); !ok || o.Err != nil || o.At < 1 {
		t.Errorf("group g's offset of a: %+v (found %v)", o, ok)
	}
}

// DescribeAcls through kadm lists the configured rules, one ACL per
// operation; CreateAcls is answered, not applied (alice lacks ALTER on the
// cluster, so she is told that first, as from Kafka).
func TestDescribeACLs(t *testing.T) {
	s := startACL(t, aliceRules)
	ctx := timeout(t, time.Minute)
	adm := kadm.NewClient(s.aliceClient(t))
	all := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations().
		Allow().AllowHosts().Deny().DenyHosts()
	results, err := adm.DescribeACLs(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		principal string
		typ       kmsg.ACLResourceType
		name      string
		pattern   kadm.ACLPattern
		op        kadm.ACLOperation
		perm      kmsg.ACLPermissionType
	}
	var got []seen
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("describe filter: %v (%s)", r.Err, r.ErrMessage)
		}
		for _, d := range r.Described {
			if d.Host != "*" {
				t.Errorf("host %q, want *", d.Host)
			}
			got = append(got, seen{d.Principal, d.Type, d.Name, d.Pattern, d.Operation, d.Permission})
		}
	}
	allow, deny := kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
	topic, group, cluster := kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster
	lit, pre := kadm.ACLPatternLiteral, kadm.ACLPatternPrefixed
	want := []seen{
		{"User:alice", topic, "a", lit, kadm.OpWrite, allow},
		{"User:alice", topic, "a", lit, kadm.OpDescribe, allow},
		{"User:alice", topic, "a", lit, kadm.OpRead, allow},
		{"User:alice", group, "g", lit, kadm.OpRead, allow},
		{"User:alice", topic, "orders-", pre, kadm.OpWrite, allow},
		{"User:*", topic, "orders-secret", lit, kadm.OpWrite, deny},
		{"User:alice", cluster, acl.ClusterName, lit, kadm.OpDescribe, allow},
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("DescribeAcls does not list %+v; got %+v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("DescribeAcls listed %d ACLs, want %d: %+v", len(got), len(want), got)
	}

	// MATCH on orders-secret: the rules that bind it, prefixed and literal.
	match := kmsg.NewPtrDescribeACLsRequest()
	match.ResourceType, match.ResourceName = topic, kmsg.StringPtr("orders-secret")
	match.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch
	match.Operation, match.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	mresp, err := match.RequestWith(ctx, s.aliceClient(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range mresp.Resources {
		names = append(names, r.ResourceName)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"orders-", "orders-secret"}) {
		t.Errorf("MATCH orders-secret found %v, want [orders- orders-secret]", names)
	}

	created, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics("b").Allow("User:alice").AllowHosts().Operations(kadm.OpWrite))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range created {
		if !errors.Is(c.Err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("CreateAcls: got %v, want CLUSTER_AUTHORIZATION_FAILED", c.Err)
		}
	}
}

// A reload (Authorizer.Replace) that grants b takes effect for a client
// already connected, and one that takes a away too.
func TestACLsReload(t *testing.T) {
	s := startACL(t, aliceRules)
	ctx := timeout(t, time.Minute)
	direct := s.env.DirectClient(t)
	createTopic(t, ctx, direct, "a", 1, nil)
	createTopic(t, ctx, direct, "b", 1, nil)
	cl := s.aliceClient(t)
	if err := produceErr(ctx, cl, "b"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to b before the reload: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	replace := func(rules []config.ACLRule) {
		t.Helper()
		p, err := acl.FromConfig(config.Security{SuperUsers: []string{"User:admin"}, ACLs: config.ACLs{Enabled: true, Rules: rules}})
		if err != nil {
			t.Fatal(err)
		}
		s.env.Node.ACL().Replace(p)
	}
	replace(append(slices.Clone(aliceRules), config.ACLRule{Principal: "User:alice", Resource: "topic", Name: "b", Operations: []string{"write"}}))
	if err := produceErr(ctx, cl, "b"); err != nil {
		t.Fatalf("produce to b after the reload granted it: %v", err)
	}
	replace(aliceRules[1:]) // a: read only
	if err := produceErr(ctx, cl, "a"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to a after the reload took write away: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

// sarama is refused the same way.
func TestACLsSarama(t *testing.T) {
	s := startACL(t, aliceRules)
	ctx := timeout(t, time.Minute)
	createTopic(t, ctx, s.env.DirectClient(t), "b", 1, nil)
	cfg := saramaConfig()
	cfg.Net.SASL.Enable, cfg.Net.SASL.Handshake = true, true
	cfg.Net.SASL.Mechanism, cfg.Net.SASL.User, cfg.Net.SASL.Password = sarama.SASLTypePlaintext, "alice", s.password
	cfg.Metadata.Retry.Max, cfg.Producer.Retry.Max = 1, 1
	prod, err := sarama.NewSyncProducer([]string{s.addr(t, "sasl")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	_, _, err = prod.SendMessage(&sarama.ProducerMessage{Topic: "b", Value: sarama.StringEncoder("v")})
	if !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("sarama produce to b: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}
