// Command values-schema writes the chart's values.schema.json from its
// commented values.yaml, so the schema and the documented defaults cannot
// drift apart (`make manifests` runs it; `make verify` fails on a stale
// schema). It plays the part of cert-manager's helm-tool, which the build
// machines cannot fetch.
//
// What it writes, per key of values.yaml:
//
//   - the type of the default: integer, number, boolean, string; a non-empty
//     map is an object with exactly its keys (additionalProperties: false),
//     each required unless its default is null, {} or [] (Helm drops a key a
//     user sets to null: required keys are the ones that may not be dropped);
//     an empty map is a map of strings (labels, annotations); a non-empty
//     list's items have the type of its first element;
//   - the description: the helm-docs comment, from "# --" to the end of the
//     comment block above the key (or to an @schema line);
//   - an @schema annotation, the last lines of that comment block: YAML (or
//     JSON) after "# @schema", up to the end of the block, merged over what
//     was inferred. It carries what a default cannot say: enums, patterns,
//     bounds, the item type of an empty list, the fields of an empty map, the
//     type of a null, the keys a user may null out. Maps merge key by key,
//     anything else replaces, so an object's "required" replaces the inferred
//     list; an annotation with "type", "oneOf" or "anyOf" replaces the
//     inferred schema whole. An @schema in the file's first comment block
//     applies to the root.
//
// A value that ends up with no type (a null or an empty list without an
// @schema saying what it holds) is an error: every value is typed.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

const jsonSchemaDraft = "https://json-schema.org/draft-07/schema#"

func main() {
	values := flag.String("values", "charts/corsgate/values.yaml", "the commented values file")
	out := flag.String("out", "charts/corsgate/values.schema.json", "where to write the schema")
	flag.Parse()
	src, err := os.ReadFile(*values)
	if err != nil {
		log.Fatal(err)
	}
	schema, err := generate(src)
	if err != nil {
		log.Fatalf("%s: %v", *values, err)
	}
	if err := os.WriteFile(*out, schema, 0o644); err != nil {
		log.Fatal(err)
	}
}

// generate returns the JSON schema, indented, of a commented values file.
func generate(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the values are not a map: the file's top level must be keys (key: value)")
	}
	g := generator{lines: strings.Split(string(src), "\n")}
	// The root's comment block is the file's first one, ahead of any key.
	header := 0
	for header < len(g.lines) && strings.HasPrefix(strings.TrimSpace(g.lines[header]), "#") {
		header++
	}
	root, err := g.schema(doc.Content[0], g.lines[:header], "(root)")
	if err != nil {
		return nil, err
	}
	root["$schema"] = jsonSchemaDraft
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // patterns hold < and >, which need no escaping in a file
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type generator struct {
	lines []string // the values file, to read the comments above each key
}

// schema infers the schema of a value from its default, then applies the
// description and @schema annotation of its comment block.
func (g generator) schema(value *yaml.Node, comment []string, path string) (map[string]any, error) {
	s, err := g.infer(value, path)
	if err != nil {
		return nil, err
	}
	description, note, err := parseComment(comment)
	if err != nil {
		return nil, fmt.Errorf("%s: @schema: %w", path, err)
	}
	// An annotation that gives the type describes the value itself: what the
	// default suggests (a map of cpu and memory strings, say) must not stay.
	if note["type"] != nil || note["oneOf"] != nil || note["anyOf"] != nil {
		s = map[string]any{}
	}
	if description != "" {
		s["description"] = description
	}
	merge(s, note)
	if required, ok := s["required"].([]any); ok && len(required) == 0 {
		delete(s, "required")
	}
	if s["type"] == nil && s["oneOf"] == nil && s["anyOf"] == nil && s["enum"] == nil {
		return nil, fmt.Errorf("%s: no type can be inferred from the default: give one with @schema", path)
	}
	if s["type"] == "array" && s["items"] == nil {
		return nil, fmt.Errorf("%s: an empty list: give its items with @schema", path)
	}
	return s, nil
}

