package envoystandin

import (
	"fmt"
	"strings"
)

// Header is one header line: a name and a value. Names are compared
// case-insensitively; values are bytes as they travel (no trimming, no UTF-8
// checks), like Envoy's HeaderString.
type Header struct {
	Name  string
	Value string
}

// Headers is an ordered header list. Order and repetition are kept: a name
// may appear several times (set-cookie, or any name Envoy does not store as an
// inline header, docs/envoy.md#repeated-and-inline-headers).
type Headers []Header

// NewHeaders builds a list from name, value pairs:
//
//	envoystandin.NewHeaders("origin", "https://app.example", "accept", "*/*")
//
// It panics on an odd number of arguments, which is a bug in the caller.
func NewHeaders(nameValues ...string) Headers {
	if len(nameValues)%2 != 0 {
		panic(fmt.Sprintf("envoystandin.NewHeaders: odd number of arguments (%d): want name, value pairs", len(nameValues)))
	}
	h := make(Headers, 0, len(nameValues)/2)
	for i := 0; i < len(nameValues); i += 2 {
		h = append(h, Header{Name: nameValues[i], Value: nameValues[i+1]})
	}
	return h
}

// Get returns the first value of name (case-insensitive), or "".
func (h Headers) Get(name string) string {
	for _, e := range h {
		if strings.EqualFold(e.Name, name) {
			return e.Value
		}
	}
	return ""
}

// Values returns every value of name (case-insensitive), in order. Each
// entry is one header line: an inline header that Envoy folded shows up
// as a single comma-joined value.
func (h Headers) Values(name string) []string {
	var vs []string
	for _, e := range h {
		if strings.EqualFold(e.Name, name) {
			vs = append(vs, e.Value)
		}
	}
	return vs
}

// Has reports whether name is present (case-insensitive).
func (h Headers) Has(name string) bool {
	for _, e := range h {
		if strings.EqualFold(e.Name, name) {
			return true
		}
	}
	return false
}

// String renders the list one "name: value" per line, for failure messages.
func (h Headers) String() string {
	var b strings.Builder
	for _, e := range h {
		fmt.Fprintf(&b, "%s: %q\n", e.Name, e.Value)
	}
	return b.String()
}

// headerMap reproduces the parts of Envoy's HeaderMapImpl that ext_proc can
// observe (source/common/http/header_map_impl.cc):
//
//   - keys are lower-case;
//   - pseudo-headers (":authority", ":status", ...) always come first, new
//     ones are inserted after the last pseudo-header;
//   - addCopy on an inline name that already exists appends to that single
//     entry with "," and no space (appendToHeader); other names get a second
//     entry (docs/envoy.md#repeated-and-inline-headers, docs/envoy.md#how-request-headers-arrive);
//   - setCopy removes every entry of the name and adds one at the end
//     (remove + addCopy).
type headerMap struct {
	entries []Header
	inline  map[string]bool
}

func newHeaderMap(inline map[string]bool) *headerMap {
	return &headerMap{inline: inline}
}

func (m *headerMap) first(key string) (string, bool) {
	for _, e := range m.entries {
		if e.Name == key {
			return e.Value, true
		}
	}
	return "", false
}

func (m *headerMap) has(key string) bool {
	_, ok := m.first(key)
	return ok
}

// remove drops every entry of a lower-case key.
func (m *headerMap) remove(key string) {
	kept := m.entries[:0]
	for _, e := range m.entries {
		if e.Name != key {
			kept = append(kept, e)
		}
	}
	clear(m.entries[len(kept):])
	m.entries = kept
}

// addCopy is HeaderMapImpl::addCopy → insertByKey.
func (m *headerMap) addCopy(key, value string) {
	if m.inline[key] {
		for i := range m.entries {
			if m.entries[i].Name != key {
				continue
			}
			// appendToHeader: nothing to add for an empty value; no delimiter
			// in front of an empty existing value.
			switch {
			case value == "":
			case m.entries[i].Value == "":
				m.entries[i].Value = value
			default:
				m.entries[i].Value += "," + value
			}
			return
		}
	}
	m.insert(key, value)
}

// setCopy is HeaderMapImpl::setCopy: replace every value with one.
func (m *headerMap) setCopy(key, value string) {
	m.remove(key)
	m.insert(key, value)
}

// setInline is the setter of an inline header (setStatus, setContentLength,
// setReferenceContentType...): it updates the existing entry in place, so the
// header keeps its position, or inserts a new one.
func (m *headerMap) setInline(key, value string) {
	for i := range m.entries {
		if m.entries[i].Name == key {
			m.entries[i].Value = value
			return
		}
	}
	m.insert(key, value)
}

// insert adds a new entry, keeping pseudo-headers in front (HeaderList::insert).
func (m *headerMap) insert(key, value string) {
	if !strings.HasPrefix(key, ":") {
		m.entries = append(m.entries, Header{Name: key, Value: value})
		return
	}
	at := 0
	for at < len(m.entries) && strings.HasPrefix(m.entries[at].Name, ":") {
		at++
	}
	m.entries = append(m.entries, Header{})
	copy(m.entries[at+1:], m.entries[at:])
	m.entries[at] = Header{Name: key, Value: value}
}

// size is HeaderMap::size(): the number of entries, pseudo-headers included.
func (m *headerMap) size() int { return len(m.entries) }

// byteSize is HeaderMap::byteSize(): keys plus values.
func (m *headerMap) byteSize() int {
	n := 0
	for _, e := range m.entries {
		n += len(e.Name) + len(e.Value)
	}
	return n
}

// regular returns the entries that are not pseudo-headers, as a copy.
func (m *headerMap) regular() Headers {
	out := make(Headers, 0, len(m.entries))
	for _, e := range m.entries {
		if !strings.HasPrefix(e.Name, ":") {
			out = append(out, e)
		}
	}
	return out
}
