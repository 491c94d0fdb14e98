package filesource

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/suggest"
)

// DocError is a problem found while reading a policy file, before any
// policy is compiled: where it is (the document, the List item, the object,
// the field), what is wrong, and what to write instead. The server refuses
// the file; corsgate lint reports each one.
type DocError struct {
	File string
	// Document is the document's number in the file, from 1; Item its
	// index in a List's items, or -1.
	Document, Item int
	// Object is "namespace/name" when the object's name could be read.
	Object string
	// Field is the path of the field at fault, e.g. spec.allowCredentials.
	Field   string
	Message string
	// Fix is what to write instead.
	Fix string
}

func (e *DocError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Document > 0 {
		fmt.Fprintf(&b, ": document %d", e.Document)
	}
	if e.Item >= 0 {
		fmt.Fprintf(&b, ", items[%d]", e.Item)
	}
	if e.Object != "" {
		fmt.Fprintf(&b, " (CorsPolicy %s)", e.Object)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Message)
	if e.Fix != "" {
		b.WriteString(": " + e.Fix)
	}
	return b.String()
}

// Group is corsgate's API group. A document in it that corsgate does not
// understand (a misspelt kind) is an error, never skipped: skipping it would
// report a policy as checked that never was.
const Group = "policy.corsgate.io"

const kindCorsPolicy = "CorsPolicy"

// kinds are the kinds of Group; only CorsPolicy is served from files
// (CorsHostGrants are the cluster administrators', and file mode has one
// trusted author).
var kinds = []string{kindCorsPolicy, "CorsHostGrant"}

// LoadFile reads one policy file with the server's loader. Unlike Load, its
// error lists every problem of every document (each a *DocError, joined),
// so that corsgate lint reports them all.
func LoadFile(file string) ([]Object, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileBytes {
		return nil, tooLarge(file, st.Size())
	}
	data, err := readFile(file)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, tooLarge(file, int64(len(data)))
	}
	objs, errs := parseFile(file, data)
	return objs, errors.Join(errs...)
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// parseFile reads every document of a file: what kubectl prints (several
// documents, a List of items) and what people write.
func parseFile(file string, data []byte) ([]Object, []error) {
	var objs []Object
	var errs []error
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, &DocError{File: file, Document: n, Item: -1, Message: "cannot be read: " + clipText(err.Error()), Fix: "check the YAML"})
			break
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		js, err := sigsyaml.YAMLToJSON(doc)
		if err != nil {
			errs = append(errs, &DocError{File: file, Document: n, Item: -1, Message: "is not valid YAML (" + clipText(err.Error()) + ")", Fix: "fix the YAML"})
			continue
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue // comments only
		}
		var tm typeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			errs = append(errs, &DocError{File: file, Document: n, Item: -1, Message: "is not an object with apiVersion and kind", Fix: "write a Kubernetes object, such as kind: CorsPolicy"})
			continue
		}
		if isList(tm) {
			var list struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(js, &list); err != nil {
				errs = append(errs, &DocError{File: file, Document: n, Item: -1, Field: "items", Message: "is not a list of objects", Fix: "write items: [...] as kubectl get -o yaml prints it"})
				continue
			}
			for i, item := range list.Items {
				o, ierrs := parseObject(file, n, i, item)
				objs, errs = append(objs, o...), append(errs, ierrs...)
			}
			continue
		}
		o, derrs := parseObject(file, n, -1, js)
		objs, errs = append(objs, o...), append(errs, derrs...)
	}
	return objs, errs
}

// isList says whether a document is a List (kind: List, as kubectl get
// prints several objects, or CorsPolicyList).
func isList(tm typeMeta) bool {
	return tm.Kind == "List" || strings.HasSuffix(tm.Kind, "List") && groupOf(tm.APIVersion) == Group
}

func groupOf(apiVersion string) string {
	g, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return "" // the core group: "v1"
	}
	return g
}

