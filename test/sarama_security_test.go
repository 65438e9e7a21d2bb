package test

import (
	"crypto/sha256"
	"crypto/sha512"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// scramClient is sarama's SCRAMClient over xdg-go/scram's client side:
// sarama leaves the client conversation to the application.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// sarama with SCRAM-SHA-256 and SCRAM-SHA-512 (and a wrong password)
// through a SASL_SSL listener: it produces and reads back.
func TestSaramaSCRAM(t *testing.T) {
	s := startSecured(t)
	ctx := timeout(t, time.Minute)
	createTopic(t, ctx, s.env.DirectClient(t), "sarama-scram", 1, nil)
	for _, tc := range []struct {
		mech sarama.SASLMechanism
		hash scram.HashGeneratorFcn
	}{{sarama.SASLTypeSCRAMSHA256, sha256.New}, {sarama.SASLTypeSCRAMSHA512, sha512.New}} {
		t.Run(string(tc.mech), func(t *testing.T) {
			cfg := saramaConfig()
			cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, s.tls()
			cfg.Net.SASL.Enable, cfg.Net.SASL.Handshake = true, true
			cfg.Net.SASL.Mechanism, cfg.Net.SASL.User, cfg.Net.SASL.Password = tc.mech, "alice", s.password
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: tc.hash} }
			addr := s.addr(t, "sasl_ssl")
			prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			value := "sarama over " + string(tc.mech)
			p, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "sarama-scram", Value: sarama.StringEncoder(value)})
			if err != nil {
				t.Fatal(err)
			}
			cons, err := sarama.NewConsumer([]string{addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			pc, err := cons.ConsumePartition("sarama-scram", p, off)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			select {
			case m := <-pc.Messages():
				if string(m.Value) != value {
					t.Fatalf("read %q, want %q", m.Value, value)
				}
			case err := <-pc.Errors():
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatal("nothing read back")
			}

			cfg.Net.SASL.Password = "guess"
			cfg.Metadata.Retry.Max = 0
			if c, err := sarama.NewClient([]string{addr}, cfg); err == nil {
				c.Close()
				t.Fatal("a wrong password got in")
			}
		})
	}
}
