// Package protobuf compiles .proto schemas with bufbuild/protocompile,
// validates Protobuf payloads with dynamicpb, and checks wire
// compatibility by meshka's rules (compat.go).
package protobuf

import (
	"context"
	"fmt"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/meshka/meshka/schema"
)

// Schema is a compiled .proto file.
type Schema struct {
	fd        protoreflect.FileDescriptor
	text      string
	canonical string
}

var _ schema.Schema = (*Schema)(nil)

// Parse compiles text as a .proto file. refs are the files it imports, by
// import path; google/protobuf/*.proto (the well-known types) are always
// there.
func Parse(text string, refs []schema.Reference) (*Schema, error) {
	files := make(map[string]string, len(refs)+1)
	for _, r := range refs {
		files[r.Name] = r.Schema
	}
	main := "schema.proto"
	for i := 1; has(files, main); i++ {
		main = fmt.Sprintf("schema-%d.proto", i)
	}
	files[main] = text
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(files),
		}),
		MaxParallelism: 1,
	}
	compiled, err := c.Compile(context.Background(), main)
	if err != nil {
		return nil, fmt.Errorf("protobuf schema: %w", err)
	}
	fd := compiled[0]
	// The descriptor without positions or comments, under a fixed name, is
	// the schema's identity: formatting and comments do not count.
	fdp := protodesc.ToFileDescriptorProto(fd)
	fdp.Name = proto.String("schema.proto")
	fdp.SourceCodeInfo = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fdp)
	if err != nil {
		return nil, fmt.Errorf("protobuf schema: %w", err)
	}
	return &Schema{fd: fd, text: text, canonical: string(b)}, nil
}

func has(files map[string]string, name string) bool {
	_, ok := files[name]
	return ok
}

// Type is schema.Protobuf.
func (*Schema) Type() schema.Type { return schema.Protobuf }

// Canonical is the file's descriptor (a FileDescriptorProto without source
// info, marshalled deterministically): bytes, not text.
func (s *Schema) Canonical() string { return s.canonical }

// Normalized is the text as given: meshka does not print .proto files.
func (s *Schema) Normalized() string { return s.text }

// Descriptor is the compiled file.
func (s *Schema) Descriptor() protoreflect.FileDescriptor { return s.fd }

// Message is the message at a message-index path: [i] the file's i-th
// message, [i, j] the j-th message nested in it, and so on; nil or empty
// is [0].
func (s *Schema) Message(indexes []int) (protoreflect.MessageDescriptor, error) {
	if len(indexes) == 0 {
		indexes = []int{0}
	}
	msgs := s.fd.Messages()
	var md protoreflect.MessageDescriptor
	for depth, i := range indexes {
		if i < 0 || i >= msgs.Len() {
			where := "the file"
			if md != nil {
				where = string(md.FullName())
			}
			return nil, fmt.Errorf("message index path %v: index %d is %d, %s has %d messages", indexes, depth, i, where, msgs.Len())
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md, nil
}

// Validate decodes payload as the message at indexes, with its required
// fields (proto2) checked and proto3 strings checked for UTF-8. Unknown
// fields are valid, as they are to every Protobuf reader.
func (s *Schema) Validate(payload []byte, indexes []int) error {
	md, err := s.Message(indexes)
	if err != nil {
		return fmt.Errorf("protobuf payload: %w", err)
	}
	if err := proto.Unmarshal(payload, dynamicpb.NewMessage(md)); err != nil {
		return fmt.Errorf("protobuf payload: %s: %w", md.FullName(), err)
	}
	return nil
}
