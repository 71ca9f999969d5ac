package spec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a Go duration string such as "250ms", "5s", "10m" or "24h";
// "d" (days) is accepted too.
type Duration struct {
	// The text is parsed once, when the spec is decoded (YAML or JSON),
	// and kept as written: it is what JSON, YAML, diffs and digests show,
	// so a stored "1d" stays "1d" and is not rewritten as "24h0m0s". The
	// zero Duration is an unset field.
	text string
	d    time.Duration
}

// NewDuration parses text that does not come from a spec document: a
// command-line flag or a LocalAPI request field. Spec fields are parsed by
// the decoder; runtimes read them with D.
func NewDuration(text string) (Duration, error) {
	d, err := parseDuration(text)
	if err != nil {
		return Duration{}, err
	}
	return Duration{text: text, d: d}, nil
}

// DurationOf returns d as a Duration, written the way time.Duration prints
// it ("1m30s"). It is for specs built in code.
func DurationOf(d time.Duration) Duration {
	return Duration{text: d.String(), d: d}
}

// MustDuration is NewDuration for literals in code and tests; it panics
// on a bad duration.
func MustDuration(text string) Duration {
	d, err := NewDuration(text)
	if err != nil {
		panic(err)
	}
	return d
}

// D is the parsed duration (0 when unset).
func (d Duration) D() time.Duration { return d.d }

// String returns the duration as written.
func (d Duration) String() string { return d.text }

// IsZero reports whether the field is unset.
func (d Duration) IsZero() bool { return d.text == "" }

// MarshalText returns the text as written: the JSON (and so the stored and
// digested) form is the same string a `type Duration string` had.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.text), nil }

// UnmarshalText parses b; an empty string is an unset Duration. JSON
// decodes strings through it, and leaves the field unset for null.
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Duration{}
		return nil
	}
	v, err := NewDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// parseDuration parses Go duration syntax ("250ms", "1h30m", "-5s") plus
// "d" for days of 24 hours, anywhere in the sequence ("90d", "1d12h",
// "1.5d").
func parseDuration(s string) (time.Duration, error) {
	if !strings.Contains(s, "d") {
		v, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return v, nil
	}
	orig := s
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q", orig)
	}
	var total int64 // nanoseconds
	for s != "" {
		i := 0
		for i < len(s) && (s[i] == '.' || s[i] >= '0' && s[i] <= '9') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		num := s[:i]
		j := i
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit := s[i:j]
		s = s[j:]
		if unit == "" {
			return 0, fmt.Errorf("invalid duration %q: missing unit after %s", orig, num)
		}
		var part int64
		if unit == "d" {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || num == "." {
				return 0, fmt.Errorf("invalid duration %q", orig)
			}
			ns := f * float64(24*time.Hour)
			if ns >= math.MaxInt64 {
				return 0, fmt.Errorf("invalid duration %q: too long", orig)
			}
			part = int64(ns)
		} else {
			v, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", orig)
			}
			part = int64(v)
		}
		if total > math.MaxInt64-part {
			return 0, fmt.Errorf("invalid duration %q: too long", orig)
		}
		total += part
	}
	if neg {
		total = -total
	}
	return time.Duration(total), nil
}

// errNotPositive is returned by positiveDuration for zero or negative values.
var errNotPositive = errors.New("must be positive")

// durationHint is the hint of an unparsable duration.
const durationHint = "use Go duration syntax with a unit, e.g. 500ms, 30s, 5m, 2h or 1d"
