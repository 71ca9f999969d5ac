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
type Rate string

// String returns the rate as written.
func (r Rate) String() string { return string(r) }

// rateUnits maps the unit after the slash to its period.
var rateUnits = map[string]time.Duration{
	"s":   time.Second,
	"min": time.Minute,
	"h":   time.Hour,
	"d":   24 * time.Hour,
}

// ParseRate splits a rate such as "100/s" into its count and period. Units
// are s, min, h and d; the count is a positive integer.
func ParseRate(s Rate) (count int64, per time.Duration, err error) {
	str := string(s)
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
func rateHint(s Rate) string {
	num, unit, ok := strings.Cut(string(s), "/")
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
// or does not parse).
func (r *RateLimit) PerSecond() float64 {
	if r.IsZero() {
		return 0
	}
	n, per, err := ParseRate(r.Rate)
	if err != nil {
		return 0
	}
	return float64(n) / per.Seconds()
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
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*r = RateLimit{Rate: Rate(s)}
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
		*r = RateLimit{Rate: Rate(s)}
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
