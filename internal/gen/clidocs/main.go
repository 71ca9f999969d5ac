// Command clidocs generates, from the stoa command tree, the shell
// completion scripts in completions/ and the markdown command reference
// in docs/cli/ (both committed; a test fails when they drift), and on
// request man pages (built at release time, see .goreleaser.yaml).
//
//	go run ./internal/gen/clidocs            # completions/ and docs/cli/
//	go run ./internal/gen/clidocs -man man   # man pages into ./man
//	go run ./internal/gen/clidocs -man man -epoch 1767312000   # reproducibly dated
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	root := flag.String("root", ".", "repository root")
	man := flag.String("man", "", "write man pages into this directory instead")
	epoch := flag.Int64("epoch", 0, "date of the man pages as a unix time (default $SOURCE_DATE_EPOCH, else now)")
	flag.Parse()
	files, err := Generate()
	if *man != "" {
		files, err = ManPages(*man, *epoch)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clidocs:", err)
		os.Exit(1)
	}
	if *man == "" {
		// Drop pages of commands that no longer exist.
		old, _ := filepath.Glob(filepath.Join(*root, docsDir, "*.md"))
		for _, p := range old {
			os.Remove(p)
		}
	}
	for _, f := range files {
		path := filepath.Join(*root, f.Path)
		if filepath.IsAbs(f.Path) {
			path = f.Path
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "clidocs:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "clidocs:", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "clidocs: wrote %d files\n", len(files))
}
