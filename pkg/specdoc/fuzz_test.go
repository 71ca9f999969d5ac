package specdoc

import (
	"io"
	"testing"
)

// FuzzResolve feeds arbitrary paths to the explain resolver: it must
// answer or refuse, never panic.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"tool", "tool.auth.type", "tool.operations.in", "gateway.xdp.perSource.rate", "ts..", ".", "", "tool.spec.spec", "Tool.metadata.labels.x"} {
		f.Add(s)
	}
	m := Default()
	f.Fuzz(func(t *testing.T, path string) {
		n, err := m.Resolve(path)
		if err != nil {
			return
		}
		if err := m.Explain(io.Discard, n, true); err != nil {
			t.Fatal(err)
		}
	})
}
