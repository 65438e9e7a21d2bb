package registry

import (
	"maps"
	"slices"
	"unicode"

	"github.com/meshka/meshka/schema"
)

// Op is a change to the registry, planned by State.Plan.
type Op interface {
	plan(s *State) ([]Record, Result, error)
}

// Result is what a planned change answers, once its records are written:
// the fields its Op names.
type Result struct {
	ID       int    // Register
	Version  int    // Register, DeleteVersion
	Versions []int  // DeleteSubject
	Config   Config // SetConfig: the new config; DeleteConfig: the one deleted
	Mode     Mode   // SetMode: the new mode; DeleteMode: the one deleted
}

// Plan validates op against the state and returns the records that make
// the change, without changing anything: the single writer writes them to
// the _schemas topic in order, and every node, the writer included, applies
// them as it reads them back. Its errors are *Error. Records that are
// empty mean there is nothing to write (registering a schema the subject
// already holds).
//
// Two writers planning against the same state would both give out the same
// next id: the caller keeps one writer, which plans against a state that has
// applied everything it wrote before.
func (s *State) Plan(op Op) ([]Record, Result, error) {
	return op.plan(s)
}

// Register registers a schema under a subject (POST
// /subjects/{subject}/versions). ID and Version are for IMPORT mode only.
type Register struct {
	Subject   string
	Schema    Schema
	Normalize bool
	ID        int
	Version   int
}

func (op Register) plan(s *State) ([]Record, Result, error) {
	if err := validSubject(op.Subject); err != nil {
		return nil, Result{}, err
	}
	mode := s.mode(op.Subject)
	switch {
	case mode == ReadOnly:
		return nil, Result{}, errorf(CodeOperationNotPermitted, "Subject %s is in read-only mode", op.Subject)
	case mode != Import && (op.ID != 0 || op.Version != 0):
		return nil, Result{}, errorf(CodeOperationNotPermitted, "A schema id or version may be given only in IMPORT mode")
	case op.ID < 0 || op.Version < 0:
		return nil, Result{}, errorf(CodeInvalidSchema, "Invalid schema: id %d, version %d", op.ID, op.Version)
	}
	refs, err := s.pinReferences(op.Schema.References)
	if err != nil {
		return nil, Result{}, err
	}
	sc := Schema{Type: op.Schema.Type, Schema: op.Schema.Schema, References: refs}
	c, err := s.compile(sc)
	if err != nil {
		return nil, Result{}, err
	}
	sc.Type = c.Type()
	if op.Normalize || s.normalize(op.Subject) {
		sc.Schema = c.Normalized()
	}
	id := ident(c, refs)

	live := s.versions(op.Subject, false)
	for _, v := range live {
		if got := s.compiledID(v.ID); got != nil && got.ident == id && (op.ID == 0 || op.ID == v.ID) {
			return nil, Result{ID: v.ID, Version: v.Version}, nil
		}
	}
	if mode != Import {
		if reasons := s.reasons(s.level(op.Subject), c, live); len(reasons) > 0 {
			return nil, Result{}, &Error{Code: CodeIncompatibleSchema, Reasons: reasons,
				Message: "Schema being registered is incompatible with an earlier schema for subject \"" + op.Subject + "\""}
		}
	}

	newID := op.ID
	if newID != 0 {
		if e := s.ids[newID]; e != nil {
			if got := s.compiledID(newID); got == nil || got.ident != id {
				return nil, Result{}, errorf(CodeIDDoesNotMatch, "Schema id %d already stands for another schema", newID)
			}
			sc.Schema = e.text
		}
	} else {
		newID = s.maxID + 1
		for _, eid := range slices.Sorted(maps.Keys(s.ids)) {
			if got := s.compiledID(eid); got != nil && got.ident == id {
				newID, sc.Schema = eid, s.ids[eid].text
				break
			}
		}
	}
	version := op.Version
	if version == 0 {
		version = 1
		if all := s.versions(op.Subject, true); len(all) > 0 {
			version = all[len(all)-1].Version + 1
		}
	} else if s.subjects[op.Subject][version] != nil {
		return nil, Result{}, errorf(CodeInvalidVersion, "Version %d of subject %s already exists", version, op.Subject)
	}
	v := schemaValue{Subject: op.Subject, Version: version, ID: newID, References: refs, Schema: sc.Schema}
	if sc.Type != schema.Avro {
		v.SchemaType = string(sc.Type)
	}
	return []Record{{Key: schemaKey(op.Subject, version), Value: encode(v)}}, Result{ID: newID, Version: version}, nil
}