func (g generator) infer(value *yaml.Node, path string) (map[string]any, error) {
	switch value.Kind {
	case yaml.ScalarNode:
		switch value.Tag {
		case "!!int":
			return map[string]any{"type": "integer"}, nil
		case "!!float":
			return map[string]any{"type": "number"}, nil
		case "!!bool":
			return map[string]any{"type": "boolean"}, nil
		case "!!str":
			return map[string]any{"type": "string"}, nil
		case "!!null":
			return map[string]any{}, nil
		}
		return nil, fmt.Errorf("%s: a default of type %s: quote it to make it a string, or write an integer, number, boolean, list or map", path, value.Tag)
	case yaml.SequenceNode:
		s := map[string]any{"type": "array"}
		for i, item := range value.Content {
			items, err := g.infer(item, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if first, ok := s["items"].(map[string]any); ok && first["type"] != items["type"] {
				return nil, fmt.Errorf("%s: items of more than one type: give the default's items one type (quote a number meant as a string)", path)
			}
			s["items"] = items
		}
		return s, nil
	case yaml.MappingNode:
		if len(value.Content) == 0 {
			return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}, nil
		}
		properties := map[string]any{}
		required := []any{}
		for i := 0; i < len(value.Content); i += 2 {
			key, val := value.Content[i], value.Content[i+1]
			child, err := g.schema(val, g.commentAbove(key), strings.TrimPrefix(path+"."+key.Value, "(root)."))
			if err != nil {
				return nil, err
			}
			properties[key.Value] = child
			// Helm drops a key the user sets to null; null-ing out an empty
			// list or map changes nothing, anything else needs the object's
			// @schema to leave the key out of "required".
			if val.Tag != "!!null" && !((val.Kind == yaml.MappingNode || val.Kind == yaml.SequenceNode) && len(val.Content) == 0) {
				required = append(required, key.Value)
			}
		}
		return map[string]any{"type": "object", "additionalProperties": false, "properties": properties, "required": required}, nil
	}
	return nil, fmt.Errorf("%s: anchors and aliases are not supported: write the value out in full", path)
}

// commentAbove returns the comment lines directly above a key, with no blank
// line between.
func (g generator) commentAbove(key *yaml.Node) []string {
	end := key.Line - 1 // key.Line counts from 1: lines[end] is the key's line
	start := end
	for start > 0 && strings.HasPrefix(strings.TrimSpace(g.lines[start-1]), "#") {
		start--
	}
	return g.lines[start:end]
}

// parseComment returns a comment block's description (from "# --" up to an
// @schema line) and its @schema annotation (every line after "# @schema").
func parseComment(block []string) (string, map[string]any, error) {
	var description []string
	var note []string
	in := ""
	for _, line := range block {
		text := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(line), "#"), " ")
		switch {
		case in == "schema":
			note = append(note, text)
		case strings.HasPrefix(text, "@schema"):
			in = "schema"
			note = append(note, strings.TrimPrefix(text, "@schema"))
		case strings.HasPrefix(text, "-- ") || text == "--":
			in = "description"
			description = append(description, strings.TrimPrefix(text, "--"))
		case in == "description":
			description = append(description, text)
		}
	}
	annotation := map[string]any{}
	if err := yaml.Unmarshal([]byte(strings.Join(note, "\n")), &annotation); err != nil {
		return "", nil, err
	}
	return strings.Join(strings.Fields(strings.Join(description, " ")), " "), annotation, nil
}

// merge writes src over dst: maps merge key by key, anything else replaces.
func merge(dst, src map[string]any) {
	for k, v := range src {
		from, isMap := v.(map[string]any)
		to, wasMap := dst[k].(map[string]any)
		if isMap && wasMap {
			merge(to, from)
			continue
		}
		dst[k] = v
	}
}
