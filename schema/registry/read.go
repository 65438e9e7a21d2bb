package registry

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Latest stands for a subject's latest version ("latest" or -1 in the API).
const Latest = -1

// ParseVersion reads a version as the API's paths give it: "latest", -1,
// or 1 to 2³¹-1. Anything else is 42202.
func ParseVersion(v string) (int, error) {
	if v == "latest" {
		return Latest, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || (n < 1 && n != Latest) {
		return 0, errorf(CodeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)
	}
	return int(n), nil
}

// ByID is the schema an id stands for, as GET /schemas/ids/{id} answers.
// Soft-deleted versions keep their ids readable.
func (s *State) ByID(id int) (Schema, error) {
	e := s.ids[id]
	if e == nil {
		return Schema{}, errorf(CodeSchemaNotFound, "Schema %d not found", id)
	}
	return Schema{Type: e.typ, Schema: e.text, References: slices.Clone(e.references)}, nil
}

// IDVersions are the versions that carry an id, in order, soft-deleted
// ones with deleted.
func (s *State) IDVersions(id int, deleted bool) ([]SubjectVersion, error) {
	e := s.ids[id]
	if e == nil {
		return nil, errorf(CodeSchemaNotFound, "Schema %d not found", id)
	}
	var out []SubjectVersion
	for sv := range e.users {
		if deleted || !s.subjects[sv.Subject][sv.Version].Deleted {
			out = append(out, sv)
		}
	}
	slices.SortFunc(out, func(a, b SubjectVersion) int {
		if a.Subject != b.Subject {
			return strings.Compare(a.Subject, b.Subject)
		}
		return a.Version - b.Version
	})
	return out, nil
}

// Subjects are the subjects with a live version (any version, with
// deleted), sorted.
func (s *State) Subjects(deleted bool) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(s.subjects)) {
		if len(s.versions(name, deleted)) > 0 {
			out = append(out, name)
		}
	}
	return out
}

// Versions are a subject's version numbers in order; 40401 when it has
// none (live ones, unless deleted).
func (s *State) Versions(subject string, deleted bool) ([]int, error) {
	vs := s.versions(subject, deleted)
	if len(vs) == 0 {
		return nil, subjectNotFound(subject)
	}
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out, nil
}

// GetVersion is one version of a subject, or its latest for Latest.
// Soft-deleted versions are found only with deleted.
func (s *State) GetVersion(subject string, version int, deleted bool) (Version, error) {
	v, err := s.find(subject, version, deleted)
	if err != nil {
		return Version{}, err
	}
	return copyVersion(v), nil
}

func copyVersion(v *Version) Version {
	c := *v
	c.References = slices.Clone(v.References)
	return c
}

func (s *State) find(subject string, version int, deleted bool) (*Version, error) {
	vs := s.versions(subject, deleted)
	if len(vs) == 0 {
		return nil, subjectNotFound(subject)
	}
	if version == Latest {
		return vs[len(vs)-1], nil
	}
	if version < 1 {
		return nil, errorf(CodeInvalidVersion, "The specified version '%d' is not a valid version id.", version)
	}
	v := s.subjects[subject][version]
	if v == nil || (v.Deleted && !deleted) {
		return nil, versionNotFound(version)
	}
	return v, nil
}

// Lookup finds the version of subject that holds sc (POST
// /subjects/{subject}): 40401 without the subject, 40403 without the schema,
// 42201 when sc does not compile. Soft-deleted versions count with deleted.
func (s *State) Lookup(subject string, sc Schema, deleted bool) (Version, error) {
	vs := s.versions(subject, deleted)
	if len(vs) == 0 {
		return Version{}, subjectNotFound(subject)
	}
	refs, err := s.pinReferences(sc.References)
	if err != nil {
		return Version{}, err
	}
	c, err := s.compile(Schema{Type: sc.Type, Schema: sc.Schema, References: refs})
	if err != nil {
		return Version{}, err
	}
	want := ident(c, refs)
	for i := len(vs) - 1; i >= 0; i-- {
		if got := s.compiledID(vs[i].ID); got != nil && got.err == nil && got.ident == want {
			return copyVersion(vs[i]), nil
		}
	}
	return Version{}, errorf(CodeSchemaNotFound, "Schema not found")
}

// ReferencedBy are the ids of the schemas that reference a version, sorted.
func (s *State) ReferencedBy(subject string, version int) ([]int, error) {
	v, err := s.find(subject, version, true)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, r := range s.referrers(SubjectVersion{v.Subject, v.Version}) {
		if !slices.Contains(out, r.ID) {
			out = append(out, r.ID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// CheckCompatibility tells whether sc may follow subject's versions at the
// subject's level (POST /compatibility/subjects/{subject}/versions[/{v}]):
// with version 0 against the versions the level names (the latest, or all
// live ones for a transitive level), else against that one version (or
// Latest). A subject without versions is compatible with anything when
// version is 0.
func (s *State) CheckCompatibility(subject string, version int, sc Schema) (bool, []string, error) {
	var olds []*Version
	if version == 0 {
		olds = s.versions(subject, false)
	} else {
		v, err := s.find(subject, version, false)
		if err != nil {
			return false, nil, err
		}
		olds = []*Version{v}
	}
	refs, err := s.pinReferences(sc.References)
	if err != nil {
		return false, nil, err
	}
	c, err := s.compile(Schema{Type: sc.Type, Schema: sc.Schema, References: refs})
	if err != nil {
		return false, nil, err
	}
	reasons := s.reasons(s.level(subject), c, olds)
	return len(reasons) == 0, reasons, nil
}

// pinReferences turns references to a subject's Latest version into its
// number; unknown ones are 42201.
func (s *State) pinReferences(refs []Reference) ([]Reference, error) {
	out := slices.Clone(refs)
	for i, r := range out {
		if r.Version != Latest {
			continue
		}
		v, err := s.find(r.Subject, Latest, false)
		if err != nil {
			return nil, errorf(CodeInvalidSchema, "Invalid schema: reference %q: %s", r.Name, err.(*Error).Message)
		}
		out[i].Version = v.Version
	}
	return out, nil
}
