//go:build linux

package xdp

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// TestCheck covers the dry run the daemon makes before a reload: it must
// refuse exactly what Apply would refuse, and change nothing.
func TestCheck(t *testing.T) {
	requireRootBPF(t)
	ns := netnstest.New(t)
	ns.IdleLink("d0")
	ns.IdleLink("d1")
	ns.IdleLink("d2")
	l, apply := newLimiterIn(t, ns)
	check := func(l *Limiter, ifaces ...string) error {
		return ns.Do(func() error { return l.Check(Config{Interfaces: ifaces, Mode: ModeGeneric}) })
	}

	if err := check(l, "d0", "nope0"); err == nil || !strings.Contains(err.Error(), "nope0") {
		t.Fatalf("missing interface: %v", err)
	}
	if err := check(l, "d0"); err != nil {
		t.Fatalf("free interface: %v", err)
	}
	if ns.XDPAttached("d0") {
		t.Fatal("Check attached a program")
	}
	if err := apply(Config{Interfaces: []string{"d0"}, Mode: ModeGeneric}); err != nil {
		t.Fatal(err)
	}
	if err := check(l, "d0", "d1"); err != nil {
		t.Fatalf("interface the limiter holds: %v", err)
	}
	other, _ := newLimiterIn(t, ns)
	if err := check(other, "d0"); err == nil || !strings.Contains(err.Error(), "another stoad") {
		t.Fatalf("interface another limiter holds: %v", err)
	}

	foreign, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "other_fw",
		Type:         ebpf.XDP,
		License:      "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	plant(t, ns, "d2", foreign)
	foreign.Close()
	if err := check(l, "d0", "d2"); err == nil || !strings.Contains(err.Error(), `"other_fw"`) {
		t.Fatalf("foreign program: %v", err)
	}

	stale, err := loadKernel()
	if err != nil {
		t.Fatal(err)
	}
	plant(t, ns, "d1", stale.program())
	stale.close()
	if err := check(other, "d1"); err != nil {
		t.Fatalf("a stale stoa program is replaced, not refused: %v", err)
	}
}
