package cors

import (
	"errors"
	"fmt"
)

// FieldError is one problem with a policy spec. Messages are written for the
// policy's author, who reads them in the object's status or in corsgate's
// start-up error: each says what is wrong and what to write instead.
type FieldError struct {
	// Field is the path in the CorsPolicy spec, e.g. "spec.allowOrigins[2]".
	Field string
	// Value is the offending value, as written.
	Value string
	// Message says what is wrong and what to write instead.
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Warning is a risky but legal setting, reported on the object's status.
type Warning struct {
	Field   string
	Message string
}

func (w Warning) String() string { return w.Field + ": " + w.Message }

// FieldErrors lists the FieldErrors inside an error returned by Compile.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// problems accumulates every error and warning of one Compile call, so that
// an author fixes a spec in one round trip rather than one error at a time.
type problems struct {
	errs     []error
	warnings []Warning
}

func (p *problems) errorf(field string, index int, value, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Field: fieldPath(field, index), Value: value, Message: fmt.Sprintf(format, args...)})
}

func (p *problems) warnf(field string, index int, format string, args ...any) {
	p.warnings = append(p.warnings, Warning{Field: fieldPath(field, index), Message: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error { return errors.Join(p.errs...) }

func fieldPath(field string, index int) string {
	if index < 0 {
		return "spec." + field
	}
	return fmt.Sprintf("spec.%s[%d]", field, index)
}