// validSubject refuses empty subjects and control characters (42208).
func validSubject(subject string) error {
	if subject == "" || !utf8Printable(subject) {
		return errorf(CodeInvalidSubject, "The specified subject '%s' is not a valid subject", subject)
	}
	return nil
}

func utf8Printable(s string) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// DeleteSubject deletes every version of a subject (DELETE
// /subjects/{subject}): soft first, then with Permanent for good.
type DeleteSubject struct {
	Subject   string
	Permanent bool
}

func (op DeleteSubject) plan(s *State) ([]Record, Result, error) {
	if s.mode(op.Subject) == ReadOnly {
		return nil, Result{}, errorf(CodeOperationNotPermitted, "Subject %s is in read-only mode", op.Subject)
	}
	all := s.versions(op.Subject, true)
	if len(all) == 0 {
		return nil, Result{}, subjectNotFound(op.Subject)
	}
	live := s.versions(op.Subject, false)
	targets := live
	switch {
	case !op.Permanent && len(live) == 0:
		return nil, Result{}, errorf(CodeSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", op.Subject)
	case op.Permanent && len(live) > 0:
		return nil, Result{}, errorf(CodeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", op.Subject)
	case op.Permanent:
		targets = all
	}
	var res Result
	for _, v := range targets {
		if err := s.unreferenced(v); err != nil {
			return nil, Result{}, err
		}
		res.Versions = append(res.Versions, v.Version)
	}
	if !op.Permanent {
		val := deleteSubjectValue{Subject: op.Subject, Version: live[len(live)-1].Version}
		return []Record{{Key: deleteSubjectKey(op.Subject), Value: encode(val)}}, res, nil
	}
	var recs []Record
	for _, v := range all {
		recs = append(recs, Record{Key: schemaKey(op.Subject, v.Version)})
	}
	if _, ok := s.configs[op.Subject]; ok {
		recs = append(recs, Record{Key: configKey(op.Subject)})
	}
	if _, ok := s.modes[op.Subject]; ok {
		recs = append(recs, Record{Key: modeKey(op.Subject)})
	}
	return append(recs, s.keepMaxID(all)...), res, nil
}

// DeleteVersion deletes one version (DELETE
// /subjects/{subject}/versions/{version}): soft first, then with Permanent
// for good. Version may be Latest.
type DeleteVersion struct {
	Subject   string
	Version   int
	Permanent bool
}

func (op DeleteVersion) plan(s *State) ([]Record, Result, error) {
	if s.mode(op.Subject) == ReadOnly {
		return nil, Result{}, errorf(CodeOperationNotPermitted, "Subject %s is in read-only mode", op.Subject)
	}
	// Latest is the latest live version for a soft delete; a numbered one
	// is found soft-deleted too, to say so (40406).
	v, err := s.find(op.Subject, op.Version, op.Permanent || op.Version != Latest)
	if err != nil {
		return nil, Result{}, err
	}
	switch {
	case !op.Permanent && v.Deleted:
		return nil, Result{}, errorf(CodeVersionSoftDeleted, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", v.Subject, v.Version)
	case op.Permanent && !v.Deleted:
		return nil, Result{}, errorf(CodeVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", v.Subject, v.Version)
	}
	if err := s.unreferenced(v); err != nil {
		return nil, Result{}, err
	}
	res := Result{Version: v.Version}
	k := schemaKey(v.Subject, v.Version)
	if op.Permanent {
		return append([]Record{{Key: k}}, s.keepMaxID([]*Version{v})...), res, nil
	}
	val := schemaValue{Subject: v.Subject, Version: v.Version, ID: v.ID, References: v.References, Schema: v.Schema, Deleted: true}
	if v.Type != schema.Avro {
		val.SchemaType = string(v.Type)
	}
	return []Record{{Key: k, Value: encode(val)}}, res, nil
}

// unreferenced refuses to delete a version another schema references (42206).
func (s *State) unreferenced(v *Version) error {
	if refs := s.referrers(SubjectVersion{v.Subject, v.Version}); len(refs) > 0 {
		return errorf(CodeReferenceExists, "One or more references exist to the schema {subject=%s,version=%d}: %s version %d",
			v.Subject, v.Version, refs[0].Subject, refs[0].Version)
	}
	return nil
}

// keepMaxID is the NOOP record that keeps the highest id given when gone
// removes the last version carrying it.
func (s *State) keepMaxID(gone []*Version) []Record {
	e := s.ids[s.maxID]
	if e == nil {
		return nil // gone already, and its NOOP written then
	}
	for sv := range e.users {
		if !slices.ContainsFunc(gone, func(v *Version) bool { return v.Subject == sv.Subject && v.Version == sv.Version }) {
			return nil
		}
	}
	return []Record{{Key: noopKey(), Value: encode(noopValue{MaxID: s.maxID})}}
}

// SetConfig sets a subject's configuration, or the global one for Subject
// "" (PUT /config[/{subject}]). Fields left empty keep their value.
type SetConfig struct {
	Subject string
	Config  Config
}

func (op SetConfig) plan(s *State) ([]Record, Result, error) {
	c := op.Config
	if c.Compatibility != "" && !c.Compatibility.valid() {
		return nil, Result{}, errorf(CodeInvalidCompatibilityLevel, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
	}
	old := s.configs[op.Subject]
	if c.Compatibility == "" {
		c.Compatibility = old.Compatibility
	}
	if c.Normalize == nil {
		c.Normalize = old.Normalize
	}
	if c.Compatibility == "" && c.Normalize == nil {
		return nil, Result{}, errorf(CodeInvalidCompatibilityLevel, "Invalid compatibility level: none given")
	}
	v := configValue{Subject: op.Subject, CompatibilityLevel: c.Compatibility, Normalize: c.Normalize}
	return []Record{{Key: configKey(op.Subject), Value: encode(v)}}, Result{Config: c}, nil
}

// DeleteConfig deletes a subject's configuration, or resets the global one
// for Subject "" (DELETE /config[/{subject}]).
type DeleteConfig struct{ Subject string }

func (op DeleteConfig) plan(s *State) ([]Record, Result, error) {
	old, ok := s.configs[op.Subject]
	if !ok && op.Subject != "" {
		return nil, Result{}, errorf(CodeSubjectConfigNotConfigured, "Subject '%s' does not have subject-level compatibility configured", op.Subject)
	}
	if op.Subject == "" {
		old = s.global()
	}
	return []Record{{Key: configKey(op.Subject)}}, Result{Config: old}, nil
}

// SetMode sets a subject's mode, or the global one for Subject "" (PUT
// /mode[/{subject}]). IMPORT is refused while there are schemas it would
// apply to, unless Force.
type SetMode struct {
	Subject string
	Mode    Mode
	Force   bool
}

func (op SetMode) plan(s *State) ([]Record, Result, error) {
	if !op.Mode.valid() {
		return nil, Result{}, errorf(CodeInvalidMode, "Invalid mode. Valid values are READWRITE, READONLY and IMPORT")
	}
	if op.Mode == Import && !op.Force {
		if (op.Subject == "" && len(s.subjects) > 0) || len(s.subjects[op.Subject]) > 0 {
			return nil, Result{}, errorf(CodeOperationNotPermitted, "Cannot import since found existing subjects")
		}
	}
	v := modeValue{Subject: op.Subject, Mode: op.Mode}
	return []Record{{Key: modeKey(op.Subject), Value: encode(v)}}, Result{Mode: op.Mode}, nil
}

// DeleteMode deletes a subject's mode, or resets the global one for
// Subject "" (DELETE /mode[/{subject}]).
type DeleteMode struct{ Subject string }

func (op DeleteMode) plan(s *State) ([]Record, Result, error) {
	old, ok := s.modes[op.Subject]
	if !ok && op.Subject != "" {
		return nil, Result{}, errorf(CodeSubjectModeNotConfigured, "Subject '%s' does not have subject-level mode configured", op.Subject)
	}
	if op.Subject == "" {
		old = s.mode("")
	}
	return []Record{{Key: modeKey(op.Subject)}}, Result{Mode: old}, nil
}
