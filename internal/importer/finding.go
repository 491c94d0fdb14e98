package importer

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
)

// Class names a kind of CORS hole (or breakage) a source object has. The ids
// are stable: `corsgate audit` reports them, CI filters and SARIF rules key
// on them, and import tags the warning that explains each one with it, so
// the two tools state one semantics.
type Class string

const (
	// AnyOriginWithCredentials: every origin is reflected with
	// Access-Control-Allow-Credentials: true.
	AnyOriginWithCredentials Class = "any-origin-with-credentials"
	// WildcardWithCredentials: Access-Control-Allow-Origin: * sent with
	// credentials, which browsers refuse: broken, not open.
	WildcardWithCredentials Class = "wildcard-with-credentials"
	// RegistrableOrigin: origins someone else can register or host under
	// (an unanchored or unescaped pattern, a prefix without a dot boundary,
	// a wildcard over a public suffix such as github.io).
	RegistrableOrigin Class = "registrable-origin"
	// NullOrigin: "null" is trusted (sandboxed iframes send it).
	NullOrigin Class = "null-origin"
	// HTTPOriginWithCredentials: a plain-http origin with credentials.
	HTTPOriginWithCredentials Class = "http-origin-with-credentials"
	// EchoWithCredentials: every requested method or header is allowed,
	// with credentials.
	EchoWithCredentials Class = "echo-with-credentials"
	// PreflightForwarded: preflights the CORS layer does not allow go to the
	// upstream, unchecked.
	PreflightForwarded Class = "preflight-forwarded"
	// VaryOriginMissing: the answer varies by origin without Vary: Origin.
	VaryOriginMissing Class = "vary-origin-missing"
	// PrivateNetwork: Access-Control-Allow-Private-Network is granted.
	PrivateNetwork Class = "private-network"
	// NotEnforced: a corsgate policy in DryRun leaves the upstream's CORS in
	// charge.
	NotEnforced Class = "not-enforced"
)

// Classes lists every class with its title, in the order the docs give them.
var Classes = []struct {
	ID    Class
	Title string
}{
	{AnyOriginWithCredentials, "every origin reflected with credentials"},
	{RegistrableOrigin, "origins an attacker can register or host under"},
	{NullOrigin, `the origin "null" trusted`},
	{HTTPOriginWithCredentials, "a plain-http origin with credentials"},
	{PrivateNetwork, "private-network access allowed"},
	{NotEnforced, "a corsgate policy that leaves the upstream in charge (DryRun)"},
	{EchoWithCredentials, "every method or header echoed with credentials"},
	{PreflightForwarded, "preflights forwarded to the upstream unchecked"},
	{VaryOriginMissing, "answers that vary by origin without Vary: Origin"},
	{WildcardWithCredentials, `"*" with credentials, which browsers refuse (broken, not open)`},
}

// Severity ranks what an attacker's page gains.
type Severity int

const (
	// Info: broken, not open (browsers refuse it, or caches mix answers up).
	// The zero Severity is a warning that is no finding.
	Info Severity = iota + 1
	// Low: nothing readable beyond what the attacker could fetch anyway,
	// or only through a trusted origin.
	Low
	// Medium: a read with credentials that needs a position on the network
	// path, or a door into the private network.
	Medium
	// High: a read of users' data with credentials, for anyone who
	// registers a domain.
	High
	// Critical: a read of users' data with credentials, from any page.
	Critical
)

var severityNames = []string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s-1]
}

// MarshalText writes the name, for JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseSeverity reads a name, as --fail-on takes it.
func ParseSeverity(name string) (Severity, bool) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i + 1), true
		}
	}
	return 0, false
}

// risk is a warning that is also a finding: what the source does (old), the
// attacker's gain, what corsgate will do instead (new) and the fix.
func (c *conv) risk(class Class, sev Severity, field, old, attack, new, instead string) {
	w := Warning{Source: c.src, Rule: c.rule, Field: field, Class: class, Severity: sev, Attack: attack,
		Old: old, New: new, Instead: instead}
	if c.seenWarns[w.String()] {
		return
	}
	c.seenWarns[w.String()] = true
	c.warnings = append(c.warnings, w)
}

