package upstream

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// entries lists what a request or response names, by walking kmsg's
// generated structs: "topic/partition" for each partition of each topic,
// "topic" for a topic without partitions, "type:name" for a config
// resource, "group" for a group. It reads the field names kmsg uses in
// every one of these messages (Topics, Topic, Partitions, Partition,
// TopicNames, Resources, Groups), so one walk serves requests and
// responses alike.
func entries(msg any) []string {
	v := reflect.ValueOf(msg).Elem()
	var out []string
	name := func(f reflect.Value) string {
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				return "<nil>"
			}
			f = f.Elem()
		}
		return f.String()
	}
	if ts := v.FieldByName("Topics"); ts.IsValid() {
		for i := 0; i < ts.Len(); i++ {
			t := ts.Index(i)
			topic := name(t.FieldByName("Topic"))
			ps := t.FieldByName("Partitions")
			if !ps.IsValid() {
				out = append(out, topic)
				continue
			}
			for j := 0; j < ps.Len(); j++ {
				p := ps.Index(j)
				if p.Kind() == reflect.Struct {
					p = p.FieldByName("Partition")
				}
				out = append(out, fmt.Sprintf("%s/%d", topic, p.Int()))
			}
		}
	}
	if ns := v.FieldByName("TopicNames"); ns.IsValid() {
		for i := 0; i < ns.Len(); i++ {
			out = append(out, ns.Index(i).String())
		}
	}
	if rs := v.FieldByName("Resources"); rs.IsValid() {
		for i := 0; i < rs.Len(); i++ {
			r := rs.Index(i)
			out = append(out, fmt.Sprintf("%d:%s", r.FieldByName("ResourceType").Int(), r.FieldByName("ResourceName").String()))
		}
	}
	if gs := v.FieldByName("Groups"); gs.IsValid() {
		for i := 0; i < gs.Len(); i++ {
			g := gs.Index(i)
			if g.Kind() == reflect.Struct {
				g = g.FieldByName("Group")
			}
			out = append(out, g.String())
		}
	}
	slices.Sort(out)
	return out
}

// errorCodes collects every ErrorCode field anywhere in v.
func errorCodes(v reflect.Value, out *[]int16) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			errorCodes(v.Elem(), out)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			errorCodes(v.Index(i), out)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Name == "ErrorCode" {
				*out = append(*out, int16(v.Field(i).Int()))
				continue
			}
			errorCodes(v.Field(i), out)
		}
	}
}

// errorRequests are requests of every kind ErrorResponse answers, each
// naming two topics of two partitions, two resources or two groups.
func errorRequests() []kmsg.Request {
	topics := []string{"t1", "t2"}
	parts := []int32{0, 3}
	var out []kmsg.Request

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 7
	for _, n := range topics {
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = n
		for _, p := range parts {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			t.Partitions = append(t.Partitions, rp)
		}
		lo.Topics = append(lo.Topics, t)
	}
	out = append(out, lo)

	ep := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ep.Version = 4
	for _, n := range topics {
		t := kmsg.NewOffsetForLeaderEpochRequestTopic()
		t.Topic = n
		for _, p := range parts {
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition = p
			t.Partitions = append(t.Partitions, rp)
		}
		ep.Topics = append(ep.Topics, t)
	}
	out = append(out, ep)

	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version, of.Group = 7, "g"
	for _, n := range topics {
		t := kmsg.NewOffsetFetchRequestTopic()
		t.Topic, t.Partitions = n, parts
		of.Topics = append(of.Topics, t)
	}
	out = append(out, of)

	ofg := kmsg.NewPtrOffsetFetchRequest()
	ofg.Version = 8
	for _, g := range []string{"g1", "g2"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		ofg.Groups = append(ofg.Groups, rg)
	}
	out = append(out, ofg)

	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group = 8, "g"
	for _, n := range topics {
		t := kmsg.NewOffsetCommitRequestTopic()
		t.Topic = n
		for _, p := range parts {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition = p
			t.Partitions = append(t.Partitions, rp)
		}
		oc.Topics = append(oc.Topics, t)
	}
	out = append(out, oc)

	tc := kmsg.NewPtrTxnOffsetCommitRequest()
	tc.Version, tc.Group, tc.TransactionalID = 3, "g", "tx"
	for _, n := range topics {
		t := kmsg.NewTxnOffsetCommitRequestTopic()
		t.Topic = n
		for _, p := range parts {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition = p
			t.Partitions = append(t.Partitions, rp)
		}
		tc.Topics = append(tc.Topics, t)
	}
	out = append(out, tc)

	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	for _, n := range topics {
		t := kmsg.NewOffsetDeleteRequestTopic()
		t.Topic = n
		for _, p := range parts {
			rp := kmsg.NewOffsetDeleteRequestTopicPartition()
			rp.Partition = p
			t.Partitions = append(t.Partitions, rp)
		}
		od.Topics = append(od.Topics, t)
	}
	out = append(out, od)

	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Version, dg.Groups = 2, []string{"g1", "g2"}
	out = append(out, dg)

	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.Group = "tx", "g"
	out = append(out, ao)

	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID = "tx"
	out = append(out, et)

	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.Version, ap.TransactionalID = 3, "tx"
	for _, n := range topics {
		t := kmsg.NewAddPartitionsToTxnRequestTopic()
		t.Topic, t.Partitions = n, parts
		ap.Topics = append(ap.Topics, t)
	}
	out = append(out, ap)

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID = kmsg.StringPtr("tx")
	out = append(out, ip)

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 5
	for _, n := range topics {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = n
		ct.Topics = append(ct.Topics, t)
	}
	out = append(out, ct)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version, dt.TopicNames = 5, topics
	out = append(out, dt)

	dt6 := kmsg.NewPtrDeleteTopicsRequest()
	dt6.Version = 6
	for _, n := range topics {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(n)
		dt6.Topics = append(dt6.Topics, t)
	}
	out = append(out, dt6)

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Version = 2
	for _, n := range topics {
		t := kmsg.NewDeleteRecordsRequestTopic()
		t.Topic = n
		for _, p := range parts {
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Partition = p
			t.Partitions = append(t.Partitions, rp)
		}
		dr.Topics = append(dr.Topics, t)
	}
	out = append(out, dr)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Version = 3
	for _, n := range topics {
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic = n
		cp.Topics = append(cp.Topics, t)
	}
	out = append(out, cp)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Version = 4
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Version = 2
	ic := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ic.Version = 1
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "t1"}, {kmsg.ConfigResourceTypeBroker, "2"}} {
		d := kmsg.NewDescribeConfigsRequestResource()
		d.ResourceType, d.ResourceName = r.typ, r.name
		dc.Resources = append(dc.Resources, d)
		a := kmsg.NewAlterConfigsRequestResource()
		a.ResourceType, a.ResourceName = r.typ, r.name
		ac.Resources = append(ac.Resources, a)
		i := kmsg.NewIncrementalAlterConfigsRequestResource()
		i.ResourceType, i.ResourceName = r.typ, r.name
		ic.Resources = append(ic.Resources, i)
	}
	return append(out, dc, ac, ic)
}

