// Package specload is the one path from spec files to the objects stoa
// applies: read and decode them (pkg/spec), import the operations of Tools
// that name an OpenAPI document (pkg/openapi), fill in the defaults and
// validate. Every command that reads specs (validate, diff, apply,
// delete -f, bundle build), stoad's GitOps mode and the tests load through
// Load, so a file means the same to each of them — as decK has one
// file-to-state loader for all its commands.
//
// It lives apart from pkg/spec because pkg/openapi imports pkg/spec.
package specload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/openapi"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// References says how references between objects (a Subscription's Plan,
// a ToolSet's Tools) are checked.
type References int

const (
	// ReferencesLive leaves them to stoad, which checks them against the
	// live state (diff, apply, delete -f, GitOps).
	ReferencesLive References = iota
	// ReferencesOffline checks them within the files; a reference to an
	// object the files do not define is a note, since it may exist in
	// stoad (stoa validate).
	ReferencesOffline
	// ReferencesStrict checks them within the files and makes such a
	// reference an error: the files must be complete (validate
	// --strict-refs, bundle build).
	ReferencesStrict
)

// Options configure Load.
type Options struct {
	// Stdin is read for the path "-".
	Stdin io.Reader
	// References says how references between objects are checked.
	References References
	// RemoteOpenAPI lets `openapi:` name http(s) URLs (and documents
	// $ref remote files). The CLI allows it; stoad's GitOps mode does not:
	// its directory is the source of truth and must not depend on the
	// network.
	RemoteOpenAPI bool
	// HTTPClient fetches remote OpenAPI documents; nil: pkg/openapi's
	// default client.
	HTTPClient *http.Client
	// KeepRaw also returns the objects as written — OpenAPI operations
	// imported, no defaults — encoded as a JSON array: what apply sends,
	// since stoad applies the same defaults and the request is about 40%
	// smaller.
	KeepRaw bool
	// DeferRaw, with KeepRaw, leaves Raw nil until Result.EncodeRaw is
	// called: the defaults written are noted instead, to be taken back
	// then. An apply that turns out to change nothing (most applies in CI)
	// never encodes its objects as written.
	DeferRaw bool
}

// Result is what Load read.
type Result struct {
	// Objects are the decoded objects, defaulted. Objects whose documents
	// had problems are left out; the others are validated all the same, so
	// one run reports every problem.
	Objects []*spec.Object
	// Raw is the objects as written (Options.KeepRaw; nil when
	// Options.DeferRaw deferred it: see EncodeRaw).
	Raw json.RawMessage
	// Diagnostics are every error, warning and note, sorted by position.
	Diagnostics spec.Diagnostics

	defaults []*spec.DefaultLog // when the raw form was deferred: what Default wrote
}

