package cors

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
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
	p.errs = append(p.errs, &FieldError{Field: fieldPath(field, index), Value: Clip(value), Message: fmt.Sprintf(format, args...)})
}

// MaxQuoted is how many bytes of a value a message quotes. A policy file
// may hold a 50 MB value: quoted whole, it became a 52 MB log line (and a
// 157 MB lint report). No legal value is longer than the CRD's 1024 bytes,
// and the first 128 show which value is meant.
const MaxQuoted = 128

// Clip cuts s to MaxQuoted bytes (at a character boundary), ending in "…"
// when it cut.
func Clip(s string) string {
	if len(s) <= MaxQuoted {
		return s
	}
	cut := MaxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Quote quotes s for a message, Go-style, cut as Clip does; a cut value
// says its length.
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(Clip(s)) + fmt.Sprintf(" (%d bytes)", len(s))
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
