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
