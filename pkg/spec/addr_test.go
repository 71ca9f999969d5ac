package spec

import (
	"net/netip"
	"testing"
)

func TestNonPublicAddr(t *testing.T) {
	for _, tc := range []struct{ addr, reason string }{
		// Public.
		{"93.184.216.34", ""},
		{"8.8.8.8", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.254", ""},
		{"2606:4700::1111", ""},
		{"2a00:1450:4001::200e", ""},
		{"::ffff:93.184.216.34", ""},
		{"64:ff9b::5db8:d822", ""},
		{"2002:5db8:d822::1", ""},
		{"2001:0:4136:e378:8000:63bf:a247:27dd", ""}, // Teredo, public client 93.184.216.34... inverted
		// IPv4 classes.
		{"0.0.0.0", "unspecified"},
		{"0.255.255.255", "unspecified"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"10.0.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.0.1", "private"},
		{"169.254.169.254", "link-local"},
		{"224.0.0.251", "link-local"},
		{"239.255.255.250", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"100.127.255.255", "shared (carrier-grade NAT)"},
		{"192.0.0.1", "reserved"},
		{"192.0.0.170", "reserved"},
		{"192.88.99.1", "reserved"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"240.0.0.1", "reserved"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		// IPv6 classes.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"ff02::1", "link-local"},
		{"ff01::1", "interface-local multicast"},
		{"ff0e::1", "multicast"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"fec0::1", "site-local"},
		{"100::1", "reserved (discard-only)"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"2001:2::1", "benchmarking"},
		{"2001:10::1", "reserved (IETF protocol assignment)"},
		{"4000::1", "reserved"},
		{"::2:3:4:5", "reserved"},
		// IPv4 inside IPv6: judged by the IPv4 address.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:100.64.0.1", "shared (carrier-grade NAT)"},
		{"::ffff:0:7f00:1", "IPv4-translated-embedded loopback"},
		{"::7f00:1", "IPv4-compatible (deprecated)"},
		{"::5db8:d822", "IPv4-compatible (deprecated)"},
		{"64:ff9b::7f00:1", "NAT64-embedded loopback"},
		{"64:ff9b::a9fe:a9fe", "NAT64-embedded link-local"},
		{"64:ff9b::6440:1", "NAT64-embedded shared (carrier-grade NAT)"},
		{"64:ff9b:1::5db8:d822", "NAT64 local-use"},
		{"2002:7f00:1::", "6to4-embedded loopback"},
		{"2002:a00:1::", "6to4-embedded private"},
		{"2002:c000:201::", "6to4-embedded documentation"},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo-embedded loopback"},
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo-embedded private"},
		{"2001:0:a00:1::", "Teredo server-embedded private"},
	} {
		a, err := netip.ParseAddr(tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if got := NonPublicAddr(a); got != tc.reason {
			t.Errorf("NonPublicAddr(%s) = %q, want %q", tc.addr, got, tc.reason)
		}
	}
	if NonPublicAddr(netip.Addr{}) != "invalid" {
		t.Error("the zero Addr is public")
	}
}

func TestNonPublicHost(t *testing.T) {
	for _, tc := range []struct{ host, reason string }{
		{"example.com", ""},
		{"hooks.example.com", ""},
		{"93.184.216.34", ""},
		{"localhost", "loopback"},
		{"LOCALHOST.", "loopback"},
		{"api.localhost", "loopback"},
		{"[::1]", "loopback"},
		{"2130706433", "loopback"},                   // 127.0.0.1 as one number
		{"0x7f.1", "loopback"},                       // hex and short form
		{"127.1", "loopback"},                        // short form
		{"0177.0.0.1", "loopback"},                   // octal
		{"0x7f000001", "loopback"},                   // hex
		{"1681915905", "shared (carrier-grade NAT)"}, // 100.64.0.1
		{"10.1", "private"},
		{"0xa9fea9fe", "link-local"},
		{"1.2.3.4.5", ""}, // not an address: a name, checked at connect time
		{"08.1.1.1", ""},  // invalid octal: a name
		{"cafe", ""},
	} {
		if got := NonPublicHost(tc.host); got != tc.reason {
			t.Errorf("NonPublicHost(%q) = %q, want %q", tc.host, got, tc.reason)
		}
	}
}

// TestWebhookURLClass: the probes of issue #10.14 and their neighbours are
// refused when validated, with the reason.
func TestWebhookURLClass(t *testing.T) {
	hook := func(url string, allow bool) string {
		s := tenantDoc + "---\napiVersion: stoa.io/v1alpha1\nkind: Webhook\nmetadata: {name: h, namespace: acme}\nspec:\n  url: " + url +
			"\n  events: [\"*\"]\n  secretRef: {env: S}\n"
		if allow {
			s += "  allowPrivate: true\n"
		}
		return s
	}
	for _, tc := range []struct{ url, reason string }{
		{"http://100.64.0.1/h", "shared (carrier-grade NAT)"},
		{"http://[64:ff9b::7f00:1]/h", "NAT64-embedded loopback"},
		{"http://[2002:7f00:1::]/h", "6to4-embedded loopback"},
		{"http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/h", "Teredo-embedded loopback"},
		{"http://[::ffff:7f00:1]/h", "loopback"},
		{"http://[::7f00:1]/h", "IPv4-compatible (deprecated)"},
		{"http://[fd00::1]:8443/h", "private"},
		{"http://[fec0::1]/h", "site-local"},
		{"http://198.18.0.1/h", "benchmarking"},
		{"http://240.0.0.1/h", "reserved"},
		{"http://255.255.255.255/h", "broadcast"},
		{"http://224.0.0.1/h", "link-local"},
		{"http://0.0.0.0/h", "unspecified"},
		{"http://192.0.0.8/h", "reserved"},
		{"http://2130706433/h", "loopback"},
		{"https://localhost./h", "loopback"},
	} {
		diags := Validate(mustParse(t, hook(tc.url, false)), ValidateOptions{})
		if d := findDiag(diags, "spec.url", "non-public address ("+tc.reason+")"); d == nil || !d.IsError() {
			t.Errorf("%s: want a refusal (%s), got %v", tc.url, tc.reason, diags)
		}
		if diags := Validate(mustParse(t, hook(tc.url, true)), ValidateOptions{}); len(diags) > 0 {
			t.Errorf("%s with allowPrivate: %v", tc.url, diags)
		}
	}
	for _, url := range []string{"https://hooks.example.com/h", "http://93.184.216.34/h", "http://[2606:4700::1111]/h", "http://[64:ff9b::5db8:d822]/h"} {
		if diags := Validate(mustParse(t, hook(url, false)), ValidateOptions{}); len(diags) > 0 {
			t.Errorf("%s refused: %v", url, diags)
		}
	}
}

// FuzzNonPublicHost checks the host classifier never panics, agrees with
// netip on canonical addresses and reads the legacy IPv4 forms as
// inet_aton does on the values it accepts.
func FuzzNonPublicHost(f *testing.F) {
	for _, s := range []string{"localhost", "127.0.0.1", "127.1", "0x7f.1", "2130706433", "0177.0.0.01", "[::1]", "fe80::1%eth0", "1.2.3.4.5", "0x", "08", "4294967296", "1.16777216", "example.com."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := NonPublicHost(s)
		if a, err := netip.ParseAddr(s); err == nil && r != NonPublicAddr(a) {
			t.Fatalf("NonPublicHost(%q) = %q, NonPublicAddr = %q", s, r, NonPublicAddr(a))
		}
		if a, ok := parseLegacyIPv4(s); ok {
			if !a.Is4() {
				t.Fatalf("parseLegacyIPv4(%q) = %v", s, a)
			}
			if c, err := netip.ParseAddr(s); err == nil && c != a {
				t.Fatalf("parseLegacyIPv4(%q) = %v, netip %v", s, a, c)
			}
		}
	})
}
