package cors

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
)

// Policy is a compiled, immutable CORS policy. It is safe for concurrent use;
// nothing reachable from it is ever modified or handed out for modification.
type Policy struct {
	mode      Mode
	unmatched UnmatchedPreflight

	credentialed bool // anyOrigin => !credentialed; allowNull => !credentialed

	// Origins. A request origin is allowed when it is a key of exact, or when
	// replacing one or more of its leftmost host labels by "*" gives a key of
	// wildcards, or when a regex matches it whole.
	anyOrigin bool
	allowNull bool
	exact     map[string]struct{}
	wildcards map[string]struct{}
	regexes   []*regexp.Regexp

	// Methods, compared byte for byte (Fetch §2.2.1: methods are case-sensitive).
	anyMethod bool
	methods   map[string]struct{}

	// Request headers, lower case. anyHeader never covers "authorization"
	// (Fetch §2.2.2 "CORS non-wildcard request-header name"): only
	// allowAuthorization does.
	anyHeader          bool
	allowAuthorization bool
	headers            map[string]struct{}

	privateNetwork bool
	crossOrigin    CrossOriginMode

	// Prebuilt response header values; "" means the header is not sent.
	allowMethods     string // configured methods, or "*" (uncredentialed any)
	allowHeaders     string // configured names, or "*" / "*,authorization"
	exposeHeaders    string // configured names, or "*" (uncredentialed)
	exposeFromUpstrm bool   // exposeHeaders ["*"] with credentials
	maxAge           string
}

// Mode reports whether the policy enforces or only records.
func (p *Policy) Mode() Mode { return p.mode }

// Credentialed reports whether the policy allows credentials.
func (p *Policy) Credentialed() bool { return p.credentialed }

// Regex limits: a pattern is compiled once, but a huge one still costs every
// request that reaches it.
const (
	maxRegexLen   = 1024
	maxRegexInsts = 4096
)

// Compile validates cfg and builds a Policy. Every problem is reported at
// once: the error joins one *FieldError per problem (see FieldErrors), each
// naming its field and saying what to write instead. Warnings are risky but
// legal settings; they come with a Policy.
func Compile(cfg Config) (*Policy, []Warning, error) {
	var pr problems
	p := &Policy{
		mode:           cfg.Mode,
		unmatched:      cfg.UnmatchedPreflight,
		credentialed:   cfg.AllowCredentials,
		privateNetwork: cfg.AllowPrivateNetwork,
		crossOrigin:    cfg.CrossOriginProtection,
		exact:          map[string]struct{}{},
		wildcards:      map[string]struct{}{},
		methods:        map[string]struct{}{},
		headers:        map[string]struct{}{},
	}
	p.compileOrigins(cfg, &pr)
	p.compileMethods(cfg, &pr)
	p.compileHeaders(cfg, &pr)
	p.compileExposeHeaders(cfg, &pr)
	if cfg.MaxAge != nil {
		switch v := *cfg.MaxAge; {
		case v < 0 || v > 86400:
			pr.errorf("maxAge", -1, strconv.Itoa(int(v)), "%d is out of range: write a number of seconds from 0 (no caching) to 86400, or leave maxAge unset (browsers then cache for 5 s)", v)
		default:
			if v > 7200 {
				pr.warnf("maxAge", -1, "%d s is above Chromium's cap of 7200 s; Chromium caches for 7200 s", v)
			}
			p.maxAge = strconv.Itoa(int(v))
		}
	}
	if cfg.AllowPrivateNetwork {
		// Still answered correctly, for the browsers that send it; none
		// does by default any more (Chrome 138 put it behind a flag; Local
		// Network Access, a user permission, replaced it from Chrome 142).
		pr.warnf("allowPrivateNetwork", -1, "no current browser sends Private Network Access preflights (Chrome stopped in 138; since 142 Local Network Access asks the user instead, and no header can grant it): this setting has no effect in current browsers")
	}
	if cfg.CrossOriginProtection != CrossOriginOff && p.anyOrigin {
		pr.warnf("crossOriginProtection", -1, `allowOrigins is "*", so every origin is trusted and crossOriginProtection refuses nothing: list the origins you trust in allowOrigins, or remove crossOriginProtection`)
	}
	if err := pr.err(); err != nil {
		return nil, pr.warnings, err
	}
	return p, pr.warnings, nil
}

