package importer

import (
	"bytes"
	"fmt"

	sigsyaml "sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// YAML is the policy as `corsgate import` writes it: a comment naming the
// source object, then the object with only what one would write by hand (no
// status, no server-set metadata).
func (p Policy) YAML() ([]byte, error) {
	type meta struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	obj := struct {
		APIVersion string                  `json:"apiVersion"`
		Kind       string                  `json:"kind"`
		Metadata   meta                    `json:"metadata"`
		Spec       v1alpha1.CorsPolicySpec `json:"spec"`
	}{v1alpha1.GroupVersion.String(), "CorsPolicy", meta{p.Policy.Name, p.Policy.Namespace}, p.Policy.Spec}
	out, err := sigsyaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Imported by corsgate import from %s", p.Source)
	if p.File != "" {
		fmt.Fprintf(&b, " (%s)", p.File)
	}
	b.WriteString(".\n# Check the warnings it printed: each says where corsgate differs.\n")
	b.Write(out)
	return b.Bytes(), nil
}
