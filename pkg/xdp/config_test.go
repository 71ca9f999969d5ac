package xdp

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigSettings(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(t *testing.T, s settings)
	}{
		{name: "zero value", check: func(t *testing.T, s settings) {
			if s.mode != ModeAuto || s.conns || s.step != 0 || len(s.ports) != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "bad mode", cfg: Config{Mode: "turbo"}, wantErr: `mode "turbo"`},
		{name: "bad count", cfg: Config{Count: "bytes"}, wantErr: `count "bytes"`},
		{name: "negative rate", cfg: Config{Rate: -1}, wantErr: "rate -1"},
		{name: "port 0", cfg: Config{Ports: []uint16{0}}, wantErr: "port 0"},
		{name: "long interface", cfg: Config{Interfaces: []string{"a-very-long-name0"}}, wantErr: "1 to 15"},
		{name: "invalid prefix", cfg: Config{Deny: []netip.Prefix{{}}}, wantErr: "invalid prefix"},
		{name: "normalizes", cfg: Config{
			Interfaces: []string{"eth1", "eth0", "eth1"},
			Mode:       ModeGeneric,
			Count:      CountConnections,
			Ports:      []uint16{443, 80, 443},
			Deny:       prefixes("10.1.2.3/8", "::ffff:192.0.2.0/120", "192.0.2.0/24", "2001:db8::1/32"),
		}, check: func(t *testing.T, s settings) {
			if !slices.Equal(s.ifaces, []string{"eth0", "eth1"}) || !slices.Equal(s.ports, []uint16{80, 443}) || !s.conns || s.mode != ModeGeneric {
				t.Errorf("%+v", s)
			}
			want := prefixes("10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32")
			if !slices.Equal(s.deny, want) {
				t.Errorf("deny %v, want %v", s.deny, want)
			}
		}},
		{name: "rate with default burst", cfg: Config{Rate: 100}, check: func(t *testing.T, s settings) {
			if s.step != 10*time.Millisecond || s.burst != 100 || s.tolerance != 990*time.Millisecond {
				t.Errorf("step %v burst %d tolerance %v", s.step, s.burst, s.tolerance)
			}
		}},
		{name: "slow rate", cfg: Config{Rate: 0.5, Burst: 2}, check: func(t *testing.T, s settings) {
			if s.step != 2*time.Second || s.tolerance != 2*time.Second {
				t.Errorf("step %v tolerance %v", s.step, s.tolerance)
			}
		}},
		{name: "fractional rate default burst", cfg: Config{Rate: 0.1}, check: func(t *testing.T, s settings) {
			if s.burst != 1 || s.tolerance != 0 {
				t.Errorf("burst %d tolerance %v", s.burst, s.tolerance)
			}
		}},
		{name: "huge rate", cfg: Config{Rate: 1e12}, check: func(t *testing.T, s settings) {
			if s.step != 1 {
				t.Errorf("step %v", s.step)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.cfg.settings()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestDiffSorted(t *testing.T) {
	added, removed := diffSorted([]int{1, 3, 5, 7}, []int{2, 3, 7, 9}, func(a, b int) int { return a - b })
	if !slices.Equal(added, []int{2, 9}) || !slices.Equal(removed, []int{1, 5}) {
		t.Fatalf("added %v removed %v", added, removed)
	}
}

func TestBlockSetEffective(t *testing.T) {
	var s blockSet
	now := time.Now()
	put := func(p string, d time.Duration) {
		s.put(Block{Prefix: netip.MustParsePrefix(p), Until: now.Add(d)})
	}
	put("10.0.0.0/8", time.Hour)
	put("10.1.0.0/16", time.Minute)
	put("10.1.2.3/32", time.Second)
	put("10.2.0.0/16", 2*time.Hour)
	put("::/0", 3*time.Hour) // never covers IPv4

	eff := s.effective(netip.MustParsePrefix("10.0.0.0/8"))
	want := map[string]time.Duration{"10.0.0.0/8": time.Hour, "10.1.0.0/16": time.Hour, "10.1.2.3/32": time.Hour, "10.2.0.0/16": 2 * time.Hour}
	if len(eff) != len(want) {
		t.Fatalf("effective %v", eff)
	}
	for p, d := range want {
		if got := eff[netip.MustParsePrefix(p)]; !got.Equal(now.Add(d)) {
			t.Errorf("%s: until %v, want now+%v", p, got.Sub(now), d)
		}
	}
	if !s.blocked(mustAddr("10.1.2.3"), now.Add(59*time.Minute)) || s.blocked(mustAddr("11.0.0.1"), now) {
		t.Fatal("blocked")
	}
	if !s.blocked(mustAddr("2001:db8::1"), now) || s.blocked(mustAddr("10.9.9.9"), now.Add(90*time.Minute)) {
		t.Fatal("families")
	}
}

func TestUnsupportedError(t *testing.T) {
	err := &unsupportedError{reason: "need CAP_BPF and CAP_NET_ADMIN (running as uid 1000)"}
	if err.Error() != "XDP off: need CAP_BPF and CAP_NET_ADMIN (running as uid 1000)" {
		t.Fatal(err.Error())
	}
	if !errors.Is(err, ErrUnsupported) {
		t.Fatal("not ErrUnsupported")
	}
}