func (p *Policy) compileOrigins(cfg Config, pr *problems) {
	if len(cfg.AllowOrigins) == 0 && len(cfg.AllowOriginRegexes) == 0 {
		pr.errorf("allowOrigins", -1, "", `no origin is allowed: list origins such as "https://app.example.com" in allowOrigins, or patterns in allowOriginRegexes`)
	}
	for i, o := range cfg.AllowOrigins {
		switch o {
		case wildcard:
			if len(cfg.AllowOrigins) > 1 {
				pr.errorf("allowOrigins", i, o, `"*" allows every origin and must stand alone: remove the other entries, or remove "*"`)
			}
			if cfg.AllowCredentials {
				pr.errorf("allowOrigins", i, o, `"*" cannot be combined with allowCredentials (Fetch forbids it, and reflecting every origin with credentials exposes your users' data): list the origins you trust, or set allowCredentials to false`)
			}
			p.anyOrigin = true
		case nullOrigin:
			if cfg.AllowCredentials {
				pr.errorf("allowOrigins", i, o, `"null" cannot be combined with allowCredentials (any sandboxed page or file sends the origin "null"): remove "null"`)
			}
			pr.warnf("allowOrigins", i, `"null" is sent by sandboxed iframes, file: pages and redirects: allowing it is close to allowing every origin`)
			p.allowNull = true
		default:
			op, msg := parseOriginPattern(o)
			if msg != "" {
				pr.errorf("allowOrigins", i, o, "%s", msg)
				continue
			}
			if op.wildcard {
				if cfg.AllowCredentials && isPublicSuffix(op.host) {
					pr.errorf("allowOrigins", i, o, "%s admits every site under the public suffix %q, and allowCredentials is on: list the sites you trust, e.g. %q", quote(o), op.host, op.scheme+"://mysite."+op.host)
				}
				p.wildcards[op.key] = struct{}{}
			} else if _, ok := parseOrigin(op.key); ok {
				// A key no request origin can parse as would never match
				// (allowOrigin parses first); leaving it out lets allowOrigin
				// look exact origins up before parsing.
				p.exact[op.key] = struct{}{}
			}
			if cfg.AllowCredentials && op.scheme == "http" && !isLoopback(op.host) {
				pr.warnf("allowOrigins", i, "%s is plain http with allowCredentials: anyone on the network path can act as this origin; prefer https", quote(o))
			}
		}
	}
	for i, re := range cfg.AllowOriginRegexes {
		if len(re) > maxRegexLen {
			pr.errorf("allowOriginRegexes", i, re, "the pattern is %d bytes long: keep it under %d, or list origins in allowOrigins", len(re), maxRegexLen)
			continue
		}
		anchored := "^(?:" + re + ")$"
		parsed, err := syntax.Parse(anchored, syntax.Perl)
		if err != nil {
			pr.errorf("allowOriginRegexes", i, re, "%s is not a valid RE2 pattern (%v): fix it, e.g. %q", quote(re), err, `https://[a-z0-9-]+\.example\.com`)
			continue
		}
		if prog, err := syntax.Compile(parsed.Simplify()); err != nil || len(prog.Inst) > maxRegexInsts {
			pr.errorf("allowOriginRegexes", i, re, "%s compiles to a program too large to run per request: simplify it, or list origins in allowOrigins", quote(re))
			continue
		}
		rx := regexp.MustCompile(anchored)
		if cfg.AllowCredentials {
			if hole := credentialedRegexHole(rx, parsed); hole != "" {
				pr.errorf("allowOriginRegexes", i, re, "%s also matches %s, so with allowCredentials it would let sites you do not own read your users' data: anchor it to your domain, e.g. %q", quote(re), quote(hole), `https://[a-z0-9-]+\.example\.com`)
			}
		}
		p.regexes = append(p.regexes, rx)
	}
}

// forbiddenMethods can never be sent by a browser (Fetch §2.2.1 "forbidden
// method"); listing them only confuses readers.
var forbiddenMethods = []string{"CONNECT", "TRACE", "TRACK"}

// browserMethods are the names a page is likely to mean when it writes a
// lower-case spelling. Browsers upper-case DELETE, GET, HEAD, OPTIONS, POST and
// PUT (Fetch "normalize") and send every other method as written.
var browserMethods = []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"}

// fetchNormalized are the methods fetch upper-cases, whatever case a page
// writes them in (Fetch §2.2.1 "normalize a method"); PATCH is not one of them.
var fetchNormalized = []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}

// NormalizeMethod is Fetch's "normalize a method" (§2.2.1): the method a
// browser sends for one a page writes. Every method other than DELETE, GET,
// HEAD, OPTIONS, POST and PUT is sent as written, and methods are compared
// case-sensitively, so "patch" and "PATCH" are two methods.
func NormalizeMethod(m string) string {
	for _, n := range fetchNormalized {
		if strings.EqualFold(m, n) {
			return n
		}
	}
	return m
}

