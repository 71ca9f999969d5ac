package limits

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

func TestAppendSeconds(t *testing.T) {
	tests := []struct {
		d          time.Duration
		reset      string
		retryAfter string
	}{
		{math.MinInt64, "0", "1"},
		{-time.Second, "0", "1"},
		{0, "0", "1"},
		{1, "1", "1"},
		{999 * time.Millisecond, "1", "1"},
		{time.Second, "1", "1"},
		{time.Second + 1, "2", "2"},
		{90 * time.Second, "90", "90"},
		{24 * time.Hour, "86400", "86400"},
		{math.MaxInt64, "9223372037", "9223372037"},
	}
	for _, tt := range tests {
		if got := string(AppendSeconds([]byte("x="), tt.d)); got != "x="+tt.reset {
			t.Errorf("AppendSeconds(%v) = %q, want %q", tt.d, got, "x="+tt.reset)
		}
		if got := string(AppendRetryAfter(nil, tt.d)); got != tt.retryAfter {
			t.Errorf("AppendRetryAfter(%v) = %q, want %q", tt.d, got, tt.retryAfter)
		}
	}
}

func TestWriteHeaders(t *testing.T) {
	tests := []struct {
		name string
		d    Decision
		want map[string]string
	}{
		{"admitted", Decision{Allowed: true, Limit: 1000, Remaining: 16, Reset: 60 * time.Millisecond},
			map[string]string{HeaderLimit: "1000", HeaderRemaining: "16", HeaderReset: "1"}},
		{"rejected", Decision{Limit: 5, Reset: 90 * time.Minute, RetryAfter: 12*time.Minute + 1},
			map[string]string{HeaderLimit: "5", HeaderRemaining: "0", HeaderReset: "5400", HeaderRetryAfter: "721"}},
		{"rejected, tiny wait", Decision{Limit: 100, Reset: time.Second, RetryAfter: time.Nanosecond},
			map[string]string{HeaderLimit: "100", HeaderRemaining: "0", HeaderReset: "1", HeaderRetryAfter: "1"}},
		{"no limit", Decision{Allowed: true}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			buf := make([]byte, 0, 4) // too small: values must survive growth
			tt.d.WriteHeaders(buf, func(name string, value []byte) {
				if _, dup := got[name]; dup {
					t.Errorf("%s set twice", name)
				}
				got[name] = string(value)
			})
			if len(got) != len(tt.want) {
				t.Errorf("headers = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestZeroAlloc pins the hot path at zero allocations.
func TestZeroAlloc(t *testing.T) {
	l := New(Options{})
	lim := LimitFrom(1000, time.Second, 100)
	addr := netip.MustParseAddr("2001:db8::1")
	consumer := []byte("consumer-42")
	keys := []Key{{Kind: KindTenant, A: 1}, {Kind: KindTool, A: 2}, BytesKey(KindConsumer, consumer), AddrKey(KindSource, addr)}
	lims := []Limit{lim, lim, lim, lim}
	buf := make([]byte, 0, 64)
	var sink int
	set := func(name string, value []byte) { sink += len(name) + len(value) }
	l.Allow(keys[0], lim)
	l.AllowAll(keys, lims)
	esc := NewEscalator(EscalatorOptions{After: 1 << 30})
	esc.Reject(addr)
	cases := map[string]func(){
		"Allow":        func() { l.Allow(keys[0], lim) },
		"AllowN":       func() { l.AllowN(keys[1], lim, 2) },
		"Peek":         func() { l.Peek(keys[1], lim) },
		"AllowAll":     func() { l.AllowAll(keys, lims) },
		"StringKey":    func() { sink += int(StringKey(KindConsumer, "consumer-42").A) },
		"BytesKey":     func() { sink += int(BytesKey(KindConsumer, consumer).A) },
		"AddrKey":      func() { sink += int(AddrKey(KindSource, addr).B) },
		"WriteHeaders": func() { buf = Decision{Limit: 10, RetryAfter: time.Second}.WriteHeaders(buf[:0], set) },
		"Reject":       func() { esc.Reject(addr) },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %.1f times per call", name, n)
		}
	}
}
