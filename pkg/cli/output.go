package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/yamlenc"
)

// The output contract (docs/cli-conventions.md), the same for every command:
//
//   - -o table (the default) and -o wide print for people; wide adds columns
//     where a command has more to show.
//   - -o json and -o yaml print exactly ONE document. A list is one object,
//     kubectl-style: {"apiVersion": "stoa.io/v1alpha1", "kind": "<Thing>List",
//     "metadata": {...}, "items": [...]}; live spec objects are a "kind: List"
//     of whole objects, so the output can be applied again.
//   - -o ndjson prints one compact JSON value per line: each item of a list,
//     or the one object.
//   - Streams (--follow, --watch) print one JSON value per line for -o json
//     and -o ndjson, and YAML documents separated by "---" for -o yaml.
//
// YAML is always rendered from the JSON encoding of the same value, so the
// two formats never disagree.

// Output formats accepted by -o.
const (
	outTable  = "table"
	outWide   = "wide"
	outYAML   = "yaml"
	outJSON   = "json"
	outNDJSON = "ndjson"
)

// OutputFormats lists the values of -o, in the order help shows them.
var OutputFormats = []string{outTable, outWide, outYAML, outJSON, outNDJSON}

// annotationOutput marks a command's output for the contract test and for
// -o validation: outputNone is a command that prints no data (a TUI, a
// bridge, a script generator), where -o does not apply.
const (
	annotationOutput = "stoa.io/output"
	outputNone       = "none"
)

// noOutput marks cmd as printing no data and returns it.
func noOutput(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotationOutput] = outputNone
	return cmd
}

// format is the selected -o value ("" means table).
func (f *Factory) format() string {
	if f.Output == "" {
		return outTable
	}
	return f.Output
}

// structured reports whether -o asks for data (yaml, json or ndjson)
// rather than a table for people.
func (f *Factory) structured() bool {
	switch f.Output {
	case outYAML, outJSON, outNDJSON:
		return true
	}
	return false
}

// wide reports whether -o wide was given.
func (f *Factory) wide() bool { return f.Output == outWide }

// writeObject writes one value in the structured format selected with -o.
// Callers check f.structured() first.
func writeObject(f *Factory, v any) error {
	w := f.IO.Out
	switch f.Output {
	case outYAML:
		return writeYAMLValue(w, v)
	case outNDJSON:
		return writeJSONLine(w, v)
	}
	return writeJSON(w, v)
}

// printed writes v when -o asks for structured output and reports whether
// it did; the caller prints its table otherwise.
func printed(f *Factory, v any) (bool, error) {
	if !f.structured() {
		return false, nil
	}
	return true, writeObject(f, v)
}

// List is how every list is printed for -o json and -o yaml.
type List[T any] struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Metadata carries facts about the whole list (the revision it was
	// read at, how many items were dropped, …).
	Metadata map[string]any `json:"metadata,omitempty"`
	Items    []T            `json:"items"`
}

// writeList prints items as one List document (json, yaml) or one line per
// item (ndjson). Callers check f.structured() first.
func writeList[T any](f *Factory, kind string, meta map[string]any, items []T) error {
	if f.Output == outNDJSON {
		for _, it := range items {
			if err := writeJSONLine(f.IO.Out, it); err != nil {
				return err
			}
		}
		return nil
	}
	if items == nil {
		items = []T{}
	}
	if len(meta) == 0 {
		meta = nil
	}
	return writeObject(f, List[T]{APIVersion: spec.APIVersion, Kind: kind, Metadata: meta, Items: items})
}

// printedList is printed for lists.
func printedList[T any](f *Factory, kind string, meta map[string]any, items []T) (bool, error) {
	if !f.structured() {
		return false, nil
	}
	return true, writeList(f, kind, meta, items)
}

// streamWriter prints the values of a stream (--follow, --watch) as they
// come: one JSON line each for -o json and ndjson, YAML documents separated
// by "---" for -o yaml.
type streamWriter struct {
	f     *Factory
	count int
}

func (s *streamWriter) write(v any) error {
	defer func() { s.count++ }()
	w := s.f.IO.Out
	if s.f.Output == outYAML {
		if s.count > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		return writeYAMLValue(w, v)
	}
	return writeJSONLine(w, v)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSONLine writes v as one compact JSON line (NDJSON).
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeYAMLValue renders v's JSON encoding as YAML: one source of truth
// for both formats.
func writeYAMLValue(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	y, err := yamlenc.FromJSON(b)
	if err != nil {
		return err
	}
	_, err = w.Write(y)
	return err
}

// checkOutputFlag validates -o for cmd: one of OutputFormats, and only on
// commands that print data.
func checkOutputFlag(cmd *cobra.Command, value string) error {
	if value == "" {
		return nil
	}
	for c := cmd; c != nil; c = c.Parent() {
		if c.Annotations[annotationOutput] == outputNone {
			if value == outTable {
				return nil
			}
			return &hintError{
				err:  fmt.Errorf("%s prints no data: -o %s does not apply", cmd.CommandPath(), value),
				hint: "drop -o; commands that print data accept -o table, wide, yaml, json or ndjson",
			}
		}
	}
	return nil
}
