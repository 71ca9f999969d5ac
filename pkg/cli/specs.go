package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

// fileFlags are the -f flags shared by validate, diff, apply and delete.
type fileFlags struct {
	Paths []string
}

func (ff *fileFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringSliceVarP(&ff.Paths, "filename", "f", nil, "spec files or directories (recursive, *.yaml|*.yml); - reads stdin")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
}

func (ff *fileFlags) required() error {
	if len(ff.Paths) == 0 {
		return errors.New("no specs given: pass -f FILE|DIR|- (repeatable)")
	}
	return nil
}

// loadSpecs reads, defaults and validates specs locally. With
// refs=false, references to objects outside the files are left for the
// daemon, which knows the live state; with refs=true they are checked
// within the files, offline.
func loadSpecs(f *Factory, paths []string, refs bool) ([]*spec.Object, error) {
	r := specload.ReferencesLive
	if refs {
		r = specload.ReferencesOffline
	}
	res, err := load(f, paths, specload.Options{References: r}, true)
	return res.Objects, err
}

// loadForApply is loadSpecs that can also return the objects as written
// (before defaults) encoded as a JSON array (Result.EncodeRaw), which is
// what apply sends: stoad applies the same defaults, and the request is
// about 40% smaller. It is encoded only when it is sent: most applies
// change nothing, and stoad's digests tell so without it.
func loadForApply(f *Factory, paths []string) (*specload.Result, error) {
	return load(f, paths, specload.Options{References: specload.ReferencesLive, KeepRaw: true, DeferRaw: true}, true)
}

// load reads specs through the one loader (pkg/specload), remote OpenAPI
// documents allowed. Errors are printed (see invalidSpecs); warnings and
// notes are printed to stderr when printNonFatal is set, and returned
// either way. The result is never nil.
func load(f *Factory, paths []string, opts specload.Options, printNonFatal bool) (*specload.Result, error) {
	opts.Stdin, opts.RemoteOpenAPI = f.IO.In, true
	collectLateOnce()
	res, err := specload.Load(context.Background(), paths, opts)
	if err != nil {
		return &specload.Result{}, err
	}
	if diags := res.Diagnostics; len(diags) > 0 {
		if diags.HasErrors() {
			return res, invalidSpecs(f, diags)
		}
		if printNonFatal {
			diags.Format(f.IO.ErrOut, f.IO.ColorErr())
		}
	}
	return res, nil
}

// invalidSpecs prints diagnostics (stderr, or on stdout for -o
// json|yaml|ndjson) and returns the exit-3 error.
func invalidSpecs(f *Factory, diags spec.Diagnostics) error {
	if f.structured() {
		_ = writeObject(f, ValidationResult{Valid: false, Diagnostics: diags})
	} else {
		diags.Format(f.IO.ErrOut, f.IO.ColorErr())
		files := map[string]bool{}
		n := 0
		for _, d := range diags {
			if d.IsError() {
				n++
				if d.File != "" {
					files[d.File] = true
				}
			}
		}
		if len(files) == 0 {
			fmt.Fprintf(f.IO.ErrOut, "%d %s\n", n, plural(n, "error", "errors"))
		} else {
			fmt.Fprintf(f.IO.ErrOut, "%d %s in %d %s\n", n, plural(n, "error", "errors"), len(files), plural(len(files), "file", "files"))
		}
	}
	return silent(ExitInvalid)
}

// serverInvalid maps diagnostics returned by the daemon back to the files
// they came from and reports them like local ones.
func serverInvalid(f *Factory, objs []*spec.Object, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeInvalid && len(ae.Diagnostics) > 0 {
		spec.Locate(objs, ae.Diagnostics)
		ae.Diagnostics.Sort()
		if !f.structured() {
			fmt.Fprintf(f.IO.ErrOut, "stoad rejected the specs: %s\n", ae.Message)
		}
		return invalidSpecs(f, ae.Diagnostics)
	}
	return err
}

// pruneScope derives the namespaces the files cover (specload.PruneScope).
func pruneScope(objs []*spec.Object, all bool, selector map[string]string) api.PruneScope {
	return specload.PruneScope(objs, all, selector)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
