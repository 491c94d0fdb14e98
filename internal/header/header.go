// Package header is the one name/value pair both the CORS engine and the
// ext_proc codec speak.
package header

// Field is one HTTP header field.
type Field struct {
	Name, Value string
}
