package protobuf

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/meshka/meshka/schema"
)

// ReadsFrom checks that a reader compiled from s decodes what writer's
// messages encode, and that s keeps what a later version would need to stay
// so: each rule is listed in docs/ARCHITECTURE.md ("Schemas").
func (s *Schema) ReadsFrom(writer schema.Schema) []string {
	w, ok := writer.(*Schema)
	if !ok {
		return []string{fmt.Sprintf("the writer is a %s schema", writer.Type())}
	}
	var c checker
	if s.fd.Package() != w.fd.Package() {
		c.fail("the package changed from %q to %q", w.fd.Package(), s.fd.Package())
	}
	rmsgs, renums := index(s.fd)
	wmsgs, wenums := index(w.fd)
	for _, wm := range wmsgs.order {
		rm, ok := rmsgs.byName[wm]
		if !ok {
			c.fail("message %s was removed", wm)
			continue
		}
		c.message(rm.(protoreflect.MessageDescriptor), wmsgs.byName[wm].(protoreflect.MessageDescriptor))
	}
	for _, we := range wenums.order {
		re, ok := renums.byName[we]
		if !ok {
			c.fail("enum %s was removed", we)
			continue
		}
		c.enum(re.(protoreflect.EnumDescriptor), wenums.byName[we].(protoreflect.EnumDescriptor))
	}
	return c.reasons
}

type checker struct{ reasons []string }

func (c *checker) fail(format string, args ...any) {
	c.reasons = append(c.reasons, fmt.Sprintf(format, args...))
}

type names struct {
	order  []protoreflect.FullName
	byName map[protoreflect.FullName]protoreflect.Descriptor
}

func (n *names) add(d protoreflect.Descriptor) {
	n.order = append(n.order, d.FullName())
	n.byName[d.FullName()] = d
}

// index lists a file's messages (map entries left out: their map fields
// are compared instead) and enums, nested ones included.
func index(fd protoreflect.FileDescriptor) (msgs, enums names) {
	msgs.byName = map[protoreflect.FullName]protoreflect.Descriptor{}
	enums.byName = map[protoreflect.FullName]protoreflect.Descriptor{}
	var walk func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors)
	walk = func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			enums.add(es.Get(i))
		}
		for i := range ms.Len() {
			m := ms.Get(i)
			if !m.IsMapEntry() {
				msgs.add(m)
			}
			walk(m.Messages(), m.Enums())
		}
	}
	walk(fd.Messages(), fd.Enums())
	return msgs, enums
}

func (c *checker) message(r, w protoreflect.MessageDescriptor) {
	wf := w.Fields()
	for i := range wf.Len() {
		f := wf.Get(i)
		rf := r.Fields().ByNumber(f.Number())
		if rf == nil {
			// A removed field is compatible, as in Confluent's registry:
			// the reader skips it in old data. A later version reusing
			// its number with another type is caught by the transitive
			// levels, which compare with every version.
			continue
		}
		c.field(r, rf, f)
	}
	rf := r.Fields()
	for i := range rf.Len() {
		f := rf.Get(i)
		if wf.ByNumber(f.Number()) == nil && f.Cardinality() == protoreflect.Required {
			c.fail("%s: required field %d (%s) was added", r.FullName(), f.Number(), f.Name())
		}
	}
	c.oneofs(r, w)
}

// oneofs refuses what makes old data ambiguous in a oneof: a field moved
// into a oneof that already existed (its old messages may set both), or
// several fields moved into a new one.
func (c *checker) oneofs(r, w protoreflect.MessageDescriptor) {
	for i := range r.Oneofs().Len() {
		o := r.Oneofs().Get(i)
		if o.IsSynthetic() {
			continue
		}
		var moved []protoreflect.Name
		existed := false
		for j := range o.Fields().Len() {
			f := w.Fields().ByNumber(o.Fields().Get(j).Number())
			if f == nil {
				continue
			}
			if wo := f.ContainingOneof(); wo != nil && !wo.IsSynthetic() {
				existed = true
			} else {
				moved = append(moved, f.Name())
			}
		}
		switch {
		case len(moved) > 0 && existed:
			c.fail("%s: field(s) %v moved into the existing oneof %s", r.FullName(), moved, o.Name())
		case len(moved) > 1:
			c.fail("%s: fields %v moved into the new oneof %s", r.FullName(), moved, o.Name())
		}
	}
}

func (c *checker) field(m protoreflect.MessageDescriptor, r, w protoreflect.FieldDescriptor) {
	where := fmt.Sprintf("%s: field %d (%s)", m.FullName(), r.Number(), r.Name())
	switch {
	case r.IsMap() != w.IsMap():
		c.fail("%s changed between map and not a map", where)
		return
	case r.IsMap():
		c.kind(where+" key", r.MapKey(), w.MapKey())
		c.kind(where+" value", r.MapValue(), w.MapValue())
		return
	case r.IsList() != w.IsList():
		c.fail("%s changed between repeated and singular", where)
		return
	}
	if r.Cardinality() == protoreflect.Required && w.Cardinality() != protoreflect.Required {
		c.fail("%s became required", where)
	}
	c.kind(where, r, w)
}

// wireGroup is the set of kinds that read each other's encoding.
func wireGroup(k protoreflect.Kind) string {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Uint64Kind,
		protoreflect.BoolKind, protoreflect.EnumKind:
		return "varint"
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return "zigzag varint"
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return "fixed32"
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return "fixed64"
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "bytes"
	}
	return k.String()
}

func (c *checker) kind(where string, r, w protoreflect.FieldDescriptor) {
	rk, wk := r.Kind(), w.Kind()
	if wireGroup(rk) != wireGroup(wk) {
		c.fail("%s changed from %s to %s", where, wk, rk)
		return
	}
	switch {
	case rk == protoreflect.EnumKind && wk == protoreflect.EnumKind && r.Enum().FullName() != w.Enum().FullName():
		c.fail("%s changed from enum %s to enum %s", where, w.Enum().FullName(), r.Enum().FullName())
	case (rk == protoreflect.MessageKind || rk == protoreflect.GroupKind) && r.Message().FullName() != w.Message().FullName():
		c.fail("%s changed from message %s to message %s", where, w.Message().FullName(), r.Message().FullName())
	}
}

func (c *checker) enum(r, w protoreflect.EnumDescriptor) {
	for i := range w.Values().Len() {
		v := w.Values().Get(i)
		if r.Values().ByNumber(v.Number()) != nil {
			continue
		}
		// A removed value is compatible, as a removed field is: an open
		// enum keeps the number it does not know.
	}
}
