package webhook

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		reason string // "" = allowed
	}{
		{"93.184.216.34", ""},
		{"2606:4700::1111", ""},
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"192.168.1.1", "private"},
		{"fd00::1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "link-local"},
		{"239.1.1.1", "multicast"},
		{"ff02::1", "link-local"},
		{"ff05::1", "multicast"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"198.18.0.1", "benchmarking"},
		{"255.255.255.255", "broadcast"},
		{"fec0::1", "site-local"},
		{"64:ff9b::7f00:1", "NAT64-embedded loopback"},
		{"64:ff9b::5db8:d822", ""},
		{"2002:a9fe:a9fe::", "6to4-embedded link-local"},
		// The neighbours of the probes in issue #10.14: each embedding
		// and shared range, at connect time (spec.NonPublicAddr has the
		// full table).
		{"100.127.255.254", "shared (carrier-grade NAT)"},
		{"::ffff:100.64.0.1", "shared (carrier-grade NAT)"},
		{"64:ff9b::a00:1", "NAT64-embedded private"},
		{"64:ff9b:1::1", "NAT64 local-use"},
		{"2002:7f00:1::", "6to4-embedded loopback"},
		{"2002:5db8:d822::1", ""},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo-embedded loopback"},
		{"2001:0:7f00:1::1", "Teredo server-embedded loopback"},
		{"::ffff:0:a00:1", "IPv4-translated-embedded private"},
		{"::7f00:1", "IPv4-compatible (deprecated)"},
		{"192.0.0.170", "reserved"},
		{"240.0.0.1", "reserved"},
		{"192.0.2.1", "documentation"},
		{"2001:db8::1", "documentation"},
		{"fc00::1", "private"},
		{"4000::1", "reserved"},
		{"fe80::1%eth0", "link-local"},
	} {
		err := CheckAddr(netip.MustParseAddr(tc.addr))
		var re *RefusedError
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%s refused: %v", tc.addr, err)
		case tc.reason != "" && (!errors.As(err, &re) || re.Reason != tc.reason):
			t.Errorf("%s: got %v, want refusal %q", tc.addr, err, tc.reason)
		}
	}
}

func TestGuardedDialRefusesLoopback(t *testing.T) {
	_, err := dialer(true)(context.Background(), "tcp", "127.0.0.1:9")
	var re *RefusedError
	if !errors.As(err, &re) || re.Reason != "loopback" {
		t.Fatalf("dial 127.0.0.1: %v", err)
	}
	// Names are resolved first; the check sees the address.
	_, err = dialer(true)(context.Background(), "tcp", "localhost:9")
	if !errors.As(err, &re) {
		t.Fatalf("dial localhost: %v", err)
	}
}

// TestGuardedDialRefusesTheClass: the dialer's guard (wired into the
// dialer, see above) refuses the literal probes of issue #10.14 on the
// address being connected to. It is called directly: a machine without
// IPv6 would fail to create the socket before the guard runs.
func TestGuardedDialRefusesTheClass(t *testing.T) {
	for _, tc := range []struct{ addr, reason string }{
		{"100.64.0.1:9", "shared (carrier-grade NAT)"},
		{"[64:ff9b::7f00:1]:9", "NAT64-embedded loopback"},
		{"[2002:7f00:1::]:9", "6to4-embedded loopback"},
		{"[::ffff:169.254.169.254]:80", "link-local"},
		{"198.18.0.1:9", "benchmarking"},
	} {
		err := guardControl("tcp", tc.addr, nil)
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != tc.reason {
			t.Errorf("dial %s: %v, want refusal %q", tc.addr, err, tc.reason)
		}
	}
}
