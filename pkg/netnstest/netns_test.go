//go:build linux

package netnstest

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestVethPairTalks(t *testing.T) {
	a, b := New(t), New(t)
	Veth(t, a, "a0", []string{"198.18.0.1/24", "2001:db8::1/64"}, b, "b0", []string{"198.18.0.2/24", "2001:db8::2/64"})

	for _, addr := range []string{"198.18.0.2:7000", "[2001:db8::2]:7000"} {
		ln, err := b.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				_, _ = c.Write([]byte("hello"))
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := a.DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			t.Fatalf("dial %s from %s: %v", addr, a.Name, err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		ln.Close()
		if string(got) != "hello" {
			t.Fatalf("read %q, want hello", got)
		}
	}
}

func TestDoRestoresNamespace(t *testing.T) {
	n := New(t)
	before, _ := os.Readlink("/proc/thread-self/ns/net")
	var inside string
	if err := n.Do(func() error {
		inside, _ = os.Readlink("/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Readlink("/proc/thread-self/ns/net")
	if inside == before || after != before {
		t.Fatalf("namespaces: before %s, inside %s, after %s", before, inside, after)
	}
	if out := n.IP("link", "show"); !strings.Contains(out, "lo:") {
		t.Fatalf("ip link show in %s: %s", n.Name, out)
	}
}
