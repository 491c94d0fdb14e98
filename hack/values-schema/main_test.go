package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	const values = `# The chart's values.
#
# @schema
# title: a chart
# required: [replicas, limits]

# -- Pods to run.
# Two keep serving through a drain.
# @schema {minimum: 1}
replicas: 2

# A plain comment: no description.
image:
  repository: example/app
  # @schema {enum: [Always, IfNotPresent]}
  pullPolicy: IfNotPresent
  # -- A ratio.
  weight: 0.5
  debug: false

limits:
  # @schema {type: [integer, "null"], minimum: 0}
  maxStreams: null

labels: {}

# @schema
# additionalProperties: false
# properties:
#   nodeAffinity: {type: object}
affinity: {}

# @schema {items: {type: string, pattern: '^--'}}
extraArgs: []

classes: [eg, istio]

# @schema
# oneOf:
#   - {type: "null"}
#   - {type: string, pattern: '^[0-9]+%$'}
maxUnavailable: 1
`
	want := `{
  "$schema": "https://json-schema.org/draft-07/schema#",
  "title": "a chart",
  "type": "object",
  "additionalProperties": false,
  "required": ["replicas", "limits"],
  "properties": {
    "replicas": {"type": "integer", "minimum": 1, "description": "Pods to run. Two keep serving through a drain."},
    "image": {
      "type": "object",
      "additionalProperties": false,
      "required": ["repository", "pullPolicy", "weight", "debug"],
      "properties": {
        "repository": {"type": "string"},
        "pullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent"]},
        "weight": {"type": "number", "description": "A ratio."},
        "debug": {"type": "boolean"}
      }
    },
    "limits": {
      "type": "object",
      "additionalProperties": false,
      "properties": {"maxStreams": {"type": ["integer", "null"], "minimum": 0}}
    },
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "affinity": {"type": "object", "additionalProperties": false, "properties": {"nodeAffinity": {"type": "object"}}},
    "extraArgs": {"type": "array", "items": {"type": "string", "pattern": "^--"}},
    "classes": {"type": "array", "items": {"type": "string"}},
    "maxUnavailable": {"oneOf": [{"type": "null"}, {"type": "string", "pattern": "^[0-9]+%$"}]}
  }
}`
	got, err := generate([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	var gotSchema, wantSchema any
	if err := json.Unmarshal(got, &gotSchema); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &wantSchema); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotSchema, wantSchema) {
		t.Errorf("generated\n%s\nwant\n%s", got, want)
	}
}

func TestGenerateRefusesUntypedValues(t *testing.T) {
	tests := []struct {
		desc, values, wantErr string
	}{
		{"null without a type", "a:\n  b: null\n", "a.b: no type"},
		{"empty list without items", "a: []\n", "a: an empty list"},
		{"list of mixed items", "a: [1, x]\n", "a: items of more than one type"},
		{"annotation that is not YAML", "# @schema {minimum: [1\na: 1\n", "a: @schema"},
		{"values that are not a map", "- a\n", "not a map"},
		{"a default of a type JSON has not", "a: 2001-12-14\n", "a: a default of type !!timestamp: quote it"},
		{"an alias", "a: &x 1\nb: *x\n", "b: anchors and aliases are not supported: write the value out"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := generate([]byte(tc.values))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("generate(%q) = %v, want an error containing %q", tc.values, err, tc.wantErr)
			}
		})
	}
}
