package table

import (
	"strings"
	"unsafe"

	"github.com/corsgate/corsgate/internal/cors"
)

// Paths are matched as the upstream will read them (docs/paths.md).
//
// The table's prefixes compare the request's :path byte by byte, but the
// upstream behind the edge may read the same bytes as another path: it may
// decode %2F before it resolves "..", treat "\" as "/", merge "//", drop
// ";jsessionid=..." parameters. "/public/..%2Fprivate" is under /public for
// the table and /private for such an upstream; answering it with /public's
// CORS headers lets a page read /private with /public's permissions. So Match
// reads the path every way an upstream may, and grants a policy only when
// every reading selects it.
//
// A reading applies any subset of these steps (RFC 3986 numbers them), in
// one pass, in this order within each segment:
//
//   - readPercent: percent-encoding normalisation (§6.2.2.1, §6.2.2.2): hex
//     digits upper-cased, an encoded unreserved character decoded ("%2e" is
//     ".", "%70" is "p"). These spellings are equivalent by the RFC, and
//     nearly every server decodes them.
//   - readSlashes: "%2F" decodes to "/" and "%5C" to "\", which the RFC says
//     is not the same path, and many servers do anyway (nginx, Go's
//     URL.Path, Envoy's UNESCAPE_AND_FORWARD).
//   - readBackslash: "\" separates segments, as it does for Windows servers,
//     WHATWG URL parsers and Envoy's normalize_path.
//   - readParams: ";" starts a segment's parameters, which are dropped, as
//     Java servlet containers do ("/..;/" is "/../").
//   - readMerge: empty segments are dropped ("//" is "/", Envoy merge_slashes,
//     nginx merge_slashes).
//   - readDots: "." and ".." segments are removed (§5.2.4).
//
// Decoding is one level only: "%252F" is "%2F" after one decode, and a second
// decode is what the RFC forbids (§2.4: decoding an already decoded string
// changes its meaning). An upstream that decodes twice is broken in ways no
// edge can guess; it is out of scope, as it is for Envoy.
const (
	readPercent uint8 = 1 << iota
	readSlashes
	readBackslash
	readParams
	readMerge
	readDots
)

// maxReadingLen bounds the paths Match normalises: a reading is built in a
// stack buffer of this size. A longer path that needs normalising is refused
// as ambiguous rather than normalised on the heap: no browser sends a 4 KiB
// path with dot segments or encoded slashes, and the work per request stays
// bounded (a path needs at most 63 readings).
const maxReadingLen = 4096

// Match is the outcome of Table.Match.
type Match struct {
	// Entry is the policy that decides the request, nil when none applies.
	// When Ambiguous, Entry decides nothing and is never nil: it names the
	// policy the most normalised reading selected (an Enforce one when the
	// refusal is enforced; else another reading's), for metrics and logs.
	Entry *Entry
	// Ambiguous: the readings of the path select different policies (one of
	// them may be none). No policy grants the request:
	// cors.DecidePathAmbiguous is its decision.
	Ambiguous bool
	// DryRun: Ambiguous, and every policy a reading selected is in DryRun
	// mode, so the refusal is recorded and not enforced (a DryRun policy
	// never changes a request). One Enforce policy among them enforces it:
	// that policy would have decided under one reading.
	DryRun bool
}

// Match returns the policy that decides a request for authority and path,
// as Lookup does, unless the path selects different policies depending on
// how it is read (see readPercent and the others above); then the match is
// Ambiguous. A path without '%', '\', ';', "//" or a "." or ".." segment
// (nearly every request) is read one way only: Match is Lookup plus one scan
// of the path, and allocates nothing. Other paths allocate nothing either.
func (t *Table) Match(authority, path string) Match {
	if t == nil {
		return Match{}
	}
	end, plain := scanPath(path)
	path = path[:end]
	var buf [maxHostLen]byte
	host, ok := hostOf(buf[:0], authority)
	e := t.lookupHost(host, ok, path)
	if path != "" && path[0] != '/' {
		plain = false // "public" may be read as "/public"
	}
	if plain {
		return Match{Entry: e}
	}
	flags := readingsOf(path)
	if flags == 0 && (path == "" || path[0] == '/') {
		return Match{Entry: e}
	}
	// The host's indexes, most specific first, found once for every
	// reading. Eight covers the exact host, every host and six wildcard
	// suffixes with policies; a host under more grows the slice on the heap.
	var store [8]*pathIndex
	idxs := t.indexes(store[:0], host, ok)
	if len(path) < shortReadingLen {
		return matchShort(idxs, path, flags, e)
	}
	return matchLong(idxs, path, flags, e)
}

// shortReadingLen is the buffer for the readings of most paths. Go zeroes a
// buffer on every call, and zeroing 4 KiB costs more than reading a short
// path a few ways.
const shortReadingLen = 256

