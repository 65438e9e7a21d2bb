package cluster

import "github.com/asynkron/protoactor-go/actor"

// Mailbox is the bounded mailbox of an actor kind of the mesh. Besides
// protoactor's own, it answers the requests a stopped activation never
// took: protoactor's Stop goes ahead of the messages waiting in the
// mailbox and then drops them, so their senders would wait until they
// give up. Each such request is answered with a DeadLetterResponse,
// which Reply turns into ErrGone (ask again), as it does for a request
// sent after the activation stopped.
func Mailbox(size int) actor.MailboxProducer {
	return func() actor.Mailbox {
		return actor.Bounded(size, &dropAnswerer{})()
	}
}

// dropAnswerer watches one activation's mailbox. The mailbox calls it
// from one goroutine at a time, in the order it handles messages.
type dropAnswerer struct {
	system  *actor.ActorSystem // from Activate, the first message
	self    *actor.PID
	stopped bool
}

func (d *dropAnswerer) MailboxStarted()   {}
func (d *dropAnswerer) MessagePosted(any) {}
func (d *dropAnswerer) MailboxEmpty()     {}
func (d *dropAnswerer) MessageReceived(m any) {
	if a, ok := actor.UnwrapEnvelopeMessage(m).(*Activate); ok {
		d.system, d.self = a.system, a.self
		return
	}
	switch m := m.(type) {
	case *actor.Stop:
		// Mesh activations have no children, so Stop ends the actor
		// then and there: what comes after was never handled.
		d.stopped = true
	case *actor.MessageEnvelope:
		if d.stopped && m.Sender != nil && d.system != nil {
			d.system.Root.Send(m.Sender, &actor.DeadLetterResponse{Target: d.self})
		}
	}
}
