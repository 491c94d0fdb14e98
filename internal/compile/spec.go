package compile

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
	errs := append(checkShape(spec), checkTargetRefs(spec)...)
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

// The CRD's bounds (api/v1alpha1 markers), checked here too so that the file
// source refuses what `kubectl apply` would.
var listBounds = []struct {
	field    string
	get      func(*v1alpha1.CorsPolicySpec) []string
	maxItems int
	maxLen   int
}{
	{"hosts", func(s *v1alpha1.CorsPolicySpec) []string { return s.Hosts }, 16, 253},
	{"pathPrefixes", func(s *v1alpha1.CorsPolicySpec) []string { return s.PathPrefixes }, 16, 1024},
	{"allowOrigins", func(s *v1alpha1.CorsPolicySpec) []string { return s.AllowOrigins }, 64, 326},
	{"allowOriginRegexes", func(s *v1alpha1.CorsPolicySpec) []string { return s.AllowOriginRegexes }, 16, 1024},
	{"allowMethods", func(s *v1alpha1.CorsPolicySpec) []string { return s.AllowMethods }, 32, 64},
	{"allowHeaders", func(s *v1alpha1.CorsPolicySpec) []string { return s.AllowHeaders }, 64, 256},
	{"exposeHeaders", func(s *v1alpha1.CorsPolicySpec) []string { return s.ExposeHeaders }, 64, 256},
}

// checkShape checks list sizes, lengths, duplicates and enum values.
func checkShape(spec *v1alpha1.CorsPolicySpec) []error {
	var errs []error
	add := func(field, value, format string, args ...any) {
		errs = append(errs, &cors.FieldError{Field: field, Value: cors.Clip(value), Message: fmt.Sprintf(format, args...)})
	}
	for _, b := range listBounds {
		list := b.get(spec)
		if len(list) > b.maxItems {
			add("spec."+b.field, "", "has %d entries, more than the %d allowed: split the policy in two", len(list), b.maxItems)
		}
		seen := make(map[string]bool, len(list))
		for i, v := range list {
			field := fmt.Sprintf("spec.%s[%d]", b.field, i)
			if len(v) > b.maxLen {
				add(field, v, "is %d bytes long, more than the %d allowed", len(v), b.maxLen)
			}
			if seen[v] {
				add(field, v, "%s is listed twice: remove one", cors.Quote(v))
			}
			seen[v] = true
		}
	}
	switch spec.UnmatchedPreflight {
	case "", v1alpha1.UnmatchedPreflightReject, v1alpha1.UnmatchedPreflightForward:
	default:
		add("spec.unmatchedPreflight", string(spec.UnmatchedPreflight), "%s is not a choice: write Reject (the default: answer 403) or Forward (pass the preflight to the upstream)", cors.Quote(string(spec.UnmatchedPreflight)))
	}
	switch spec.Mode {
	case "", v1alpha1.ModeEnforce, v1alpha1.ModeDryRun:
	default:
		add("spec.mode", string(spec.Mode), "%s is not a choice: write Enforce (the default) or DryRun (decide and record, change nothing)", cors.Quote(string(spec.Mode)))
	}
	if cop := spec.CrossOriginProtection; cop != nil {
		switch cop.Mode {
		case v1alpha1.CrossOriginProtectionEnforce, v1alpha1.CrossOriginProtectionDryRun:
		default:
			add("spec.crossOriginProtection.mode", string(cop.Mode), "%s is not a choice: write Enforce (refuse with 403) or DryRun (record what Enforce would refuse)", cors.Quote(string(cop.Mode)))
		}
	}
	return errs
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
	if cop := spec.CrossOriginProtection; cop != nil {
		switch cop.Mode {
		case v1alpha1.CrossOriginProtectionEnforce:
			cfg.CrossOriginProtection = cors.CrossOriginEnforce
		case v1alpha1.CrossOriginProtectionDryRun:
			cfg.CrossOriginProtection = cors.CrossOriginDryRun
		}
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
