package table_test

import (
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// publicTable is the setup of issue 10's finding 4: a permissive policy on
// /public, a strict one on every other path of the host, and a policy on
// another host's /api with nothing around it.
func publicTable(t testing.TB) *table.Table {
	t.Helper()
	tbl, conflicts := table.New([]table.Entry{
		entry("strict", 0, []string{"api.example.com"}, "/"),
		entry("public", 1, []string{"api.example.com"}, "/public"),
		entry("caf", 2, []string{"api.example.com"}, "/caf%C3%A9"),
		entry("lonely", 3, []string{"lonely.example.com"}, "/api"),
	})
	if len(conflicts) != 0 {
		t.Fatalf("conflicts: %+v", conflicts)
	}
	return tbl
}

func TestMatchReadsPathsAsUpstreams(t *testing.T) {
	t.Parallel()
	tbl := publicTable(t)
	long := "/public/" + strings.Repeat("a", table.MaxReadingLen)
	cases := []struct {
		desc, authority, path string
		// want is the deciding policy, or with ambiguous the one Match
		// names; "" is none.
		want      string
		ambiguous bool
	}{
		// The readings agree: exactly as Lookup.
		{desc: "plain path under the permissive prefix", path: "/public/logo.png", want: "public"},
		{desc: "plain path under the strict policy", path: "/private/data", want: "strict"},
		{desc: "dots inside segments are not dot segments", path: "/public/app.v1.2.js", want: "public"},
		{desc: "%2F inside one policy's paths: decoded or not, still /", path: "/a%2Fb", want: "strict"},
		{desc: "%2F deeper under /public stays under /public", path: "/public/a%2Fb", want: "public"},
		{desc: "dot segment that stays under /public", path: "/public/./x/../y", want: "public"},
		{desc: "empty segment after the prefix", path: "/public//x", want: "public"},
		{desc: "encoded non-ASCII, upper-case hex, as browsers send it", path: "/caf%C3%A9/menu", want: "caf"},
		{desc: "a % that is no escape is read as is", path: "/public/100%/x", want: "public"},
		{desc: "the query is ignored, dots and %2F in it too", path: "/public/x?next=/../private%2F..", want: "public"},
		{desc: "the fragment is ignored", path: "/public/x#/../..%2Fprivate", want: "public"},
		// Decoding is one level only: "%252F" is "%2F" once decoded, a
		// literal "%2F" in a segment, never a separator (RFC 3986 §2.4).
		{desc: "double-encoded slash is not decoded twice", path: "/public/..%252Fprivate", want: "public"},
		{desc: "double-encoded dots are not decoded twice", path: "/public/%252e%252e/private", want: "public"},
		{desc: "readings that agree on no policy", authority: "lonely.example.com", path: "/other/..%2Fx", want: ""},

		// The readings disagree: refused, attributed to the most normalised
		// reading's policy.
		{desc: "issue: ..%2F climbs out of /public", path: "/public/..%2Fprivate", want: "strict", ambiguous: true},
		{desc: "lower-case %2f", path: "/public/..%2fprivate", want: "strict", ambiguous: true},
		{desc: "issue: %2e%2e is ..", path: "/public/%2e%2e/private", want: "strict", ambiguous: true},
		{desc: "upper-case %2E%2E", path: "/public/%2E%2E/private", want: "strict", ambiguous: true},
		{desc: "mixed case %2e%2E", path: "/public/%2e%2E/private", want: "strict", ambiguous: true},
		{desc: "half-encoded .%2e", path: "/public/.%2e/private", want: "strict", ambiguous: true},
		{desc: "issue: raw ../ from a non-browser client", path: "/public/../private", want: "strict", ambiguous: true},
		{desc: "encoded backslash %5C", path: "/public/..%5Cprivate", want: "strict", ambiguous: true},
		{desc: "lower-case %5c", path: "/public/..%5cprivate", want: "strict", ambiguous: true},
		{desc: "raw backslash", path: `/public/..\private`, want: "strict", ambiguous: true},
		{desc: "path parameter on the dots (servlet containers)", path: "/public/..;x=1/private", want: "strict", ambiguous: true},
		{desc: "the other way: a strict path spelt to look permissive", path: "/private/..%2F..%2Fpublic/x", want: "public", ambiguous: true},
		{desc: "an encoded slash making /public", path: "/public%2Fx", want: "public", ambiguous: true},
		{desc: "encoded unreserved letters (%70 is p)", path: "/%70ublic/x", want: "public", ambiguous: true},
		// Lower-case hex is the same octet (RFC 3986 §6.2.2.1), so the raw
		// bytes miss the prefix an upstream finds. Browsers write upper case.
		{desc: "lower-case hex of a configured prefix", path: "/caf%c3%a9/menu", want: "caf", ambiguous: true},
		{desc: "merged slashes make /public", path: "//public/x", want: "public", ambiguous: true},
		{desc: "a parameter on the prefix segment", path: "/public;jsessionid=1/x", want: "public", ambiguous: true},
		// "/public/a%2Fb/../../private": raw and fully decoded both stay
		// under /public, dot removal without decoding %2F (Envoy's
		// normalize_path alone) reaches /private. Two readings would miss it.
		{desc: "a reading between raw and fully decoded", path: "/public/a%2Fb/../../private", want: "public", ambiguous: true},
		{desc: "one reading finds no policy at all", authority: "lonely.example.com", path: "/api/..%2Fx", want: "lonely", ambiguous: true},
		{desc: "no policy raw, a policy decoded", authority: "lonely.example.com", path: "/x/..%2Fapi/y", want: "lonely", ambiguous: true},
		{desc: "no leading slash (Envoy refuses it; another client may not)", path: "public/x", want: "public", ambiguous: true},
		{desc: "a path longer than the short buffer", path: "/public/" + strings.Repeat("b", 300) + "/../../private", want: "strict", ambiguous: true},
		{desc: "too long to read every way", path: long + "/..%2Fx", want: "public", ambiguous: true},
		{desc: "long and plain: read as is", path: long, want: "public"},
		{desc: "too long, no policy raw, one for the host", authority: "lonely.example.com", path: "/x" + long + "/..%2Fapi", want: "lonely", ambiguous: true},
		{desc: "too long, no policy for the host at all", authority: "nobody.example.com", path: long + "/..%2Fx", want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			authority := tc.authority
			if authority == "" {
				authority = "api.example.com"
			}
			m := tbl.Match(authority, tc.path)
			got := ""
			if m.Entry != nil {
				got = m.Entry.Name
			}
			if got != tc.want || m.Ambiguous != tc.ambiguous {
				t.Errorf("Match(%q, %q) = %s, ambiguous=%v; want %s, ambiguous=%v", authority, tc.path, got, m.Ambiguous, tc.want, tc.ambiguous)
			}
			if !m.Ambiguous {
				// Paths whose readings agree behave exactly as before.
				if e := tbl.Lookup(authority, tc.path); e != m.Entry {
					t.Errorf("Match(%q) = %v but Lookup = %v", tc.path, m.Entry, e)
				}
			}
			if m.DryRun {
				t.Errorf("Match(%q).DryRun with Enforce policies", tc.path)
			}
		})
	}
}

