package main

import (
	"bytes"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/stoa-gateway/stoa/pkg/cli"
)

// File is one generated file, relative to the repository root.
type File struct {
	Path string
	Data []byte
}

const (
	completionsDir = "completions"
	docsDir        = "docs/cli"
)

// rootCmd builds the command tree as a user with a clean environment sees
// it: flags whose default comes from an environment variable (their usage
// names it, "(env STOA_…)") show no default, so the output depends neither
// on who generates it nor on secrets in their environment.
func rootCmd() *cobra.Command {
	io := &cli.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
	root := cli.NewRootCmd(&cli.Factory{IO: io, Now: time.Now})
	root.DisableAutoGenTag = true
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if strings.Contains(f.Usage, "(env ") || strings.Contains(f.Usage, "default $") {
					f.DefValue = ""
					if f.Value.Type() == "string" {
						f.Value.Set("")
					}
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// Generate returns the completion scripts and the markdown reference.
func Generate() ([]File, error) {
	root := rootCmd()
	var files []File
	gens := []struct {
		name string
		gen  func(w *bytes.Buffer) error
	}{
		{"stoa.bash", func(w *bytes.Buffer) error { return root.GenBashCompletionV2(w, true) }},
		{"stoa.zsh", func(w *bytes.Buffer) error { return root.GenZshCompletion(w) }},
		{"stoa.fish", func(w *bytes.Buffer) error { return root.GenFishCompletion(w, true) }},
		{"stoa.ps1", func(w *bytes.Buffer) error { return root.GenPowerShellCompletionWithDesc(w) }},
	}
	for _, g := range gens {
		var b bytes.Buffer
		if err := g.gen(&b); err != nil {
			return nil, err
		}
		files = append(files, File{path.Join(completionsDir, g.name), b.Bytes()})
	}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !c.IsAvailableCommand() && c != root || c.IsAdditionalHelpTopicCommand() {
			return nil
		}
		var b bytes.Buffer
		if err := doc.GenMarkdownCustom(c, &b, func(s string) string { return s }); err != nil {
			return err
		}
		files = append(files, File{path.Join(docsDir, docName(c)), b.Bytes()})
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	files = append(files, File{path.Join(docsDir, "README.md"), index(root)})
	return files, nil
}

func docName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
}

// index is docs/cli/README.md: every command with its summary.
func index(root *cobra.Command) []byte {
	var b bytes.Buffer
	b.WriteString("# stoa command reference\n\n")
	b.WriteString("Generated from the command tree by `go run ./internal/gen/clidocs` (`make generate-docs`); do not edit.\n\n")
	b.WriteString("| command | what it does |\n|---|---|\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && (!c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) {
			return
		}
		b.WriteString("| [`" + c.CommandPath() + "`](" + docName(c) + ") | " + strings.ReplaceAll(c.Short, "|", "\\|") + " |\n")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return b.Bytes()
}

// ManPages returns section-1 man pages for every command, for dir, dated
// epoch (unix seconds; 0: $SOURCE_DATE_EPOCH, else now).
func ManPages(dir string, epoch int64) ([]File, error) {
	root := rootCmd()
	tmp, err := os.MkdirTemp("", "stoa-man")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if epoch <= 0 { // GoReleaser passes a negative time without git history
		epoch, _ = strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	}
	date := time.Now()
	if epoch > 0 {
		date = time.Unix(epoch, 0).UTC() // reproducible builds
	}
	hdr := &doc.GenManHeader{Title: "STOA", Section: "1", Source: "stoa", Manual: "stoa manual", Date: &date}
	if err := doc.GenManTree(root, hdr, tmp); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(tmp, e.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, File{filepath.Join(dir, e.Name()), data})
	}
	return files, nil
}
