package xdp

import "testing"

func TestCheckInvalidConfig(t *testing.T) {
	l := New(nil)
	for _, cfg := range []Config{{Mode: "turbo"}, {Ports: []uint16{0}}, {Interfaces: []string{"averyveryverylongname"}}} {
		if err := l.Check(cfg); err == nil {
			t.Errorf("Check(%+v) accepted", cfg)
		}
	}
}