// parseObject reads one object (a document, or an item of a List).
func parseObject(file string, doc, item int, js []byte) ([]Object, []error) {
	at := func(field, msg, fix string) *DocError {
		return &DocError{File: file, Document: doc, Item: item, Field: field, Message: msg, Fix: fix}
	}
	var tm typeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, []error{at("", "is not an object with apiVersion and kind", "write a Kubernetes object, such as kind: CorsPolicy")}
	}
	switch {
	case tm.Kind == kindCorsPolicy:
		if tm.APIVersion != v1alpha1.GroupVersion.String() {
			return nil, []error{at("apiVersion", cors.Quote(tm.APIVersion)+" is not the API version of CorsPolicy", "write apiVersion: "+v1alpha1.GroupVersion.String())}
		}
	case groupOf(tm.APIVersion) == Group && !slices.Contains(kinds, tm.Kind):
		fix := kindCorsPolicy
		if near := suggest.Closest(tm.Kind, kinds); near != "" {
			fix = near
		}
		return nil, []error{at("kind", fmt.Sprintf("%s is not a kind of %s (its kinds are %s), so this document would be skipped", cors.Quote(tm.Kind), Group, strings.Join(kinds, " and ")), "write kind: "+fix)}
	default:
		return nil, nil // another kind: a kustomization, a Deployment, a CorsHostGrant
	}

	var p v1alpha1.CorsPolicy
	var meta struct {
		Metadata struct {
			Name, Namespace string
		}
	}
	_ = json.Unmarshal(js, &meta) // best effort: to name the object in errors
	object := ""
	if meta.Metadata.Name != "" {
		ns := meta.Metadata.Namespace
		if ns == "" {
			ns = "default"
		}
		object = cors.Clip(ns + "/" + meta.Metadata.Name)
	}
	named := func(errs []error) []error {
		for _, e := range errs {
			if de, ok := errors.AsType[*DocError](e); ok {
				de.Object = object
			}
		}
		return errs
	}

	var raw any
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, named([]error{at("", "cannot be read: "+clipText(err.Error()), "check the YAML")})
	}
	var errs []error
	checkFields(raw, reflect.TypeFor[v1alpha1.CorsPolicy](), "", func(field, msg, fix string) {
		errs = append(errs, at(field, msg, fix))
	})
	if len(errs) > 0 {
		return nil, named(append(errs, checkNames(meta.Metadata.Name, meta.Metadata.Namespace, at)...))
	}
	// Strict: the same decoder the checks above explain, as the API server
	// would decode it; an error the walk did not explain is reported as is.
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, named([]error{at("", "cannot be read: "+clipText(err.Error()), "check the field's type against kubectl explain corspolicy")})
	}
	if p.Name == "" {
		return nil, []error{at("metadata.name", "CorsPolicy has no metadata.name", "add one")}
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if errs := checkNames(p.Name, p.Namespace, at); len(errs) > 0 {
		return nil, named(errs)
	}
	return []Object{{File: file, Policy: p}}, nil
}

// checkNames checks names as the API server does: a CorsPolicy's name is a
// DNS-1123 subdomain, a namespace's a DNS-1123 label ("" is "default").
func checkNames(name, namespace string, at func(field, msg, fix string) *DocError) []error {
	var errs []error
	if name == "" {
		return nil // said on its own
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		errs = append(errs, at("metadata.name", cors.Quote(name)+" is not a valid object name, which the API server refuses ("+clipText(strings.Join(msgs, "; "))+")",
			"write "+strconv.Quote(dnsName(name, validation.DNS1123SubdomainMaxLength))))
	}
	if namespace == "" {
		return errs
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		errs = append(errs, at("metadata.namespace", cors.Quote(namespace)+" is not a valid namespace name ("+clipText(strings.Join(msgs, "; "))+")",
			"write "+strconv.Quote(strings.ReplaceAll(dnsName(namespace, validation.DNS1123LabelMaxLength), ".", "-"))))
	}
	return errs
}

