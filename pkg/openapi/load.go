// Package openapi turns OpenAPI 3 documents into stoa Tool operations: the
// `stoa import openapi` command prints a Tool spec from a document, and a
// Tool that says `openapi: ./file.yaml` is expanded by `stoa validate`,
// `diff`, `apply` and by stoad's GitOps mode before it is sent (see
// docs/openapi.md). Parsing and $ref resolution use kin-openapi.
package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/goccy/go-yaml"
)

// maxDocumentBytes bounds one OpenAPI file (the main document or a file it
// references).
const maxDocumentBytes = 16 << 20

// LoadOptions control how documents and the files they reference are read.
type LoadOptions struct {
	// AllowRemote permits http(s) locations, for the document itself and
	// for $refs. stoad's GitOps mode leaves it off: the specs directory is
	// the source of truth and must not depend on the network.
	AllowRemote bool
	// Client fetches remote documents; default: a client with a 30 s timeout.
	Client *http.Client
}

// Document is a loaded OpenAPI document with every $ref resolved.
type Document struct {
	// T is the parsed document (Swagger 2.0 documents are converted).
	T *openapi3.T
	// Raw is the main file's bytes, as written.
	Raw []byte
	// Location is the file path or URL the document was read from.
	Location string
	// Warnings are problems that did not stop the import (for example a
	// document that is not valid OpenAPI in some detail).
	Warnings []string

	base  *url.URL  // for relative server URLs
	forms *refForms // converted $refs, shared by all operations
}

// refForms returns the document's memo of converted $refs.
func (d *Document) refForms() *refForms {
	if d.forms == nil {
		d.forms = newRefForms(!d.T.IsOpenAPI31OrLater())
	}
	return d.forms
}

// Load reads and parses the document at location (a file path or, with
// AllowRemote, an http(s) URL).
func Load(ctx context.Context, location string, opts LoadOptions) (*Document, error) {
	raw, u, err := read(ctx, location, opts)
	if err != nil {
		return nil, err
	}
	return parse(ctx, raw, location, u, opts)
}

// Parse parses raw as if it had been read from location (relative $refs
// are resolved against it).
func Parse(ctx context.Context, raw []byte, location string, opts LoadOptions) (*Document, error) {
	return parse(ctx, raw, location, locationURL(location), opts)
}

func isRemote(location string) bool {
	return strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://")
}

func locationURL(location string) *url.URL {
	if isRemote(location) {
		u, err := url.Parse(location)
		if err == nil {
			return u
		}
	}
	abs, err := filepath.Abs(location)
	if err != nil {
		abs = location
	}
	return &url.URL{Path: filepath.ToSlash(abs)}
}

func (o *LoadOptions) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// read fetches location's bytes.
func read(ctx context.Context, location string, opts LoadOptions) ([]byte, *url.URL, error) {
	u := locationURL(location)
	b, err := readURL(ctx, u, opts)
	if err != nil {
		return nil, nil, err
	}
	return b, u, nil
}

func readURL(ctx context.Context, u *url.URL, opts LoadOptions) ([]byte, error) {
	if u.Scheme == "http" || u.Scheme == "https" {
		if !opts.AllowRemote {
			return nil, fmt.Errorf("read %s: remote documents are not fetched here; keep a copy next to the specs", u.Redacted())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", u.Redacted(), err)
		}
		req.Header.Set("Accept", "application/yaml, application/json;q=0.9, */*;q=0.5")
		resp, err := opts.client().Do(req)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", u.Redacted(), err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("read %s: HTTP %s", u.Redacted(), resp.Status)
		}
		return readLimited(resp.Body, u.Redacted())
	}
	if u.Scheme != "" && u.Scheme != "file" {
		return nil, fmt.Errorf("read %s: unsupported scheme %q", u, u.Scheme)
	}
	path := filepath.FromSlash(u.Path)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read %s: no such file", path)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	return readLimited(f, path)
}

func readLimited(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxDocumentBytes {
		return nil, fmt.Errorf("read %s: larger than %d MiB", name, maxDocumentBytes>>20)
	}
	return b, nil
}

