package test

// The interop tests use these clients; importing them here keeps go.mod
// stable while tests are written in parallel.
import (
	_ "github.com/IBM/sarama"
	_ "github.com/segmentio/kafka-go"
)