func (p *Policy) compileMethods(cfg Config, pr *problems) {
	var listed []string
	for i, m := range cfg.AllowMethods {
		switch {
		case m == wildcard:
			if len(cfg.AllowMethods) > 1 {
				pr.errorf("allowMethods", i, m, `"*" allows every method and must stand alone: remove the other entries, or remove "*"`)
			}
			p.anyMethod = true
			continue
		case !isToken(m):
			pr.errorf("allowMethods", i, m, "%s is not an HTTP method name (a token: letters, digits and !#$%%&'*+-.^_`|~): write e.g. \"PUT\"", quote(m))
			continue
		}
		if containsFold(forbiddenMethods, m) {
			pr.errorf("allowMethods", i, m, "%s is a forbidden method that browsers never send: remove it", quote(m))
			continue
		}
		switch up := strings.ToUpper(m); {
		case up == m || !containsFold(browserMethods, m):
		case containsFold(fetchNormalized, m):
			pr.warnf("allowMethods", i, "methods are case-sensitive and fetch upper-cases %q (Fetch \"normalize a method\"), so a page's fetch sends %q, which %q never matches; write %q", m, up, m, up)
		case slices.Contains(cfg.AllowMethods, up):
			// Both spellings listed: the pages that write either are served.
		default:
			pr.warnf("allowMethods", i, "methods are case-sensitive and fetch sends %q as written (it upper-cases only DELETE, GET, HEAD, OPTIONS, POST and PUT): %q matches only pages that write %q, and most write %q; write %q too, or instead", m, m, m, up, up)
		}
		if _, dup := p.methods[m]; !dup {
			p.methods[m] = struct{}{}
			if !isSafelistedMethod(m) {
				listed = append(listed, m)
			}
		}
	}
	switch {
	case p.anyMethod && !cfg.AllowCredentials:
		p.allowMethods = wildcard
	case !p.anyMethod:
		p.allowMethods = strings.Join(listed, ",")
	}
}

func (p *Policy) compileHeaders(cfg Config, pr *problems) {
	var listed []string
	for i, h := range cfg.AllowHeaders {
		switch {
		case h == wildcard:
			if len(cfg.AllowHeaders) > 1 && !onlyAuthorizationBeside(cfg.AllowHeaders) {
				pr.errorf("allowHeaders", i, h, `"*" allows every header (except Authorization, which must be listed by name) and must stand alone or beside "Authorization": remove the other entries`)
			}
			p.anyHeader = true
			continue
		case !isToken(h) || len(h) > maxHeaderNameLen:
			pr.errorf("allowHeaders", i, h, "%s is not a header name (a token: letters, digits and !#$%%&'*+-.^_`|~): write e.g. \"X-Request-Id\"", quote(h))
			continue
		}
		lh := strings.ToLower(h)
		if lh == authorization {
			p.allowAuthorization = true
		}
		if _, dup := p.headers[lh]; !dup {
			p.headers[lh] = struct{}{}
			listed = append(listed, lh)
		}
	}
	switch {
	case p.anyHeader && !cfg.AllowCredentials && p.allowAuthorization:
		p.allowHeaders = "*," + authorization
	case p.anyHeader && !cfg.AllowCredentials:
		p.allowHeaders = wildcard
	case !p.anyHeader:
		p.allowHeaders = strings.Join(listed, ",")
	}
}

func onlyAuthorizationBeside(hs []string) bool {
	for _, h := range hs {
		if h != wildcard && !strings.EqualFold(h, authorization) {
			return false
		}
	}
	return true
}

func (p *Policy) compileExposeHeaders(cfg Config, pr *problems) {
	var listed []string
	seen := map[string]bool{}
	for i, h := range cfg.ExposeHeaders {
		switch {
		case h == wildcard:
			if len(cfg.ExposeHeaders) > 1 {
				pr.errorf("exposeHeaders", i, h, `"*" exposes every header and must stand alone: remove the other entries, or remove "*"`)
			}
			if cfg.AllowCredentials {
				// A browser reads "*" literally on a credentialed response (Fetch
				// §3.2.3); the edge lists the upstream's own header names instead.
				p.exposeFromUpstrm = true
			} else {
				p.exposeHeaders = wildcard
			}
			continue
		case !isToken(h) || len(h) > maxHeaderNameLen:
			pr.errorf("exposeHeaders", i, h, "%s is not a header name (a token: letters, digits and !#$%%&'*+-.^_`|~): write e.g. \"X-Trace-Id\"", quote(h))
			continue
		}
		if lh := strings.ToLower(h); !seen[lh] {
			seen[lh] = true
			listed = append(listed, lh)
		}
	}
	if p.exposeHeaders == "" && !p.exposeFromUpstrm {
		p.exposeHeaders = strings.Join(listed, ",")
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