// holeRe reads the origin the engine's credential probe found in its
// message (internal/cors regexprobe.go: `... also matches "ORIGIN", ...`).
var holeRe = regexp.MustCompile(`also matches "([^"]+)"`)

// RegistrableHole returns an origin of a site the author did not mean that
// the (whole-matched, RE2) origin regex rx admits, or "". It asks the
// server's engine, which refuses such a regex with credentials, so import,
// audit and the server agree on what counts as a hole.
func RegistrableHole(rx string) string {
	_, _, err := cors.Compile(cors.Config{AllowOriginRegexes: []string{rx}, AllowCredentials: true})
	for _, fe := range cors.FieldErrors(err) {
		if m := holeRe.FindStringSubmatch(fe.Message); m != nil {
			return m[1]
		}
	}
	return ""
}

// PublicSuffixWildcard says whether a wildcard origin ("https://*.github.io")
// spans every site under a public suffix, asking the engine as above.
func PublicSuffixWildcard(origin string) bool {
	if !strings.Contains(origin, "://*.") {
		return false
	}
	_, _, err := cors.Compile(cors.Config{AllowOrigins: []string{origin}, AllowCredentials: true})
	for _, fe := range cors.FieldErrors(err) {
		if strings.Contains(fe.Message, "public suffix") {
			return true
		}
	}
	return false
}

// IsLoopbackHTTP says whether an http origin is on the loopback interface,
// which browsers treat as trustworthy (and no network attacker reaches).
func IsLoopbackHTTP(origin string) bool {
	host := strings.TrimPrefix(origin, "http://")
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasPrefix(host, "127.") || host == "[::1]"
}

// originRisks reports the classes that follow from the origins a source
// allows (as corsgate spells them) and whether it sends credentials: shared
// by every source system and by corsgate's own policies.
func (c *conv) originRisks(field string, origins, regexes []string, credentials bool) {
	for _, o := range origins {
		switch {
		case o == "null":
			if c.has(NullOrigin) {
				continue // nginx's suffix-matched null, reported where it is read
			}
			if credentials {
				c.risk(NullOrigin, Critical, field, `allowed the origin "null" with credentials`,
					"any page can send Origin: null from a sandboxed iframe and read the responses with the user's cookies",
					`never allows "null" with credentials, so the import withdraws credentials`, `remove "null"`)
			} else {
				c.risk(NullOrigin, Low, field, `allowed the origin "null"`,
					"any page can send Origin: null from a sandboxed iframe and read the responses without cookies (as with \"*\")",
					`allows it too, with a warning`, `remove "null"`)
			}
		case strings.HasPrefix(o, "http://") && credentials && !IsLoopbackHTTP(o):
			c.risk(HTTPOriginWithCredentials, Medium, field,
				fmt.Sprintf("allowed the plain-http origin %q with credentials", o),
				fmt.Sprintf("anyone on the network path of a user (public Wi-Fi, a hostile proxy) can answer for %s and inject a script that reads the user's data with their cookies", o),
				"keeps it, and lint --strict reports it", "serve that site over https and list \"https://"+strings.TrimPrefix(o, "http://")+"\"")
		case PublicSuffixWildcard(o):
			sev := Low
			if credentials {
				sev = High
			}
			host := o[strings.Index(o, "://*.")+5:]
			c.risk(RegistrableOrigin, sev, field,
				fmt.Sprintf("allowed %q, every site under the public suffix %q", o, host),
				fmt.Sprintf("anyone can publish a page under %s and read %s", host, readWhat(credentials)),
				credentialsNote(credentials), "list the sites you own one by one, e.g. \""+o[:strings.Index(o, "://")+3]+"mysite."+host+"\"")
		}
	}
	for _, rx := range regexes {
		if strings.HasPrefix(rx, "http://") && credentials && !IsLoopbackHTTP(strings.ReplaceAll(rx, `\.`, ".")) {
			c.risk(HTTPOriginWithCredentials, Medium, field,
				fmt.Sprintf("allowed the plain-http origins %q with credentials", rx),
				"anyone on the network path of a user (public Wi-Fi, a hostile proxy) can answer for such an origin and inject a script that reads the user's data with their cookies",
				"keeps them", "serve those sites over https and allow the https origins")
		}
		if hole := RegistrableHole(rx); hole != "" {
			sev := Low
			if credentials {
				sev = High
			}
			c.risk(RegistrableOrigin, sev, field,
				fmt.Sprintf("matched origins with the pattern %q, which also matches %q", rx, hole),
				fmt.Sprintf("whoever registers a domain like %s can read %s", hole, readWhat(credentials)),
				credentialsNote(credentials), "anchor the pattern to your own domain with escaped dots, e.g. \"https://[a-z0-9-]+\\.example\\.com\", or list the origins")
		}
	}
}