func TestMatchDryRun(t *testing.T) {
	t.Parallel()
	dry, _, err := cors.Compile(cors.Config{AllowOrigins: []string{"https://app.example.com"}, Mode: cors.ModeDryRun})
	if err != nil {
		t.Fatal(err)
	}
	withMode := func(e table.Entry, p *cors.Policy) table.Entry { e.Policy = p; return e }
	long := "/public/" + strings.Repeat("a", table.MaxReadingLen) + "/..%2Fx"
	for _, tc := range []struct {
		desc       string
		entries    []table.Entry
		path       string
		wantDryRun bool
		// wantEntry is the policy named: the most normalised reading's,
		// an Enforce one when the refusal is enforced.
		wantEntry string
	}{
		{desc: "both readings DryRun: recorded, nothing changes", wantDryRun: true, wantEntry: "root", entries: []table.Entry{
			withMode(entry("root", 0, nil, "/"), dry), withMode(entry("public", 1, nil, "/public"), dry)}},
		{desc: "DryRun and no policy: recorded, nothing changes", wantDryRun: true, wantEntry: "public", entries: []table.Entry{
			withMode(entry("public", 1, nil, "/public"), dry)}},
		{desc: "raw reading Enforce: enforced, in its name", wantEntry: "public", entries: []table.Entry{
			withMode(entry("root", 0, nil, "/"), dry), entry("public", 1, nil, "/public")}},
		{desc: "decoded reading Enforce: enforced", wantEntry: "root", entries: []table.Entry{
			entry("root", 0, nil, "/"), withMode(entry("public", 1, nil, "/public"), dry)}},
		{desc: "too long, every policy of the host DryRun: recorded", path: long, wantDryRun: true, wantEntry: "public", entries: []table.Entry{
			withMode(entry("root", 0, nil, "/"), dry), withMode(entry("public", 1, nil, "/public"), dry)}},
		{desc: "too long, one policy of the host Enforce: enforced", path: "/x" + long, wantEntry: "public", entries: []table.Entry{
			withMode(entry("other", 0, nil, "/other"), dry), entry("public", 1, nil, "/public")}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			tbl, _ := table.New(tc.entries)
			path := tc.path
			if path == "" {
				path = "/public/..%2Fprivate"
			}
			m := tbl.Match("api.example.com", path)
			if !m.Ambiguous || m.DryRun != tc.wantDryRun || m.Entry == nil || m.Entry.Name != tc.wantEntry {
				t.Errorf("Match = %+v, want ambiguous, DryRun=%v, named %s", m, tc.wantDryRun, tc.wantEntry)
			}
		})
	}
}

