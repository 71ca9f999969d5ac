package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rate is a sustained rate written "N/s", "N/min", "N/h" or "N/d" with N a
// positive integer.
type Rate struct {
	// Like Duration, a Rate is parsed once, when decoded, and keeps its
	// text for JSON, YAML, diffs and digests. The zero Rate is unset.
	text  string
	count int64
	per   time.Duration
}

// NewRate parses text that does not come from a spec document (a flag, a
// LocalAPI request field); spec fields are parsed by the decoder.
func NewRate(text string) (Rate, error) {
	n, per, err := parseRate(text)
	if err != nil {
		return Rate{}, err
	}
	return Rate{text: text, count: n, per: per}, nil
}

// MustRate is NewRate for literals in code and tests; it panics on a bad
// rate.
func MustRate(text string) Rate {
	r, err := NewRate(text)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the rate as written.
func (r Rate) String() string { return r.text }

// IsZero reports whether the field is unset.
func (r Rate) IsZero() bool { return r.text == "" }

// Count is N of "N/per" (0 when unset).
func (r Rate) Count() int64 { return r.count }

// Per is the period of "N/per" (0 when unset).
func (r Rate) Per() time.Duration { return r.per }

// PerSecond is the sustained rate in requests per second (0 when unset).
func (r Rate) PerSecond() float64 {
	if r.per <= 0 {
		return 0
	}
	return float64(r.count) / r.per.Seconds()
}

// MarshalText returns the rate as written.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.text), nil }

// UnmarshalText parses b; an empty string is an unset Rate. JSON decodes
// strings through it, and leaves the field unset for null.
func (r *Rate) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = Rate{}
		return nil
	}
	v, err := NewRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// rateUnits maps the unit after the slash to its period.
var rateUnits = map[string]time.Duration{
	"s":   time.Second,
	"min": time.Minute,
	"h":   time.Hour,
	"d":   24 * time.Hour,
}

// parseRate splits a rate such as "100/s" into its count and period. Units
// are s, min, h and d; the count is a positive integer.
func parseRate(str string) (count int64, per time.Duration, err error) {
	if str == "" {
		return 0, 0, errors.New("empty rate")
	}
	num, unit, ok := strings.Cut(str, "/")
	if !ok {
		return 0, 0, fmt.Errorf("rate %q has no unit: write N/s, N/min, N/h or N/d", str)
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, 0, fmt.Errorf("rate %q: count %q is not a positive integer", str, num)
	}
	n, perr := strconv.ParseInt(num, 10, 64)
	if perr != nil {
		return 0, 0, fmt.Errorf("rate %q: count %q is out of range", str, num)
	}
	if n <= 0 {
		return 0, 0, fmt.Errorf("rate %q: count must be positive", str)
	}
	d, ok := rateUnits[unit]
	if !ok {
		return 0, 0, fmt.Errorf("rate %q: unknown unit %q (use s, min, h or d)", str, unit)
	}
	return n, d, nil
}

// rateHint suggests a fix for an unparsable rate.
func rateHint(s string) string {
	num, unit, ok := strings.Cut(s, "/")
	if ok {
		switch strings.ToLower(unit) {
		case "m", "mn", "mins", "minute", "minutes":
			return fmt.Sprintf("did you mean %q?", num+"/min")
		case "sec", "secs", "second", "seconds":
			return fmt.Sprintf("did you mean %q?", num+"/s")
		case "hr", "hrs", "hour", "hours":
			return fmt.Sprintf("did you mean %q?", num+"/h")
		case "day", "days":
			return fmt.Sprintf("did you mean %q?", num+"/d")
		}
	}
	return "write a rate as N/s, N/min, N/h or N/d, e.g. 100/s"
}

// PerSecond is the sustained rate in requests per second (0 when r is nil
// or unset).
func (r *RateLimit) PerSecond() float64 {
	if r.IsZero() {
		return 0
	}
	return r.Rate.PerSecond()
}

// EffectiveBurst is the burst in force: Burst when set, else the rate per
// second rounded up, at least 1.
func (r *RateLimit) EffectiveBurst() int {
	if r == nil {
		return 1
	}
	if r.Burst > 0 {
		return r.Burst
	}
	return defaultBurst(r.PerSecond())
}

// defaultBurst is max(1, ceil(perSecond)), capped to fit an int.
func defaultBurst(perSecond float64) int {
	b := math.Ceil(perSecond)
	if b < 1 {
		return 1
	}
	if b > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(b)
}

// UnmarshalJSON accepts the bare rate string ("100/s") as well as the
// mapping form ({"rate": "100/s", "burst": 20}).
func (r *RateLimit) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decode rate limit: %w", err)
		}
		var rate Rate
		if err := rate.UnmarshalText([]byte(s)); err != nil {
			return err
		}
		*r = RateLimit{Rate: rate}
		return nil
	}
	type plain RateLimit
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("decode rate limit: %w", err)
	}
	*r = RateLimit(p)
	return nil
}

// UnmarshalYAML lets goccy/go-yaml's own decoder accept both forms too (the
// spec loader decodes RateLimit itself).
func (r *RateLimit) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		var rate Rate
		if err := rate.UnmarshalText([]byte(s)); err != nil {
			return err
		}
		*r = RateLimit{Rate: rate}
		return nil
	}
	type plain RateLimit
	var p plain
	if err := unmarshal(&p); err != nil {
		return err
	}
	*r = RateLimit(p)
	return nil
}
