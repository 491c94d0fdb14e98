package table

import "strings"

// Hooks for the black-box tests in package table_test: the normaliser is
// checked against a reference implementation there.

// Reading flags, as the tests name them.
const (
	ReadPercent   = readPercent
	ReadSlashes   = readSlashes
	ReadBackslash = readBackslash
	ReadParams    = readParams
	ReadMerge     = readMerge
	ReadDots      = readDots
	ReadAll       = readPercent | readSlashes | readBackslash | readParams | readMerge | readDots
	MaxReadingLen = maxReadingLen
)

// Reading is the path (its query and fragment cut, as Match does) as read
// under flags.
func Reading(path string, flags uint8) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	return string(appendReading(nil, path, flags))
}

// ReadingsOf is the set of steps that could change how path is read.
func ReadingsOf(path string) uint8 { return readingsOf(path) }
