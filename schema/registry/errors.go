package registry

import "fmt"

// Error codes of Confluent's Schema Registry REST API (its
// rest/exceptions/Errors.java). A five-digit code's first three digits are
// its HTTP status; 409 is its own status.
const (
	CodeSubjectNotFound            = 40401
	CodeVersionNotFound            = 40402
	CodeSchemaNotFound             = 40403
	CodeSubjectSoftDeleted         = 40404
	CodeSubjectNotSoftDeleted      = 40405
	CodeVersionSoftDeleted         = 40406
	CodeVersionNotSoftDeleted      = 40407
	CodeSubjectConfigNotConfigured = 40408
	CodeSubjectModeNotConfigured   = 40409
	CodeIncompatibleSchema         = 409
	CodeInvalidSchema              = 42201
	CodeInvalidVersion             = 42202
	CodeInvalidCompatibilityLevel  = 42203
	CodeInvalidMode                = 42204
	CodeOperationNotPermitted      = 42205
	CodeReferenceExists            = 42206
	CodeIDDoesNotMatch             = 42207
	CodeInvalidSubject             = 42208
)

// Error is a registry failure as the REST API reports it.
type Error struct {
	Code    int
	Message string
	// Reasons are the incompatibilities behind a 409, one per line.
	Reasons []string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (error code %d)", e.Message, e.Code) }

// Status is the HTTP status that goes with the code.
func (e *Error) Status() int {
	if e.Code >= 10000 {
		return e.Code / 100
	}
	return e.Code
}

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func subjectNotFound(subject string) *Error {
	return errorf(CodeSubjectNotFound, "Subject '%s' not found.", subject)
}

func versionNotFound(version int) *Error {
	return errorf(CodeVersionNotFound, "Version %d not found.", version)
}