// matchShort and matchLong are matchReadings with a buffer on the stack.
// They are kept out of Match so that its frame stays small: a goroutine's
// initial stack would otherwise have to grow for every stream.
//
//go:noinline
func matchShort(idxs []*pathIndex, path string, flags uint8, raw *Entry) Match {
	var buf [shortReadingLen]byte
	return matchReadings(buf[:0], idxs, path, flags, raw)
}

//go:noinline
func matchLong(idxs []*pathIndex, path string, flags uint8, raw *Entry) Match {
	var buf [maxReadingLen]byte
	return matchReadings(buf[:0], idxs, path, flags, raw)
}

// scanPath returns where path's query or fragment starts (len(path) if it
// has none), and whether the path before it is plain: no '%', '\', ';', '.'
// and "//", so that every reading is the path itself. One pass, and no
// lookup table built per call as strings.IndexAny does.
func scanPath(path string) (end int, plain bool) {
	plain = true
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '?', '#':
			return i, plain
		case '%', '\\', ';', '.':
			plain = false
		case '/':
			if i > 0 && path[i-1] == '/' {
				plain = false
			}
		}
	}
	return len(path), plain
}

// matchReadings looks path up under every subset of flags, building each
// reading in buf, which has room for one (a reading is never longer than
// the path plus one byte).
func matchReadings(buf []byte, idxs []*pathIndex, path string, flags uint8, raw *Entry) Match {
	m := Match{Entry: raw}
	if len(idxs) == 0 {
		return m // no policy for this host: every reading finds none
	}
	if len(path) >= maxReadingLen {
		// Too long to read every way, and a policy may apply: refused, in
		// the name of the raw reading's policy, else of one of the host's.
		// Enforced unless every policy of the host is DryRun.
		m.Ambiguous = true
		m.Entry, m.DryRun = hostEntries(idxs)
		if raw != nil {
			m.Entry = raw
		}
		return m
	}
	// The policy an ambiguous match names: the most normalised reading's,
	// among Enforce policies when one of them enforces the refusal (metrics
	// then count it under the mode it was decided in).
	var first, firstEnforce *Entry
	note := func(e *Entry) {
		if e == nil {
			return
		}
		if first == nil {
			first = e
		}
		if firstEnforce == nil && e.Policy.Mode() != cors.ModeDryRun {
			firstEnforce = e
		}
	}
	// Every subset, the full one first. The empty subset is the raw path,
	// looked up already, unless it does not start with "/": Envoy refuses
	// such a path, but an upstream reached another way may read "public" as
	// "/public".
	for sub := flags; ; sub = (sub - 1) & flags {
		if sub == 0 && strings.HasPrefix(path, "/") {
			break
		}
		r := appendReading(buf, path, sub)
		e := lookupIn(idxs, unsafe.String(unsafe.SliceData(r), len(r)))
		if e != raw {
			m.Ambiguous = true
		}
		note(e)
		if sub == 0 || m.Ambiguous && firstEnforce != nil {
			// Refused, enforced, and attributed: no other reading can
			// change that. An attack path usually stops here after its
			// first reading.
			break
		}
	}
	if m.Ambiguous {
		note(raw)
		m.Entry, m.DryRun = firstEnforce, firstEnforce == nil
		if m.DryRun {
			m.Entry = first
		}
	}
	return m
}

// indexes appends the path indexes a request for host consults, in
// lookupHost's order: the exact host, its wildcard suffixes longest first,
// then every host.
func (t *Table) indexes(dst []*pathIndex, host []byte, ok bool) []*pathIndex {
	if ok {
		if idx := t.exact[string(host)]; idx != nil && !idx.empty() {
			dst = append(dst, idx)
		}
		if len(t.wildcard) > 0 {
			for i := 1; i < len(host); i++ {
				if host[i] != '.' {
					continue
				}
				if idx := t.wildcard[string(host[i+1:])]; idx != nil && !idx.empty() {
					dst = append(dst, idx)
				}
			}
		}
	}
	if !t.any.empty() {
		dst = append(dst, t.any)
	}
	return dst
}

// hostEntries returns one of the entries in idxs, an Enforce one if there is
// one, and whether they are all DryRun. It walks every claim: only a path too
// long to read every way asks.
func hostEntries(idxs []*pathIndex) (e *Entry, allDryRun bool) {
	visit := func(c *Entry) bool {
		if e == nil {
			e = c
		}
		if c.Policy.Mode() != cors.ModeDryRun {
			e = c
			return false
		}
		return true
	}
	for _, idx := range idxs {
		for _, c := range idx.small {
			if !visit(c.entry) {
				return e, false
			}
		}
		for _, c := range idx.large {
			if !visit(c) {
				return e, false
			}
		}
	}
	return e, true
}

