package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestREADMETranscripts runs the offline commands the README shows with
// their output (fenced blocks starting with "$ stoa validate" or
// "$ stoa explain") and compares, so the README cannot drift from what
// stoa prints — for instance examples/bad/tool.yaml and its diagnostics.
func TestREADMETranscripts(t *testing.T) {
	t.Chdir("../..") // the README's paths are relative to the repository
	src, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, block := range strings.Split(string(src), "```") {
		block = strings.TrimPrefix(block, "\n")
		cmdLine, want, ok := strings.Cut(block, "\n")
		if !ok || !(strings.HasPrefix(cmdLine, "$ stoa validate ") || strings.HasPrefix(cmdLine, "$ stoa explain ")) {
			continue
		}
		blocks++
		args := strings.Fields(strings.TrimPrefix(cmdLine, "$ stoa "))
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out bytes.Buffer
			Run(context.Background(), args, &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
			if got := out.String(); got != want {
				t.Errorf("README shows for %q:\n%s\nstoa prints:\n%s", cmdLine, want, got)
			}
		})
	}
	if blocks < 2 {
		t.Fatalf("found %d README transcripts, want the validate and explain ones", blocks)
	}
}
