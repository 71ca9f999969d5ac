// Command schemagen generates the documentation of the spec model from
// pkg/spec's Go source: pkg/specdoc/zz_generated.go (field docs for `stoa
// explain`) and the JSON Schemas specs/stoa.io/v1alpha1/<kind>.json and
// all.json (for editors, via yaml-language-server modelines).
//
// Doc comments come from the source; the constraints validation enforces
// (enums, patterns, required fields) come from the rules below, with enum
// values read from pkg/spec's own tables so they cannot drift.
//
//	go run ./internal/gen/schemagen          # from the repository root
//	make generate-schemas
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	files, err := Generate(root)
	if err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "schemagen: wrote %d files\n", len(files))
	return nil
}
