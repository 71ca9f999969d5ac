package limits

import (
	"encoding/binary"
	"math"
	"math/big"
	"strconv"
	"testing"
	"time"
)

// FuzzGCRA drives one key through a program of clock advances, requests
// and limit changes with arbitrary (huge, tiny, zero, NaN) limits and
// checks the invariants that must hold whatever the numbers: no panic, no
// overflow, Remaining within the burst, Reset within the bucket, RetryAfter
// positive exactly when rejected and honoured exactly, a recovered key
// after one full bucket, and never more admitted than burst + elapsed/interval.
func FuzzGCRA(f *testing.F) {
	f.Add(int64(100), int64(time.Second), 10, uint64(0), int64(1000), int64(time.Minute), 1, []byte{1, 2, 3, 200, 0, 255})
	f.Add(int64(1), int64(24*time.Hour), 0, uint64(0), int64(1e12), int64(1), 0, []byte{0, 0, 0, 128, 7})
	f.Add(int64(0), int64(0), 0, math.Float64bits(1e-300), int64(-5), int64(time.Hour), -3, []byte{9, 9, 9})
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), math.MaxInt, math.Float64bits(math.Inf(1)), int64(3), int64(10), 1, []byte{255, 255, 1})
	f.Add(int64(7), int64(time.Hour), 2, math.Float64bits(math.NaN()), int64(0), int64(0), 0, []byte{64, 65, 66, 67})
	f.Fuzz(func(t *testing.T, count1, per1 int64, burst1 int, rate2 uint64, count2, per2 int64, burst2 int, prog []byte) {
		lims := [2]Limit{
			{Count: count1, Period: time.Duration(per1), Burst: burst1},
			{Count: count2, Period: time.Duration(per2), Burst: burst2, Rate: math.Float64frombits(rate2)},
		}
		var now int64 = 1 << 40
		l := New(Options{Clock: func() int64 { return now }, Shards: 1})
		k := Key{Kind: KindTool, A: 1}
		cur := 0
		var admitted int64 // under the current limit, since start
		start := now
		charged := false // a call under the current limit since it was set
		for len(prog) >= 2 {
			op, arg := prog[0], prog[1]
			prog = prog[2:]
			lim := lims[cur]
			p, ok := lim.params()
			switch op % 4 {
			case 0: // advance by arg × a scale chosen by op
				scale := []int64{1, int64(time.Millisecond), int64(time.Second), int64(time.Hour)}[op/4%4]
				now += int64(arg) * scale
			case 1: // switch limits
				cur, admitted, start, charged = 1-cur, 0, now, false
			case 2, 3: // request n
				n := int(arg%8) + 1
				if op%4 == 3 {
					n = 1
				}
				d := l.AllowN(k, lim, n)
				if !ok {
					if !d.Allowed || d.Limit != 0 {
						t.Fatalf("zero limit %+v: %+v", lim, d)
					}
					continue
				}
				charged = true
				checkDecision(t, p, d, n)
				if d.Allowed {
					admitted += int64(n)
					if max := p.burst + (now-start)/p.iv + 1; admitted > max {
						t.Fatalf("admitted %d > %d under %+v", admitted, max, lim)
					}
					continue
				}
				if int64(n) > p.burst {
					continue
				}
				// RetryAfter is exact: admitted then, not 1ns before.
				if d.RetryAfter > 1 {
					now += int64(d.RetryAfter) - 1
					if d2 := l.Peek(k, lim); d2.Allowed && n == 1 {
						t.Fatalf("admitted before RetryAfter %v: %+v", d.RetryAfter, d2)
					}
					now++
				} else {
					now += int64(d.RetryAfter)
				}
				if d2 := l.AllowN(k, lim, n); !d2.Allowed {
					t.Fatalf("rejected at RetryAfter %v under %+v: %+v", d.RetryAfter, lim, d2)
				} else {
					admitted += int64(n)
				}
			}
			if now >= maxClock/2 { // the clock must stay monotonic and in range
				return
			}
			// After one full bucket's time since the last call under the
			// current limit, the bucket is full.
			if ok && charged && arg == 255 {
				now += p.cap
				if d := l.Peek(k, lim); !d.Allowed || d.Remaining != p.burst {
					t.Fatalf("not full after %v under %+v: %+v", time.Duration(p.cap), lim, d)
				}
			}
		}
	})
}

func checkDecision(t *testing.T, p params, d Decision, n int) {
	t.Helper()
	// No lockout, whatever the key's history (limit changes included): n
	// requests that fit the bucket never wait longer than n intervals.
	if int64(n) <= p.burst && int64(d.RetryAfter) > int64(n)*p.iv {
		t.Fatalf("RetryAfter %v > %d × %v: %+v", d.RetryAfter, n, time.Duration(p.iv), d)
	}
	if d.Remaining < 0 || d.Remaining > p.burst {
		t.Fatalf("Remaining %d outside [0, %d]: %+v", d.Remaining, p.burst, d)
	}
	if d.Reset < 0 || int64(d.Reset) > p.cap {
		t.Fatalf("Reset %v outside [0, %v]: %+v", d.Reset, time.Duration(p.cap), d)
	}
	if d.Allowed != (d.RetryAfter == 0) || d.RetryAfter < 0 {
		t.Fatalf("RetryAfter %v with Allowed %v", d.RetryAfter, d.Allowed)
	}
	if d.Limit < 1 {
		t.Fatalf("Limit %d", d.Limit)
	}
}

// FuzzAppendSeconds checks the header formatting against big-integer
// arithmetic for every duration.
func FuzzAppendSeconds(f *testing.F) {
	for _, d := range []int64{0, 1, -1, 999_999_999, 1_000_000_000, 1_000_000_001, math.MaxInt64, math.MinInt64} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d int64) {
		want := new(big.Int)
		if d > 0 { // ceil(d / 1e9)
			want.SetInt64(d)
			want.Add(want, big.NewInt(999_999_999))
			want.Quo(want, big.NewInt(1_000_000_000))
		}
		prefix := []byte("v=")
		got := AppendSeconds(prefix, time.Duration(d))
		if string(got[:2]) != "v=" || string(got[2:]) != want.String() {
			t.Fatalf("AppendSeconds(%d) = %q, want v=%s", d, got, want)
		}
		if want.Sign() == 0 {
			want.SetInt64(1)
		}
		if got := AppendRetryAfter(nil, time.Duration(d)); string(got) != want.String() {
			t.Fatalf("AppendRetryAfter(%d) = %q, want %s", d, got, want)
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(d))
		dec := Decision{Limit: int64(binary.LittleEndian.Uint64(b[:]) | 1), Remaining: d, Reset: time.Duration(d), RetryAfter: time.Duration(d)}
		dec.WriteHeaders(nil, func(name string, value []byte) {
			if _, err := strconv.ParseInt(string(value), 10, 64); err != nil {
				t.Fatalf("%s: %q is not an integer", name, value)
			}
		})
	})
}