func (c *conv) has(class Class) bool {
	for _, w := range c.warnings {
		if w.Class == class {
			return true
		}
	}
	return false
}

func readWhat(credentials bool) string {
	if credentials {
		return "its responses with the user's cookies, i.e. the user's data"
	}
	return "its responses without cookies (what the attacker could mostly fetch anyway, except from inside a private network)"
}

func credentialsNote(credentials bool) string {
	if credentials {
		return "refuses it with credentials, so the import leaves it out or withdraws credentials (see the other warnings)"
	}
	return "keeps it as written (review it before migrating)"
}

// CorsPolicyRisks are the findings for one of corsgate's own policies, by
// the same rules as the sources': what it leaves open as written.
func CorsPolicyRisks(o Object, p *v1alpha1.CorsPolicy) []Warning {
	if _, _, err := compile.Compile(p); err != nil {
		// The server refuses it (status Invalid): nothing of it is served,
		// so nothing is open; lint and the policy's status say why.
		return nil
	}
	c := newConv(o, p.Name)
	s := &p.Spec
	c.originRisks("spec.allowOrigins", s.AllowOrigins, nil, s.AllowCredentials)
	c.originRisks("spec.allowOriginRegexes", nil, s.AllowOriginRegexes, s.AllowCredentials)
	if s.Mode == v1alpha1.ModeDryRun {
		c.risk(NotEnforced, Medium, "spec.mode", "is in DryRun: the edge decides every request but changes none",
			"whatever the upstream answers reaches the browser: any CORS hole of the upstream's own (a reflected origin with credentials) stays open, whatever this policy says",
			"records what Enforce would do (explain, metrics)", "set mode: Enforce once the decisions in the metrics look right")
	}
	if s.UnmatchedPreflight == v1alpha1.UnmatchedPreflightForward {
		c.risk(PreflightForwarded, Low, "spec.unmatchedPreflight", "forwards the preflights it does not allow to the upstream (unmatchedPreflight: Forward)",
			"the upstream's own CORS answer, if it has one, decides those preflights: an attacker's page gets whatever the upstream grants",
			"forwards them unchecked", "remove unmatchedPreflight (Reject) once the upstream no longer answers CORS itself")
	}
	if s.AllowPrivateNetwork {
		sev := Low
		if slices.Contains(s.AllowOrigins, "*") || slices.Contains(s.AllowOrigins, "null") {
			sev = Medium
		}
		c.risk(PrivateNetwork, sev, "spec.allowPrivateNetwork", "answers Private Network Access preflights with Access-Control-Allow-Private-Network: true",
			"pages of the allowed origins, on the public internet, may reach this service inside the private network"+map[bool]string{true: ", and every origin is allowed", false: ""}[sev == Medium],
			"allows it as written", "set allowPrivateNetwork: false unless public pages must reach the service")
	}
	if s.AllowCredentials && (slices.Contains(s.AllowMethods, "*") || slices.Contains(s.AllowHeaders, "*")) {
		c.risk(EchoWithCredentials, Low, "spec.allowMethods", `allows the methods or headers "*" with credentials, so it echoes what each preflight asks for`,
			"a page of an allowed origin (or a script injected into one) may send any method or header with the user's cookies",
			"echoes them (Authorization only when listed)", "list the methods and headers the application serves")
	}
	return c.warnings
}