// dnsName is the closest DNS-1123 name to s: lower case, every other
// character a '-', no '-' or '.' at either end, at most max bytes.
func dnsName(s string, max int) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	for strings.Contains(out, "--") {
		out = strings.ReplaceAll(out, "--", "-")
	}
	if len(out) > max {
		out = out[:max]
	}
	out = strings.Trim(out, "-.")
	if out == "" {
		return "my-policy"
	}
	return out
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// checkFields walks a decoded JSON value v against the Go type t it will
// be decoded into, and reports each unknown field (with the closest known
// one) and each value of the wrong type (with the type expected), by path:
// what Go's decoder says without a path ("json: unknown field", "cannot
// unmarshal string into Go struct field ... of type int32").
func checkFields(v any, t reflect.Type, path string, report func(field, msg, fix string)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil || t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return // null is accepted everywhere; a type with its own format (a time) checks itself
	}
	wrong := func(want, example string) {
		last := path[strings.LastIndexAny(path, ".]")+1:]
		fix := "write " + want
		if example != "" {
			fix += ", e.g. " + last + ": " + example
		}
		report(path, fmt.Sprintf("is %s, not %s", describe(v), want), fix)
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			wrong("an object", "")
			return
		}
		fields := jsonFields(t)
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		slices.Sort(names)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				field := join(path, k)
				if near := suggest.Closest(k, names); near != "" {
					report(field, "unknown field "+cors.Quote(k), "write "+near)
				} else {
					report(field, "unknown field "+cors.Quote(k), "remove it (the fields here are "+strings.Join(names, ", ")+")")
				}
				continue
			}
			checkFields(m[k], ft, join(path, k), report)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			wrong("an object of key: value", "")
			return
		}
		for k, val := range m {
			checkFields(val, t.Elem(), join(path, k), report)
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := v.(string); !ok {
				wrong("a base64 string", "")
			}
			return
		}
		list, ok := v.([]any)
		if !ok {
			example := ""
			if s, isStr := v.(string); isStr {
				example = "[" + strconv.Quote(cors.Clip(s)) + "]"
			}
			wrong("a list", example)
			return
		}
		for i, item := range list {
			checkFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), report)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			wrong("a string", "")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			example := "true"
			if s, isStr := v.(string); isStr && (s == "true" || s == "false") {
				example = s + " (without quotes)"
			}
			wrong("true or false", example)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f, ok := v.(float64)
		if ok && f == math.Trunc(f) && overflows(f, t) {
			report(path, fmt.Sprintf("%s is out of range for a %d-bit integer", describe(v), t.Bits()), "write a smaller number")
			return
		}
		if !ok || f != math.Trunc(f) {
			example := ""
			if s, isStr := v.(string); isStr {
				if n, err := strconv.ParseInt(strings.TrimSuffix(s, "s"), 10, 64); err == nil {
					example = strconv.FormatInt(n, 10) + " (a number, without quotes or unit)"
				}
			}
			wrong("an integer", example)
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); !ok {
			wrong("a number", "")
		}
	}
}

// overflows says whether the integral f does not fit the integer type t.
// float64(math.MaxInt64) is 2^63 and float64(math.MaxUint64) 2^64, one past
// each range: converting them is not defined, so they count as overflows.
func overflows(f float64, t reflect.Type) bool {
	z := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return f < 0 || f >= math.MaxUint64 || z.OverflowUint(uint64(f))
	}
	return f < math.MinInt64 || f >= math.MaxInt64 || z.OverflowInt(int64(f))
}

// describe says what a decoded JSON value is, for "is X, not Y".
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "the string " + cors.Quote(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e21 {
			return "the number " + strconv.FormatFloat(x, 'f', -1, 64)
		}
		return "the number " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// jsonFields maps the JSON names of a struct's fields (inlined and
// embedded structs' fields included) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" || !f.IsExported() && !f.Anonymous {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) && ft.Kind() == reflect.Struct {
			maps.Copy(out, jsonFields(ft))
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// clipText cuts a message from a library (which may quote a whole value).
func clipText(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
