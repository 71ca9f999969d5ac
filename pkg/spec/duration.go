package spec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// String returns the duration as written.
func (d Duration) String() string { return string(d) }

// ParseDuration parses Go duration syntax ("250ms", "1h30m", "-5s") plus "d"
// for days of 24 hours, anywhere in the sequence ("90d", "1d12h", "1.5d").
func ParseDuration(d Duration) (time.Duration, error) {
	s := string(d)
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

// positiveDuration parses d and requires it to be greater than zero.
func positiveDuration(d Duration) (time.Duration, error) {
	v, err := ParseDuration(d)
	if err != nil {
		return 0, err
	}
	if v <= 0 {
		return 0, errNotPositive
	}
	return v, nil
}