// ErrorResponse answers every partition, topic, resource or group a
// request names with the code, and names nothing else; requests that name
// none (or, as OffsetDelete, answer a failure as a whole) carry it at the
// top. Each answer encodes at the request's version and reads back so.
func TestErrorResponseNamesEveryPart(t *testing.T) {
	const code = 15 // COORDINATOR_NOT_AVAILABLE: any code but 0 would do
	whole := map[int16]bool{
		int16(kmsg.OffsetDelete): true, int16(kmsg.AddOffsetsToTxn): true,
		int16(kmsg.EndTxn): true, int16(kmsg.InitProducerID): true,
	}
	for _, req := range errorRequests() {
		t.Run(fmt.Sprintf("%s v%d", kmsg.NameForKey(req.Key()), req.GetVersion()), func(t *testing.T) {
			resp := ErrorResponse(req, code)
			if resp.Key() != req.Key() {
				t.Fatalf("answered with %s", kmsg.NameForKey(resp.Key()))
			}
			want := entries(req)
			if whole[req.Key()] {
				want = nil
			}
			if got := entries(resp); !slices.Equal(got, want) {
				t.Fatalf("answer names %v, want %v", got, want)
			}
			var codes []int16
			errorCodes(reflect.ValueOf(resp), &codes)
			if len(codes) == 0 {
				t.Fatal("the answer carries no error code")
			}
			for _, c := range codes {
				if c != code {
					t.Fatalf("error codes %v, want all %d", codes, code)
				}
			}
			// What a client reads: the answer at the request's version.
			resp.SetVersion(req.GetVersion())
			back := req.ResponseKind()
			back.SetVersion(req.GetVersion())
			if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
				t.Fatalf("the answer does not read back at v%d: %v", req.GetVersion(), err)
			}
			if got := entries(back); !slices.Equal(got, entries(resp)) {
				t.Fatalf("read back, the answer names %v", got)
			}
		})
	}
}

// OffsetFetch answers a partition it could not fetch with no offset and
// no leader epoch, as Kafka's coordinator does, not with offset 0.
func TestErrorResponseOffsetFetchHasNoOffsets(t *testing.T) {
	for _, req := range errorRequests() {
		of, ok := req.(*kmsg.OffsetFetchRequest)
		if !ok || of.Version >= 8 {
			continue
		}
		resp := ErrorResponse(of, kerr.NotCoordinator.Code).(*kmsg.OffsetFetchResponse)
		if resp.ErrorCode != kerr.NotCoordinator.Code {
			t.Errorf("top-level error %d", resp.ErrorCode)
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.Offset != -1 || rp.LeaderEpoch != -1 {
					t.Errorf("%s/%d answered at offset %d, leader epoch %d; want -1 and -1", rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch)
				}
			}
		}
	}
}
