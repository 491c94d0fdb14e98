package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/corsgate/corsgate/internal/explain"
	"github.com/corsgate/corsgate/internal/observe"
)

// observedResult is explain's JSON with the deciding policy's observed
// origins (--observed) beside it.
type observedResult struct {
	*explain.Result
	Observed *observe.PolicyOrigins `json:"observed,omitempty"`
}

// fetchObserved reads the deciding policy's observed origins from a running
// corsgate's metrics listener (base: http://host:8080). A policy no request
// reached yet has none: nil, no error.
func fetchObserved(base, policy string) (*observe.PolicyOrigins, error) {
	ns, name, ok := strings.Cut(policy, "/")
	if !ok {
		return nil, fmt.Errorf("policy %q is not namespace/name", policy)
	}
	u := strings.TrimSuffix(base, "/") + observe.OriginsPath + "?" + url.Values{"namespace": {ns}, "name": {name}}.Encode()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, fmt.Errorf("--observed: %w (give the metrics address of a running corsgate, e.g. http://localhost:8080 after kubectl port-forward)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("--observed: GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var report observe.OriginsReport
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		return nil, fmt.Errorf("--observed: GET %s: %w", u, err)
	}
	for i := range report.Policies {
		if p := &report.Policies[i]; p.Namespace == ns && p.Name == name {
			return p, nil
		}
	}
	return nil, nil
}

// writeObserved prints the inventory for people: who was allowed, and whom
// the policy denied (or, in DryRun, would deny).
func writeObserved(w io.Writer, policy string, p *observe.PolicyOrigins) error {
	if p == nil {
		_, err := fmt.Fprintf(w, "Observed:  no request has reached %s on that replica yet\n", policy)
		return err
	}
	if _, err := fmt.Fprintf(w, "Observed:  %s since %s (%s, one replica's traffic)\n", policy, p.Since.Format(time.RFC3339), p.Mode); err != nil {
		return err
	}
	for _, side := range []struct {
		name string
		s    observe.Side
	}{{"allowed", p.Allowed}, {"denied", p.Denied}} {
		fmt.Fprintf(w, "  %s: %d requests\n", side.name, side.s.Requests)
		for _, o := range side.s.Origins {
			fmt.Fprintf(w, "    %8d  %s\n", o.Count, o.Origin)
		}
	}
	return nil
}
