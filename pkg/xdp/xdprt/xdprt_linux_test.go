//go:build linux

package xdprt

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/stoa-gateway/stoa/pkg/netnstest"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// TestXDPSwapInNamespace applies plans for real (root): a good plan
// attaches; a plan Apply refuses keeps the previous one in force, marks the
// component degraded and emits xdp.error.
func TestXDPSwapInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("xdp: needs root and BPF: running as uid %d", os.Geteuid())
	}
	netnstest.Require(t)
	ns := netnstest.New(t)
	ns.IdleLink("d0")
	ns.IdleLink("d1")
	evl, r := newTestRuntime(t)
	swap := func(p *xdpPlan) { _ = ns.Do(func() error { r.swap(p); return nil }) }
	good, err := r.compile(&spec.GatewaySpec{XDP: &spec.XDPConfig{Enabled: true, Interfaces: []string{"d0"}, Mode: "generic",
		PerSource: &spec.RateLimit{Rate: spec.MustRate("100/s"), Burst: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	swap(good)
	if c := r.Status(); c.State != "ok" || !strings.Contains(c.Detail, "generic on d0") {
		t.Skipf("xdp: needs root and BPF: %+v", c) // e.g. a kernel without BPF
	}

	// Someone else's program on d1, attached after Prepare would have
	// checked: Apply refuses it.
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "other_fw", Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	var l link.Link
	if err := ns.Do(func() error {
		ifc, err := net.InterfaceByName("d1")
		if err != nil {
			return err
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPGenericMode})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bad := *good
	bad.cfg.Interfaces = []string{"d0", "d1"}
	if err := ns.Do(func() error { return r.l.Check(bad.cfg) }); err == nil {
		t.Fatal("Check accepted an interface another program holds")
	}
	swap(&bad)
	c := r.Status()
	if c.State != "degraded" || c.Data["error"] == nil || !strings.Contains(c.Detail, "generic on d0;") {
		t.Fatalf("after a refused apply: %+v", c)
	}
	if st := r.l.Status(); !st.Attached || len(st.Interfaces) != 1 {
		t.Fatalf("the previous config is not in force: %+v", st)
	}
	if evs := waitEvents(t, evl, 1, "xdp.error"); len(evs) != 1 {
		t.Fatalf("xdp.error events: %+v", evs)
	}
	swap(good)
	if c := r.Status(); c.State != "ok" {
		t.Fatalf("after a good apply again: %+v", c)
	}
	if err := r.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ns.XDPAttached("d0") {
		t.Fatal("Stop left XDP attached")
	}
}