func TestMatchNilTable(t *testing.T) {
	t.Parallel()
	var tbl *table.Table
	if m := tbl.Match("api.example.com", "/public/..%2Fx"); m != (table.Match{}) {
		t.Errorf("nil table: Match = %+v, want no policy", m)
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	tbl := publicTable(t)
	for _, path := range []string{"/public/v1/x?z", "/public/..%2Fprivate", "/public/%2e%2e/a%2Fb/..;x/.//y"} {
		if n := testing.AllocsPerRun(100, func() { _ = tbl.Match("API.Example.com:443", path) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times, want 0", path, n)
		}
	}
}

func TestReadings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, path string
		flags      uint8
		want       string
	}{
		{desc: "nothing to do", path: "/a/b.c/d", flags: table.ReadAll, want: "/a/b.c/d"},
		{desc: "dots (RFC 3986 §5.2.4 example)", path: "/a/b/c/./../../g", flags: table.ReadDots, want: "/a/g"},
		{desc: "dots above the root", path: "/../../a", flags: table.ReadDots, want: "/a"},
		{desc: "%2E is a dot only when decoded", path: "/a/%2E%2E/b", flags: table.ReadDots, want: "/a/%2E%2E/b"},
		{desc: "percent: unreserved decoded, hex upper-cased", path: "/%7euser/%41%c3%a9%2f", flags: table.ReadPercent, want: "/~user/A%C3%A9%2F"},
		{desc: "slashes alone", path: "/a%2fb%5Cc", flags: table.ReadSlashes, want: `/a/b\c`},
		{desc: "slashes and backslash", path: `/a%2fb%5Cc\d`, flags: table.ReadSlashes | table.ReadBackslash, want: "/a/b/c/d"},
		{desc: "params", path: "/a;x=1/b;/..;y/c", flags: table.ReadParams | table.ReadDots, want: "/a/c"},
		{desc: "an encoded ; is no parameter", path: "/a%3Bx/b", flags: table.ReadParams | table.ReadPercent, want: "/a%3Bx/b"},
		{desc: "merge", path: "//a///b//", flags: table.ReadMerge, want: "/a/b"},
		{desc: "no merge: an empty segment is one .. pops", path: "/a//../b", flags: table.ReadDots, want: "/a/b"},
		{desc: "one level: %25 stays", path: "/a/%252F", flags: table.ReadAll, want: "/a/%252F"},
		{desc: "all of the issue's spelling", path: "/public/..%2Fprivate", flags: table.ReadAll, want: "/private"},
		{desc: "no leading slash", path: "a/../b", flags: table.ReadDots, want: "/b"},
	} {
		if got := table.Reading(tc.path, tc.flags); got != tc.want {
			t.Errorf("%s: Reading(%q, %06b) = %q, want %q", tc.desc, tc.path, tc.flags, got, tc.want)
		}
	}
}

func TestNormalizePathPrefixRefusesAmbiguousPrefixes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, suggest string }{
		{"/public/../private", `"/private"`},
		{"/a%2Fb", `"/a/b"`},
		{"/caf%c3%a9", `"/caf%C3%A9"`},
		{"/%7Euser", `"/~user"`},
		{"/api;v=1", `"/api"`},
		{"//api", `"/api"`},
		{`/a\b`, `"/a/b"`},
		{"/a/.", `"/a"`},
	} {
		_, err := table.NormalizePathPrefix(tc.in)
		if err == nil || !strings.Contains(err.Error(), "write "+tc.suggest) {
			t.Errorf("NormalizePathPrefix(%q) = %v, want an error saying write %s", tc.in, err, tc.suggest)
		}
	}
	for _, ok := range []string{"/api", "/api/", "/caf%C3%A9", "/v1.2/x", "/a%20b", "/items:batchGet"} {
		if _, err := table.NormalizePathPrefix(ok); err != nil {
			t.Errorf("NormalizePathPrefix(%q) = %v, want ok", ok, err)
		}
	}
}

