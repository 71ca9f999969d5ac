package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/internal/golden"
)

// runPipeline loads paths, defaults and validates the objects the way the
// CLI does and returns every diagnostic, sorted.
func runPipeline(paths []string, opts ValidateOptions) ([]*Object, Diagnostics) {
	objs, diags := Load(paths, nil)
	for _, o := range objs {
		Default(o)
	}
	diags = append(diags, Validate(objs, opts)...)
	diags.Sort()
	return objs, diags
}

// goldenOptions are the options an input is validated with, by name:
// "offline-*" as `stoa validate` does, "strict-*" as `stoa validate
// --strict-refs`, everything else as stoad does (the files are the whole
// state).
func goldenOptions(name string) ValidateOptions {
	switch {
	case strings.HasPrefix(name, "offline-"):
		return ValidateOptions{Offline: true}
	case strings.HasPrefix(name, "strict-"):
		return ValidateOptions{Offline: true, StrictRefs: true}
	}
	return ValidateOptions{}
}

// TestGolden renders the diagnostics of every input under testdata/golden
// (a .yaml file or a directory of them) and compares them with the .golden
// file of the same name. Inputs must produce errors, except "offline-*"
// and "*-warnings" ones, whose point is what is not an error.
func TestGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() && !strings.HasSuffix(name, ".yaml") {
			continue
		}
		n++
		in := filepath.Join("testdata/golden", name)
		want := strings.TrimSuffix(in, ".yaml") + ".golden"
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			_, diags := runPipeline([]string{in}, goldenOptions(name))
			var buf bytes.Buffer
			diags.Format(&buf, false)
			golden.Check(t, want, buf.Bytes())
			if golden.Updating() {
				return
			}
			base := strings.TrimSuffix(name, ".yaml")
			if lenient := strings.HasPrefix(base, "offline-") || strings.HasSuffix(base, "-warnings"); lenient && diags.HasErrors() {
				t.Errorf("golden input %s produced errors", in)
			} else if !lenient && !diags.HasErrors() {
				t.Errorf("golden input %s produced no errors", in)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d golden inputs found", n)
	}
}