// lookupIn is lookupHost over the indexes found by indexes, for a path
// without query or fragment.
func lookupIn(idxs []*pathIndex, path string) *Entry {
	for _, idx := range idxs {
		if e := idx.lookupPath(path); e != nil {
			return e
		}
	}
	return nil
}

// readingsOf returns the normalisation steps that could change how path
// (without its query) is read: 0 for a path every reading leaves as it is.
// It errs on the side of a step: a step that changes nothing costs one
// lookup, a step left out could grant a request the wrong policy.
func readingsOf(path string) uint8 {
	var f uint8
	dot := false // a '.' or "%2E" somewhere
	seg := 0     // start of the current segment
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			if s := path[seg:i]; s == "." || s == ".." {
				f |= readDots
			}
			if i < len(path) && i > 0 && path[i-1] == '/' {
				f |= readMerge
			}
			seg = i + 1
			continue
		}
		switch c := path[i]; c {
		case '.':
			dot = true
		case '\\':
			f |= readBackslash
		case ';':
			f |= readParams
		case '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				continue // not an escape: read as is by every reading
			}
			v := unhex(path[i+1])<<4 | unhex(path[i+2])
			switch {
			case v == '/':
				f |= readSlashes
			case v == '\\':
				f |= readSlashes | readBackslash
			case v == '.':
				dot = true
			}
			if isUnreserved(v) || isLowerHex(path[i+1]) || isLowerHex(path[i+2]) {
				f |= readPercent
			}
		}
	}
	if f&(readSlashes|readBackslash|readParams) != 0 {
		// New separators and dropped parameters can make empty segments.
		f |= readMerge
	}
	if dot && f&(readPercent|readSlashes|readBackslash|readParams) != 0 {
		// "%2e%2e", "..%2F", "..\" and "..;" become dot segments.
		f |= readDots
	}
	return f
}

// appendReading appends to dst the reading of path (without its query) under
// flags, which is always a path starting with "/" and never longer than path
// plus one byte (one when path does not start with "/"). Under flags 0 it is
// path itself.
func appendReading(dst []byte, path string, flags uint8) []byte {
	dst = append(dst, '/')
	base := len(dst) - 1 // the reading starts here
	seg := len(dst)      // start of the current segment's content
	i := 0
	if strings.HasPrefix(path, "/") {
		i = 1
	}
	inParams := false
	for i < len(path) {
		c := path[i]
		sep := c == '/' || c == '\\' && flags&readBackslash != 0
		// An escape is three bytes; width says how many path bytes c stands for.
		width, escaped := 1, false
		if c == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]) {
			width, escaped = 3, true
			v := unhex(path[i+1])<<4 | unhex(path[i+2])
			switch {
			case (v == '/' || v == '\\') && flags&readSlashes != 0:
				c, escaped = v, false
				sep = v == '/' || flags&readBackslash != 0
			case isUnreserved(v) && flags&readPercent != 0:
				c, escaped = v, false
			}
		}
		i += width
		if sep {
			dst = endSegment(dst, base, seg, flags)
			dst = append(dst, '/')
			seg, inParams = len(dst), false
			continue
		}
		if inParams {
			continue
		}
		switch {
		case c == ';' && !escaped && flags&readParams != 0:
			inParams = true
		case escaped && flags&readPercent != 0:
			dst = append(dst, '%', upperHex(path[i-2]), upperHex(path[i-1]))
		case escaped:
			dst = append(dst, path[i-3:i]...)
		default:
			dst = append(dst, c)
		}
	}
	return endSegment(dst, base, seg, flags)
}

// endSegment applies readMerge and readDots to the segment dst[seg:], which
// follows a '/' at dst[seg-1]; the reading starts at dst[base].
func endSegment(dst []byte, base, seg int, flags uint8) []byte {
	s := dst[seg:]
	switch {
	case flags&readDots != 0 && len(s) == 1 && s[0] == '.',
		flags&readMerge != 0 && len(s) == 0:
		// "/a/./b" is "/a/b"; "/a//b" is "/a/b". The '/' goes too, the next
		// segment brings its own.
		return dst[:seg-1]
	case flags&readDots != 0 && len(s) == 2 && s[0] == '.' && s[1] == '.':
		// "/a/b/../c" is "/a/c": drop ".." and the segment before it; at the
		// root there is none (§5.2.4: "/../a" is "/a").
		dst = dst[:seg-1]
		for len(dst) > base && dst[len(dst)-1] != '/' {
			dst = dst[:len(dst)-1]
		}
		if len(dst) > base {
			dst = dst[:len(dst)-1]
		}
		return dst
	}
	return dst
}

// isUnreserved reports RFC 3986 §2.3's unreserved characters, whose
// percent-encoded form is equivalent to the character.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

func upperHex(c byte) byte {
	if isLowerHex(c) {
		return c - 'a' + 'A'
	}
	return c
}
