package spec

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	yaml "github.com/goccy/go-yaml"
)

func TestNewRate(t *testing.T) {
	tests := []struct {
		in    string
		count int64
		per   time.Duration
		err   string
	}{
		{"100/s", 100, time.Second, ""},
		{"5/min", 5, time.Minute, ""},
		{"1000/h", 1000, time.Hour, ""},
		{"10/d", 10, 24 * time.Hour, ""},
		{"1/s", 1, time.Second, ""},
		{"", 0, 0, "empty rate"},
		{"100", 0, 0, "no unit"},
		{"1000/m", 0, 0, `unknown unit "m"`},
		{"0/s", 0, 0, "must be positive"},
		{"-1/s", 0, 0, "not a positive integer"},
		{"1.5/s", 0, 0, "not a positive integer"},
		{" 1/s", 0, 0, "not a positive integer"},
		{"1/ s", 0, 0, "unknown unit"},
		{"/s", 0, 0, "not a positive integer"},
		{"99999999999999999999/s", 0, 0, "out of range"},
		{"1/s/s", 0, 0, "unknown unit"},
	}
	for _, tt := range tests {
		r, err := NewRate(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NewRate(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || r.Count() != tt.count || r.Per() != tt.per || r.String() != tt.in {
			t.Errorf("NewRate(%q) = %d, %v, %q, %v; want %d, %v", tt.in, r.Count(), r.Per(), r, err, tt.count, tt.per)
		}
	}
}

func TestRateHint(t *testing.T) {
	for in, want := range map[string]string{
		"1000/m":   `did you mean "1000/min"?`,
		"5/sec":    `did you mean "5/s"?`,
		"2/hour":   `did you mean "2/h"?`,
		"1/days":   `did you mean "1/d"?`,
		"whatever": "write a rate as N/s",
	} {
		if got := rateHint(in); !strings.HasPrefix(got, want) {
			t.Errorf("rateHint(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRateLimitPerSecondAndBurst(t *testing.T) {
	tests := []struct {
		r     *RateLimit
		perS  float64
		burst int
	}{
		{nil, 0, 1},
		{&RateLimit{}, 0, 1},
		{&RateLimit{Rate: MustRate("100/s")}, 100, 100},
		{&RateLimit{Rate: MustRate("100/s"), Burst: 7}, 100, 7},
		{&RateLimit{Rate: MustRate("90/min")}, 1.5, 2},
		{&RateLimit{Rate: MustRate("10/d")}, 10.0 / 86400, 1},
	}
	for _, tt := range tests {
		if got := tt.r.PerSecond(); got != tt.perS {
			t.Errorf("%+v PerSecond = %v, want %v", tt.r, got, tt.perS)
		}
		if got := tt.r.EffectiveBurst(); got != tt.burst {
			t.Errorf("%+v EffectiveBurst = %v, want %v", tt.r, got, tt.burst)
		}
	}
}

func TestRateLimitEncoding(t *testing.T) {
	for _, in := range []string{`"100/s"`, `{"rate":"100/s"}`} {
		var r RateLimit
		if err := json.Unmarshal([]byte(in), &r); err != nil || r.Rate != MustRate("100/s") || r.Burst != 0 {
			t.Errorf("unmarshal %s = %+v, %v", in, r, err)
		}
	}
	var r RateLimit
	if err := json.Unmarshal([]byte(`{"rate":"1/s","burst":3}`), &r); err != nil || r.Burst != 3 {
		t.Errorf("unmarshal mapping = %+v, %v", r, err)
	}
	if err := json.Unmarshal([]byte(`12`), &r); err == nil {
		t.Error("a number must not decode as a rate limit")
	}
	for _, in := range []string{`"100/m"`, `{"rate":"0/s"}`, `{"rate":5}`} {
		if err := json.Unmarshal([]byte(in), &r); err == nil {
			t.Errorf("unmarshal %s: want an error", in)
		}
	}
	b, _ := json.Marshal(&RateLimit{Rate: MustRate("100/s"), Burst: 20})
	if string(b) != `{"rate":"100/s","burst":20}` {
		t.Errorf("marshal JSON = %s", b)
	}
	y, err := yaml.Marshal(&RateLimit{Rate: MustRate("100/s"), Burst: 20})
	if err != nil || string(y) != "rate: 100/s\nburst: 20\n" {
		t.Errorf("marshal YAML = %q, %v", y, err)
	}
	for _, in := range []string{"100/s", "{rate: 100/s, burst: 2}"} {
		var r RateLimit
		if err := yaml.Unmarshal([]byte(in), &r); err != nil || r.Rate != MustRate("100/s") {
			t.Errorf("goccy unmarshal %q = %+v, %v", in, r, err)
		}
	}
}

func TestNewDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"250ms", 250 * time.Millisecond, false},
		{"1h30m", 90 * time.Minute, false},
		{"90d", 90 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"-1d", -24 * time.Hour, false},
		{"+2d", 48 * time.Hour, false},
		{"0", 0, false},
		{"2d3d", 5 * 24 * time.Hour, false},
		{"", 0, true},
		{"5", 0, true},
		{"d", 0, true},
		{"1dd", 0, true},
		{"1d5", 0, true},
		{"1x", 0, true},
		{"-", 0, true},
		{"..5d", 0, true},
		{"200000d", 0, true},
		{"106751d23h47m16s854775807ns", time.Duration(1<<63 - 1), false},
		{"106751d23h47m16s854775808ns", 0, true},
	}
	for _, tt := range tests {
		got, err := NewDuration(tt.in)
		if (err != nil) != tt.err || (!tt.err && (got.D() != tt.want || got.String() != tt.in)) {
			t.Errorf("NewDuration(%q) = %v (%q), %v; want %v (error %v)", tt.in, got.D(), got, err, tt.want, tt.err)
		}
	}
}

// TestDurationEncoding: JSON and YAML carry the text as written, an empty
// or null value is an unset Duration, and a bad one is an error.
func TestDurationEncoding(t *testing.T) {
	type holder struct {
		D Duration `json:"d,omitzero"`
		E Duration `json:"e"`
	}
	var h holder
	if err := json.Unmarshal([]byte(`{"d":"1d12h","e":null}`), &h); err != nil || h.D.D() != 36*time.Hour || h.D.String() != "1d12h" || !h.E.IsZero() {
		t.Fatalf("unmarshal = %+v, %v", h, err)
	}
	b, err := json.Marshal(h)
	if err != nil || string(b) != `{"d":"1d12h","e":""}` {
		t.Errorf("marshal = %s, %v", b, err)
	}
	b, _ = json.Marshal(holder{})
	if string(b) != `{"e":""}` {
		t.Errorf("marshal of unset = %s, want omitted d and empty e", b)
	}
	for _, in := range []string{`{"d":"5x"}`, `{"d":"5"}`, `{"d":5}`, `{"d":true}`} {
		if err := json.Unmarshal([]byte(in), &h); err == nil {
			t.Errorf("unmarshal %s: want an error", in)
		}
	}
	y, err := yaml.Marshal(holder{D: MustDuration("90d")})
	if err != nil || !strings.Contains(string(y), "d: 90d") {
		t.Errorf("marshal YAML = %q, %v", y, err)
	}
	if d := DurationOf(90 * time.Second); d.String() != "1m30s" || d.D() != 90*time.Second {
		t.Errorf("DurationOf = %q %v", d, d.D())
	}
}
