package common

import "testing"

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{Rate(0), "0"}, {Rate(0.44), "0.4"}, {Rate(12.5), "12.5"}, {Rate(250.4), "250"}, {Rate(1234), "1.2k"}, {Rate(2.5e6), "2.5M"},
		{Count(999), "999"}, {Count(12345), "12.3k"}, {Count(12_345_678), "12.3M"},
		{Ms(0), "-"}, {Ms(0.85), "850µs"}, {Ms(4.21), "4.2ms"}, {Ms(250), "250ms"}, {Ms(1300), "1.3s"},
		{Uptime(3723), "1h2m"}, {Uptime(59), "0m59s"}, {Uptime(90000), "1d1h"},
		{Fit("abcdef", 4), "abc…"}, {Fit("ab", 4), "ab  "}, {FitRight("ab", 4), "  ab"},
		{Clip("abc\ndef\nghi", 2, 2), "ab\nde"}, {Clip("a", 3, 2), "a\n"},
		{Spread("l", "r", 5), "l   r"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestHistory(t *testing.T) {
	h := NewHistory(4)
	for i := 1; i <= 6; i++ {
		h.Tick()
		h.Record("a", float64(i), float64(10*i))
		if i%2 == 0 {
			h.Record("b", float64(i), 0)
		}
	}
	rps, p99 := h.Series("a")
	if want := []float64{3, 4, 5, 6}; !equal(rps, want) || p99[3] != 60 {
		t.Errorf("a = %v %v, want %v", rps, p99, want)
	}
	if rps, _ := h.Series("b"); !equal(rps, []float64{0, 4, 0, 6}) {
		t.Errorf("b = %v", rps)
	}
	h.Tick()
	if rps, _ := h.Series("b"); !equal(rps, []float64{4, 0, 6, 0}) {
		t.Errorf("b after a quiet tick = %v", rps)
	}
	if rps, _ := h.Series("nope"); rps != nil {
		t.Errorf("unknown key: %v", rps)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
