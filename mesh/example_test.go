package mesh_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/node"
	"github.com/meshka/meshka/records"
)

// A subscription to the temperature readings of every sensor, from now
// on, taking records as they come.
func ExampleMesh_Subscribe() {
	var n *node.Node // a started node: node.Start(cfg, node.Options{})
	ctx := context.Background()
	key, err := mesh.KeyPattern("sensors/+/temperature")
	if err != nil {
		panic(err)
	}
	s, err := n.Mesh().Subscribe(ctx, mesh.SubscribeOptions{
		Topic:  "sensors",
		Start:  mesh.Latest(),
		Filter: mesh.Filter{Key: key},
		Queue:  256,
		Slow:   mesh.Pause,
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	for {
		r, err := s.Next(ctx)
		if err != nil {
			return // mesh.ErrClosed once closed, or a *mesh.SlowError with CutOff
		}
		fmt.Printf("%s/%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
	}
}

// Records produced by key, compressed, each answered once written.
func ExampleProducer_Produce() {
	var n *node.Node // a started node
	ctx := context.Background()
	p := n.Mesh().NewProducer(mesh.ProducerOptions{Acks: mesh.AcksAll, Compression: records.CodecZstd, Linger: 2 * time.Millisecond})
	defer p.Close(ctx)
	err := p.Produce(ctx, mesh.Record{Topic: "sensors", Partition: -1, Key: []byte("sensors/7/temperature"), Value: []byte("21.5")},
		func(r mesh.Record, err error) {
			if err == nil {
				fmt.Println("written to", r.Partition, "at", r.Offset)
			}
		})
	if err != nil {
		panic(err) // not taken: ctx ended or the node is stopping
	}
}

// A member of a share: the group's members, on any node, split the
// topic's partitions; each record is acknowledged once handled, and only
// acknowledged records count when the member commits.
func ExampleMesh_Share() {
	var n *node.Node // a started node
	ctx := context.Background()
	s, err := n.Mesh().Share(mesh.ShareOptions{
		Group:       "billing",
		Topics:      []string{"orders"},
		Start:       mesh.Earliest(), // for partitions the group has not committed
		Acknowledge: true,
	})
	if err != nil {
		panic(err)
	}
	defer s.Close() // commits, and leaves the group at once
	for {
		r, err := s.Next(ctx)
		if err != nil {
			return // mesh.ErrClosed once closed
		}
		fmt.Printf("%s/%d@%d %s\n", r.Topic, r.Partition, r.Offset, r.Value)
		s.Ack(r)
	}
}

// A compacted topic as a table: a write that the next read sees, a scan
// of one key prefix page by page, then the changes from that snapshot on.
func ExampleMesh_Table() {
	var n *node.Node // a started node
	ctx := context.Background()
	devices := n.Mesh().Table("devices")
	if _, err := devices.Put(ctx, []byte("site-1/pump"), []byte(`{"on":true}`)); err != nil {
		panic(err)
	}
	if e, ok, err := devices.Get(ctx, []byte("site-1/pump")); err == nil && ok {
		fmt.Printf("%s = %s (offset %d)\n", e.Key, e.Value, e.Offset)
	}
	page, err := devices.Scan(ctx, mesh.ScanOptions{Prefix: []byte("site-1/")})
	if err != nil {
		panic(err)
	}
	for _, e := range page.Entries {
		fmt.Printf("%s = %s\n", e.Key, e.Value)
	}
	changes, err := devices.Watch(ctx, []byte("site-1/"), page.Positions)
	if err != nil {
		panic(err)
	}
	defer changes.Close()
	for {
		r, err := changes.Next(ctx)
		if err != nil {
			return
		}
		if r.Value == nil {
			fmt.Printf("%s deleted\n", r.Key)
		}
	}
}
