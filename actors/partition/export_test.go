package partition

// HandedOver counts the batches Produce handed to a pipeline on its node.
func (ws *Writers) HandedOver() int64 { return ws.handed.Load() }

// Idle says whether the produce pipeline of the actor registered as id
// holds no batch: a batch's client is answered before the pipeline
// learns it is done.
func (ws *Writers) Idle(id string) bool {
	v, ok := ws.m.Load(id)
	if !ok {
		return false
	}
	a := v.(*Actor)
	a.pipeMu.Lock()
	defer a.pipeMu.Unlock()
	return len(a.pipe.queue) == 0 && len(a.pipe.sent) == 0
}
