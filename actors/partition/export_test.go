package partition

// HandedOver counts the batches Produce handed to a pipeline on its node.
func (ws *Writers) HandedOver() int64 { return ws.handed.Load() }