// parse decodes raw, converting Swagger 2.0, and resolves every $ref.
func parse(ctx context.Context, raw []byte, location string, u *url.URL, opts LoadOptions) (*Document, error) {
	head, isJSON, err := readHead(raw)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", location, err)
	}
	loader := openapi3.NewLoader()
	loader.Context = ctx
	loader.IsExternalRefsAllowed = true
	loader.ReadFromURIFunc = func(_ *openapi3.Loader, ref *url.URL) ([]byte, error) {
		return readURL(ctx, ref, opts)
	}
	doc := &Document{Raw: raw, Location: location, base: u}
	switch {
	case strings.HasPrefix(head.Swagger, "2."):
		var d2 openapi2.T
		j, err := yaml.YAMLToJSON(raw)
		if err == nil {
			err = json.Unmarshal(j, &d2)
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", location, yamlError(err))
		}
		t, err := openapi2conv.ToV3(&d2)
		if err != nil {
			return nil, fmt.Errorf("convert %s from Swagger 2.0: %w", location, err)
		}
		if err := loader.ResolveRefsIn(t, u); err != nil {
			return nil, fmt.Errorf("resolve $refs in %s: %w", location, err)
		}
		doc.T = t
		doc.Warnings = append(doc.Warnings, "converted from Swagger 2.0")
	case strings.HasPrefix(head.OpenAPI, "3.") && isJSON:
		// kin-openapi parses every document as YAML first (a superset of
		// JSON), building a node tree of about fifty times the document's
		// size: a 13 MB description took a gigabyte. JSON goes through
		// encoding/json instead, then the same $ref resolution.
		t := &openapi3.T{}
		slim, err := dropExamples(raw)
		if err != nil {
			slim = raw // json.Unmarshal says what is wrong
		}
		if err := json.Unmarshal(slim, t); err != nil {
			return nil, fmt.Errorf("parse %s: %w", location, err)
		}
		if err := loader.ResolveRefsIn(t, u); err != nil {
			return nil, fmt.Errorf("resolve $refs in %s: %w", location, err)
		}
		doc.T = t
	case strings.HasPrefix(head.OpenAPI, "3."):
		t, err := loader.LoadFromDataWithPath(raw, u)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", location, err)
		}
		doc.T = t
	case head.OpenAPI != "":
		return nil, fmt.Errorf("parse %s: OpenAPI version %q is not supported (want 3.x)", location, head.OpenAPI)
	default:
		return nil, fmt.Errorf("parse %s: not an OpenAPI document (no openapi: 3.x or swagger: \"2.0\" field)", location)
	}
	if err := doc.T.Validate(ctx, openapi3.DisableExamplesValidation(), openapi3.DisableSchemaDefaultsValidation()); err != nil {
		doc.Warnings = append(doc.Warnings, "the document is not valid OpenAPI: "+firstLine(err.Error()))
	}
	return doc, nil
}

// docHead is what tells OpenAPI 3 from Swagger 2.0.
type docHead struct {
	OpenAPI string `yaml:"openapi" json:"openapi"`
	Swagger string `yaml:"swagger" json:"swagger"`
}

// readHead reads the openapi/swagger version fields without building a
// tree of the whole document: JSON with encoding/json (which skips what
// it does not store), block-style YAML from its top-level lines, anything
// else with the YAML parser.
func readHead(raw []byte) (h docHead, isJSON bool, err error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if err := json.Unmarshal(raw, &h); err == nil {
			return h, true, nil
		}
		// Not strict JSON (comments, trailing commas…): YAML may take it.
	}
	if v, ok := topLevelScalar(raw, "openapi"); ok {
		h.OpenAPI = v
		return h, false, nil
	}
	if v, ok := topLevelScalar(raw, "swagger"); ok {
		h.Swagger = v
		return h, false, nil
	}
	if err := yaml.Unmarshal(raw, &h); err != nil {
		return h, false, yamlError(err)
	}
	return h, false, nil
}

// topLevelScalar finds `key: value` at the start of a line of a
// block-style YAML document (the value unquoted or quoted, no comment
// after it) and returns the value.
func topLevelScalar(raw []byte, key string) (string, bool) {
	for rest := raw; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimRight(line, "\r \t")
		after, ok := bytes.CutPrefix(line, []byte(key+":"))
		if !ok {
			continue
		}
		v := string(bytes.TrimSpace(after))
		if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		if v == "" || strings.ContainsAny(v, "{}[]&*!|>\"'") {
			return "", false // not a plain scalar: let the parser decide
		}
		return v, true
	}
	return "", false
}

func yamlError(err error) error {
	return errors.New(firstLine(err.Error()))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
