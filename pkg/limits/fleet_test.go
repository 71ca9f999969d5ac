package limits

import (
	"testing"
	"time"
)

// TestNameKeyStable pins NameKey's output: data planes of different
// builds and machines must derive the same key for the same name, so the
// function may never change.
func TestNameKeyStable(t *testing.T) {
	tests := []struct {
		kind Kind
		name string
		a, b uint64
	}{
		{KindTenant, "tenant/acme", 0, 0},
		{KindTool, "tool/acme/billing-api", 0, 0},
		{KindTool, "", 0, 0},
	}
	for i := range tests {
		k := NameKey(tests[i].kind, tests[i].name)
		tests[i].a, tests[i].b = k.A, k.B
	}
	// printf 'stoa limits v1\0tenant/acme' | sha256sum, first 32 hex digits.
	golden := [][2]uint64{
		{0x45e8ab2820854ff6, 0xf20ef0049705d45f},
		{0x8fb01736fd38dfa8, 0x982c47cc6bbc2663},
		{0x0d28177d05cddc33, 0xdd0b1c744cb77a11},
	}
	for i, tt := range tests {
		if got := [2]uint64{tt.a, tt.b}; got != golden[i] {
			t.Errorf("NameKey(%d, %q) = %#x, %#x; pinned %#x, %#x", tt.kind, tt.name, tt.a, tt.b, golden[i][0], golden[i][1])
		}
	}
	if NameKey(KindTenant, "x") == NameKey(KindTool, "x") {
		t.Error("kind is not part of the key")
	}
	if NameKey(KindTenant, "x") == NameKey(KindTenant, "y") {
		t.Error("different names, same key")
	}
}

func TestShapeMatchesParams(t *testing.T) {
	for _, l := range []Limit{LimitFrom(300, time.Second, 0), LimitFrom(1000, time.Minute, 0), {Rate: 7.5, Burst: 2}, LimitFrom(1, 24*time.Hour, 10)} {
		s, ok := l.Shape()
		p, _ := l.params()
		if !ok || int64(s.Interval) != p.iv || s.Burst != p.burst || int64(s.Capacity) != p.cap || s.Count != p.count {
			t.Errorf("%+v: shape %+v, params %+v", l, s, p)
		}
	}
	if _, ok := (Limit{}).Shape(); ok {
		t.Error("the zero Limit has a shape")
	}
}

func TestShare(t *testing.T) {
	tests := []struct {
		l     Limit
		n     int
		iv    time.Duration
		burst int64
		count int64
	}{
		{LimitFrom(300, time.Second, 0), 3, 10 * time.Millisecond, 100, 300},
		{LimitFrom(300, time.Second, 0), 1, time.Second / 300, 300, 300},
		{LimitFrom(10, time.Second, 5), 4, 400 * time.Millisecond, 2, 10},
		{LimitFrom(1, time.Hour, 1), 3, 3 * time.Hour, 1, 1},
		{Limit{Rate: 9, Burst: 9}, 3, time.Second / 3, 3, 3},
	}
	for _, tt := range tests {
		s, ok := tt.l.Share(tt.n).Shape()
		if !ok || s.Interval != tt.iv || s.Burst != tt.burst || s.Count != tt.count {
			t.Errorf("%+v.Share(%d) = %+v, want interval %v burst %d count %d", tt.l, tt.n, s, tt.iv, tt.burst, tt.count)
		}
	}
	if !(Limit{}).Share(3).IsZero() {
		t.Error("a share of no limit is a limit")
	}
}
