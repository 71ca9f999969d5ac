package tracing

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
		flags    byte
	}{
		{"valid sampled", validTP, true, 0x01},
		{"valid unsampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, 0},
		{"level 2 random flag kept", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", true, 0x03},
		{"reserved flags dropped", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", true, 0x03},
		{"future version, exact length", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, 0x01},
		{"future version, more fields", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-brings", true, 0x01},
		{"future version, no dash after flags", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false, 0},
		{"version 00 with more fields", validTP + "-00", false, 0},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
		{"upper-case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", false, 0},
		{"upper-case version", "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, 0},
		{"zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, 0},
		{"short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01x", false, 0},
		{"wrong separator", "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
		{"non-hex flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false, 0},
		{"leading space", " " + validTP[:54], false, 0},
		{"trailing space", validTP + " ", false, 0},
		{"empty", "", false, 0},
		{"truncated", validTP[:54], false, 0},
		{"non-hex in span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9z2b7-01", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, ok := ParseTraceparent([]byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("ParseTraceparent(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			}
			if !ok {
				if sc != (SpanContext{}) {
					t.Errorf("failed parse returned %+v, want zero", sc)
				}
				return
			}
			if sc.Flags != tt.flags {
				t.Errorf("flags = %#x, want %#x", sc.Flags, tt.flags)
			}
			want := "00" + strings.ToLower(tt.in[2:53])
			got := string(sc.AppendTraceparent(nil))
			if got[:53] != want {
				t.Errorf("round trip = %q, want prefix %q", got, want)
			}
		})
	}
}

func TestAppendTraceparent(t *testing.T) {
	sc, _ := ParseTraceparent([]byte(validTP))
	buf := make([]byte, 0, 64)
	out := sc.AppendTraceparent(append(buf, "x:"...))
	if string(out) != "x:"+validTP {
		t.Fatalf("got %q", out)
	}
	sc.Flags = 0xff
	if got := string(sc.AppendTraceparent(nil)); !strings.HasSuffix(got, "-03") {
		t.Errorf("reserved flags written: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { out = sc.AppendTraceparent(buf[:0]) }); n != 0 {
		t.Errorf("AppendTraceparent allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { sc, _ = ParseTraceparent(out) }); n != 0 {
		t.Errorf("ParseTraceparent allocates %v times", n)
	}
}

func TestValidTracestate(t *testing.T) {
	long := strings.Repeat("a", 256)
	var members []string
	for i := 0; i < 32; i++ {
		members = append(members, "k"+strings.Repeat("x", i)+"=v")
	}
	tests := []struct {
		in string
		ok bool
	}{
		{"rojo=00f067aa0ba902b7", true},
		{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
		{" rojo=1 ,\tcongo=2\t", true},
		{"rojo=1,,congo=2", true},
		{"rojo=1,", true},
		{"tenant@vendor=x", true},
		{"1tenant@vendor=x", true}, // Level 2: a key may start with a digit
		{"a/b*c_d-e@f=x", true},
		{"k=" + long, true},
		{long + "=v", true},
		{strings.Join(members, ","), true},
		{strings.Join(append(members, "one=more"), ","), false},
		{"", false},
		{" , ", false},
		{"Rojo=1", false},
		{"_rojo=1", false},
		{"rojo", false},
		{"rojo=", false},
		{"rojo=a,b", false},
		{"rojo=a=b", false},
		{"rojo=1,rojo=2", false},
		{"k=" + long + "x", false},
		{long + "x=v", false},
		{"rojo=caf\xc3\xa9", false},
		{"rojo=a\x7f", false},
		{"rojo=a b", true},
		{"rojo=\x01", false},
	}
	for _, tt := range tests {
		if got := ValidTracestate([]byte(tt.in)); got != tt.ok {
			t.Errorf("ValidTracestate(%q) = %v, want %v", tt.in, got, tt.ok)
		}
		if got := refTracestate(tt.in); got != tt.ok {
			t.Errorf("reference(%q) = %v, want %v (test table or reference is wrong)", tt.in, got, tt.ok)
		}
	}
	in := []byte(strings.Join(members, ","))
	if n := testing.AllocsPerRun(100, func() { ValidTracestate(in) }); n != 0 {
		t.Errorf("ValidTracestate allocates %v times", n)
	}
}

// The reference parsers below are written from the specification's ABNF
// with regular expressions, independently of the byte parsers: the fuzz
// targets check that both agree on every input.

var (
	refTP00     = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)
	refTPFuture = regexp.MustCompile(`^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$`)
	refKey      = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-*/@]{0,255}$`)
	refValue    = regexp.MustCompile(`^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$`)
)

func refTraceparent(s string) bool {
	var tid, sid string
	if m := refTP00.FindStringSubmatch(s); m != nil {
		tid, sid = m[1], m[2]
	} else if m := refTPFuture.FindStringSubmatch(s); m != nil && m[1] != "00" && m[1] != "ff" {
		tid, sid = m[2], m[3]
	} else {
		return false
	}
	return tid != strings.Repeat("0", 32) && sid != strings.Repeat("0", 16)
}

func refTracestate(s string) bool {
	seen := map[string]bool{}
	for _, m := range strings.Split(s, ",") {
		m = strings.Trim(m, " \t")
		if m == "" {
			continue
		}
		k, v, ok := strings.Cut(m, "=")
		if !ok || !refKey.MatchString(k) || !refValue.MatchString(v) || seen[k] {
			return false
		}
		seen[k] = true
	}
	return len(seen) > 0 && len(seen) <= 32
}

func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{validTP, "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, ok := ParseTraceparent(b)
		if want := refTraceparent(string(b)); ok != want {
			t.Fatalf("ParseTraceparent(%q) ok = %v, reference says %v", b, ok, want)
		}
		if !ok {
			return
		}
		if sc.Flags&^knownFlags != 0 {
			t.Fatalf("reserved flags kept: %#x", sc.Flags)
		}
		out := sc.AppendTraceparent(nil)
		if len(out) != TraceparentLen || !bytes.Equal(out[3:52], b[3:52]) {
			t.Fatalf("AppendTraceparent = %q from %q", out, b)
		}
		back, ok := ParseTraceparent(out)
		if !ok || back != sc {
			t.Fatalf("round trip %q → %+v, want %+v", out, back, sc)
		}
	})
}

func FuzzTracestate(f *testing.F) {
	for _, s := range []string{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "a@b=c, ,d=e", "k=v,k=w", "x=\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := ValidTracestate(b), refTracestate(string(b)); got != want {
			t.Fatalf("ValidTracestate(%q) = %v, reference says %v", b, got, want)
		}
	})
}