// EncodeRaw returns Raw, encoding it first when Options.DeferRaw deferred
// it: the defaults are taken back, the objects encoded as written and
// defaulted again (Default is deterministic: they end as they were).
func (r *Result) EncodeRaw() (json.RawMessage, error) {
	if r.Raw != nil || r.defaults == nil {
		return r.Raw, nil
	}
	for _, l := range r.defaults {
		l.Undo()
	}
	r.defaults = nil
	raw := make([][]byte, len(r.Objects))
	err := plan.ForEach(len(r.Objects), func(i int, buf *bytes.Buffer) error {
		b, err := encodeObject(buf, r.Objects[i])
		spec.Default(r.Objects[i])
		raw[i] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("encode specs: %w", err)
	}
	r.Raw = joinArray(r.Objects == nil, raw)
	return r.Raw, nil
}

// Load reads the spec files and directories at paths ("-": Options.Stdin)
// and returns the objects with every diagnostic. The error is for failures
// that are not the specs' fault; problems in the specs are diagnostics
// (Result.Diagnostics.HasErrors).
func Load(ctx context.Context, paths []string, opts Options) (*Result, error) {
	objs, diags := spec.Load(paths, opts.Stdin)
	diags = openapi.Expand(ctx, objs, diags, openapi.ExpandOptions{
		Load: openapi.LoadOptions{AllowRemote: opts.RemoteOpenAPI, Client: opts.HTTPClient},
	})
	res := &Result{Objects: objs}
	var raw [][]byte
	if opts.KeepRaw {
		if opts.DeferRaw {
			res.defaults = make([]*spec.DefaultLog, 0, len(objs)/defaultBatch+1)
		} else {
			raw = make([][]byte, len(objs))
		}
	}
	var err error
	if res.defaults != nil {
		// The defaults are noted, to be taken back if the objects must be
		// encoded as written after all; one log per batch of objects.
		logs := make([]*spec.DefaultLog, (len(objs)+defaultBatch-1)/defaultBatch)
		err = plan.ForEach(len(logs), func(i int, _ *bytes.Buffer) error {
			l := &spec.DefaultLog{}
			for _, o := range objs[i*defaultBatch : min(len(objs), (i+1)*defaultBatch)] {
				l.Default(o)
			}
			logs[i] = l
			return nil
		})
		res.defaults = append(res.defaults, logs...)
	} else {
		err = encodeAndDefault(objs, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("encode specs: %w", err)
	}
	if raw != nil {
		res.Raw = joinArray(objs == nil, raw)
	}
	diags = append(diags, spec.Validate(objs, opts.References.validateOptions())...)
	diags.Sort()
	res.Diagnostics = diags
	return res, nil
}

// defaultBatch is how many objects share one DefaultLog.
const defaultBatch = 256

// encodeAndDefault encodes each object as written into raw (when not nil),
// then defaults it; on all processors, as the objects are independent.
func encodeAndDefault(objs []*spec.Object, raw [][]byte) error {
	return plan.ForEach(len(objs), func(i int, buf *bytes.Buffer) error {
		if raw != nil {
			b, err := encodeObject(buf, objs[i])
			if err != nil {
				return err
			}
			raw[i] = b
		}
		spec.Default(objs[i])
		return nil
	})
}

// encodeObject encodes o for the apply request: its canonical encoding
// (spec.AppendCanonical, which is what json.Marshal writes but for HTML
// escaping, and ~2x faster), without the final newline, in a slice of
// its own; buf is scratch space.
func encodeObject(buf *bytes.Buffer, o *spec.Object) ([]byte, error) {
	buf.Reset()
	b, err := spec.AppendCanonical(buf.AvailableBuffer(), o)
	if err != nil {
		return nil, err
	}
	buf.Write(b) // keeps the capacity for the next object
	return bytes.Clone(b[:len(b)-1]), nil
}

// joinArray returns the JSON array of the encoded elements, byte for byte
// what they would be encoded as in the slice they came from ("null" for a
// nil one).
func joinArray(isNil bool, elems [][]byte) json.RawMessage {
	if isNil {
		return json.RawMessage("null")
	}
	n := 2
	for _, e := range elems {
		n += len(e) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, e := range elems {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, ']')
}

func (r References) validateOptions() spec.ValidateOptions {
	switch r {
	case ReferencesOffline:
		return spec.ValidateOptions{Offline: true}
	case ReferencesStrict:
		return spec.ValidateOptions{Offline: true, StrictRefs: true}
	}
	return spec.ValidateOptions{SkipReferences: true}
}

// PruneScope is what `apply --prune` and GitOps may prune for objs: every
// tenant-scoped object's namespace and every Tenant they define (all:
// every namespace; selector: only objects carrying these labels).
func PruneScope(objs []*spec.Object, all bool, selector map[string]string) api.PruneScope {
	sc := api.PruneScope{All: all, Selector: selector}
	seen := map[string]bool{}
	for _, o := range objs {
		ns := o.Metadata.Namespace
		if o.Kind == spec.KindTenant {
			ns = o.Metadata.Name
		}
		if ns != "" && !seen[ns] {
			seen[ns] = true
			sc.Namespaces = append(sc.Namespaces, ns)
		}
	}
	return sc
}
