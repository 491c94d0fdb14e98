// Package policy is the one compile path from CorsPolicy objects to a policy
// table, shared by the Kubernetes controller and the file source: validate
// each object with the engine, keep serving an object's last valid spec when
// an edit breaks it, build the table, and say per object what happened.
package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// Compile validates one object and returns its table entry. The error joins
// *cors.FieldError values, one per problem.
func Compile(obj *v1alpha1.CorsPolicy) (table.Entry, []cors.Warning, error) {
	spec := &obj.Spec
	var errs []error
	hosts := make([]string, 0, len(spec.Hosts))
	for i, h := range spec.Hosts {
		n, err := table.NormalizeHost(h)
		if err != nil {
			errs = append(errs, &cors.FieldError{Field: fmt.Sprintf("spec.hosts[%d]", i), Value: h, Message: err.Error()})
			continue
		}
		hosts = append(hosts, n)
	}
	prefixes := make([]string, 0, len(spec.PathPrefixes))
	for i, p := range spec.PathPrefixes {
		n, err := table.NormalizePathPrefix(p)
		if err != nil {
			errs = append(errs, &cors.FieldError{Field: fmt.Sprintf("spec.pathPrefixes[%d]", i), Value: p, Message: err.Error()})
			continue
		}
		prefixes = append(prefixes, n)
	}
	p, warnings, err := cors.Compile(Config(spec))
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return table.Entry{}, warnings, errors.Join(errs...)
	}
	return table.Entry{
		Namespace: obj.Namespace, Name: obj.Name,
		Hosts: hosts, PathPrefixes: prefixes,
		Created: obj.CreationTimestamp.Time,
		Policy:  p,
	}, warnings, nil
}

// Config translates a spec's CORS fields for the engine.
func Config(spec *v1alpha1.CorsPolicySpec) cors.Config {
	cfg := cors.Config{
		AllowOrigins:        spec.AllowOrigins,
		AllowOriginRegexes:  spec.AllowOriginRegexes,
		AllowMethods:        spec.AllowMethods,
		AllowHeaders:        spec.AllowHeaders,
		ExposeHeaders:       spec.ExposeHeaders,
		MaxAge:              spec.MaxAge,
		AllowCredentials:    spec.AllowCredentials,
		AllowPrivateNetwork: spec.AllowPrivateNetwork,
	}
	if spec.UnmatchedPreflight == v1alpha1.UnmatchedPreflightForward {
		cfg.UnmatchedPreflight = cors.PreflightForward
	}
	if spec.Mode == v1alpha1.ModeDryRun {
		cfg.Mode = cors.ModeDryRun
	}
	return cfg
}

// Message renders a Compile error as one status message: every problem,
// each naming its field and saying what to write instead.
func Message(err error) string {
	fes := cors.FieldErrors(err)
	if len(fes) == 0 {
		return err.Error()
	}
	msgs := make([]string, len(fes))
	for i, fe := range fes {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}