// referenceReading is the obvious, slow reading of path under flags, written
// from the RFC's text step by step: split into segments on the separators
// the flags make, decode each segment, drop parameters, drop empty segments,
// then remove dot segments with RFC 3986 §5.2.4's own algorithm.
func referenceReading(path string, flags uint8) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	path = strings.TrimPrefix(path, "/")
	var segs []string
	var cur strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' && i+2 < len(path) && isHexRef(path[i+1]) && isHexRef(path[i+2]) {
			v := byte(hexRef(path[i+1])<<4 | hexRef(path[i+2]))
			esc := path[i : i+3]
			i += 2
			switch {
			case v == '/' && flags&table.ReadSlashes != 0,
				v == '\\' && flags&table.ReadSlashes != 0 && flags&table.ReadBackslash != 0:
				segs = append(segs, cur.String())
				cur.Reset()
			case v == '\\' && flags&table.ReadSlashes != 0:
				cur.WriteByte('\\')
			case strings.ContainsRune("-._~", rune(v)) || 'a' <= v && v <= 'z' || 'A' <= v && v <= 'Z' || '0' <= v && v <= '9':
				if flags&table.ReadPercent != 0 {
					cur.WriteByte(v)
				} else {
					cur.WriteString(esc)
				}
			case flags&table.ReadPercent != 0:
				cur.WriteString(strings.ToUpper(esc))
			default:
				cur.WriteString(esc)
			}
			continue
		}
		if c == '/' || c == '\\' && flags&table.ReadBackslash != 0 {
			segs = append(segs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	segs = append(segs, cur.String())
	var kept []string
	for _, s := range segs {
		if flags&table.ReadParams != 0 {
			s, _, _ = strings.Cut(s, ";") // no decoded byte is ';': every ';' here is raw
		}
		if flags&table.ReadMerge != 0 && s == "" {
			continue
		}
		kept = append(kept, s)
	}
	joined := "/" + strings.Join(kept, "/")
	if flags&table.ReadDots != 0 {
		joined = removeDotSegments(joined)
	}
	return joined
}

// removeDotSegments is RFC 3986 §5.2.4, rule by rule.
func removeDotSegments(in string) string {
	out := ""
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = out[:max(strings.LastIndexByte(out, '/'), 0)]
		case in == "/..":
			in = "/"
			out = out[:max(strings.LastIndexByte(out, '/'), 0)]
		case in == "." || in == "..":
			in = ""
		default:
			j := strings.IndexByte(in[1:], '/')
			if j < 0 {
				out, in = out+in, ""
			} else {
				out, in = out+in[:j+1], in[j+1:]
			}
		}
	}
	return out
}

func isHexRef(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }

func hexRef(c byte) int { return strings.IndexByte("0123456789abcdef", c|0x20) }

// sameForLookup compares two readings as the table's lookup does, which
// ignores trailing slashes ("/a/" and "/a" select the same policy).
func sameForLookup(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }

func FuzzMatch(f *testing.F) {
	for _, s := range []string{
		"/public/..%2Fprivate", "/public/%2e%2e/private", "/public/../private", "/a%2Fb", "/public/..%5Cprivate",
		`/public/..\private`, "/public/..;/private", "//public/x", "/public/a%2Fb/../../private", "/%70ublic",
		"/public/..%252Fprivate", "/caf%c3%a9/x", "/x?y=/../z", "/public/./x//y/", "", "*", "a/../public",
	} {
		f.Add(s)
	}
	tbl := publicTable(f)
	f.Fuzz(func(t *testing.T, path string) {
		if len(path) >= table.MaxReadingLen {
			return
		}
		relevant := table.ReadingsOf(strings.Split(strings.Split(path, "?")[0], "#")[0])
		for flags := uint8(0); flags <= table.ReadAll; flags++ {
			got, want := table.Reading(path, flags), referenceReading(path, flags)
			if !sameForLookup(got, want) {
				t.Fatalf("Reading(%q, %06b) = %q, reference %q", path, flags, got, want)
			}
			// Soundness of the fast path: a step readingsOf leaves out
			// changes nothing.
			if r := table.Reading(path, flags&relevant); !sameForLookup(r, got) {
				t.Fatalf("ReadingsOf(%q) = %06b, but under %06b the reading is %q, not %q", path, relevant, flags, got, r)
			}
		}
		if strings.HasPrefix(path, "/") {
			if got := table.Reading(path, 0); got != strings.Split(strings.Split(path, "?")[0], "#")[0] {
				t.Fatalf("Reading(%q, 0) = %q, want the path itself", path, got)
			}
		}
		// The property: a policy Match grants is the policy of every
		// reading, raw and fully normalised among them.
		for _, host := range []string{"api.example.com", "lonely.example.com"} {
			m := tbl.Match(host, path)
			if m.Ambiguous {
				continue
			}
			if e := tbl.Lookup(host, path); e != m.Entry {
				t.Fatalf("Match(%q) = %v, raw reading %v", path, m.Entry, e)
			}
			for flags := uint8(1); flags <= table.ReadAll; flags++ {
				if e := tbl.Lookup(host, referenceReading(path, flags)); e != m.Entry {
					t.Fatalf("Match(%q) grants %v, but the reading %q (%06b) selects %v", path, m.Entry, referenceReading(path, flags), flags, e)
				}
			}
		}
	})
}
