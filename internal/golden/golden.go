// Package golden compares what a test produced with a file kept under
// testdata, the "golden" file. Run the test with -update to rewrite the
// files with the current output, then review the diff in git.
//
// It owns the -update flag, so a test package that imports it must not
// define its own.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// Updating reports whether the test runs with -update.
func Updating() bool { return *update }

// Check compares got with the file at path. With -update it first writes
// got there (creating its directory). A difference fails the test with
// the lines around the first difference.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the output (if the change is intended, rerun with -update and review the diff):\n%s", path, Diff(string(want), string(got)))
	}
}

// Diff shows the lines around the first line where want and got differ:
// want's with "-", got's with "+", lines both have with " "; "" if the
// two are equal.
func Diff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	n := max(len(w), len(g))
	line := func(s []string, i int) (string, bool) {
		if i < len(s) {
			return s[i], true
		}
		return "", false
	}
	for i := 0; i < n; i++ {
		wl, _ := line(w, i)
		gl, _ := line(g, i)
		if wl == gl {
			continue
		}
		var b strings.Builder
		for j := max(0, i-3); j < min(n, i+4); j++ {
			wl, wok := line(w, j)
			gl, gok := line(g, j)
			if wok && gok && wl == gl {
				fmt.Fprintf(&b, " %s\n", wl)
				continue
			}
			if wok {
				fmt.Fprintf(&b, "-%s\n", wl)
			}
			if gok {
				fmt.Fprintf(&b, "+%s\n", gl)
			}
		}
		return fmt.Sprintf("first difference at line %d:\n%s", i+1, b.String())
	}
	return "the two differ only in a final newline\n"
}
