package cliconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// Config is the content of config.yaml.
type Config struct {
	// CurrentContext is the context used when neither --context nor
	// $STOA_CONTEXT names one; empty means local.
	CurrentContext string `yaml:"current-context,omitempty" json:"current-context,omitempty"`
	// Contexts are the user's contexts, in file order (local is not
	// stored).
	Contexts []Context `yaml:"contexts,omitempty" json:"contexts,omitempty"`

	path string
}

// Dir returns stoa's configuration directory: $XDG_CONFIG_HOME/stoa, or
// $HOME/.config/stoa when XDG_CONFIG_HOME is unset (the XDG base directory
// rule, on every OS, like gh and kubectl's plugins).
func Dir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		if !filepath.IsAbs(x) {
			return "", fmt.Errorf("find config directory: XDG_CONFIG_HOME=%q is not an absolute path", x)
		}
		return filepath.Join(x, "stoa"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find config directory: %w (set XDG_CONFIG_HOME or HOME)", err)
		}
		home = h
	}
	return filepath.Join(home, ".config", "stoa"), nil
}

// DefaultPath returns $STOA_CONFIG, or config.yaml in Dir.
func DefaultPath(getenv func(string) string) (string, error) {
	if p := getenv(EnvConfig); p != "" {
		return p, nil
	}
	d, err := Dir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "config.yaml"), nil
}

// maxFileBytes bounds config.yaml.
const maxFileBytes = 1 << 20

// Load reads the file at path; a missing file is an empty configuration
// (only local). Syntax errors, unknown fields and invalid contexts are
// reported as *FileError with the position.
func Load(path string) (*Config, error) {
	c := &Config{path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("load config: %s is over %d bytes", path, maxFileBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	// Decode into a fresh value: a document that is only a comment or
	// null makes the decoder zero its target, path included.
	var decoded Config
	if err := yaml.UnmarshalWithOptions(data, &decoded, yaml.Strict()); err != nil {
		return nil, yamlFileError(path, data, err)
	}
	decoded.path = path
	c = &decoded
	seen := map[string]int{}
	for i := range c.Contexts {
		n, err := c.Contexts[i].Normalize()
		if err != nil {
			var fe *FieldError
			errors.As(err, &fe)
			return nil, fieldFileError(path, data, i, fe)
		}
		if j, dup := seen[n.Name]; dup {
			return nil, fieldFileError(path, data, i, &FieldError{Context: n.Name, Field: "name",
				Message: fmt.Sprintf("also the name of context %d", j+1), Hint: "names must be unique"})
		}
		seen[n.Name] = i
		c.Contexts[i] = n
	}
	if cur := c.CurrentContext; cur != "" && cur != LocalContext && !slices.ContainsFunc(c.Contexts, func(x Context) bool { return x.Name == cur }) {
		fe := newFileError(path, data, "$.current-context", fmt.Sprintf("current-context %q names no context", cur),
			"set it with: stoa context use NAME")
		return nil, fe
	}
	return c, nil
}

// Path returns the file the configuration is read from and saved to.
func (c *Config) Path() string { return c.path }

// Save writes the configuration atomically, mode 0600.
func (c *Config) Save() error {
	if c.path == "" {
		return errors.New("save config: no path (load it with Load)")
	}
	data, err := yaml.MarshalWithOptions(c, yaml.IndentSequence(true))
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := writeFileAtomic(c.path, data); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// List returns every context: local first, then the stored ones in file
// order.
func (c *Config) List() []Context {
	return append([]Context{Local()}, c.Contexts...)
}

// Names lists the context names, local first.
func (c *Config) Names() []string {
	out := []string{LocalContext}
	for _, x := range c.Contexts {
		out = append(out, x.Name)
	}
	return out
}

// Get returns the named context.
func (c *Config) Get(name string) (Context, error) {
	if name == LocalContext {
		return Local(), nil
	}
	for _, x := range c.Contexts {
		if x.Name == name {
			return x, nil
		}
	}
	return Context{}, fmt.Errorf("%w %q (contexts: %s; add one with: stoa context add NAME --server URL)", ErrNoContext, name, strings.Join(c.Names(), ", "))
}

// Current returns the name of the current context (local when unset).
func (c *Config) Current() string {
	if c.CurrentContext == "" {
		return LocalContext
	}
	return c.CurrentContext
}

// Add stores a new context; a context of that name must not exist.
func (c *Config) Add(x Context) error {
	n, err := x.Normalize()
	if err != nil {
		return fmt.Errorf("add context: %w", err)
	}
	if slices.ContainsFunc(c.Contexts, func(y Context) bool { return y.Name == n.Name }) {
		return fmt.Errorf("add context: context %q already exists (delete it first, or use Set to replace it)", n.Name)
	}
	c.Contexts = append(c.Contexts, n)
	return nil
}

// Set stores x, replacing a context of the same name (kept in place) or
// adding it. It reports whether the context is new.
func (c *Config) Set(x Context) (created bool, err error) {
	n, err := x.Normalize()
	if err != nil {
		return false, fmt.Errorf("set context: %w", err)
	}
	for i := range c.Contexts {
		if c.Contexts[i].Name == n.Name {
			c.Contexts[i] = n
			return false, nil
		}
	}
	c.Contexts = append(c.Contexts, n)
	return true, nil
}

// Use makes name the current context.
func (c *Config) Use(name string) error {
	if _, err := c.Get(name); err != nil {
		return fmt.Errorf("use context: %w", err)
	}
	if name == LocalContext {
		c.CurrentContext = ""
		return nil
	}
	c.CurrentContext = name
	return nil
}

// Delete removes a context. Deleting the current context makes local
// current again, which wasCurrent reports so the CLI can say so. The
// caller also removes the context's stored token (login.Store.Delete).
func (c *Config) Delete(name string) (wasCurrent bool, err error) {
	if name == LocalContext {
		return false, errors.New("delete context: local is built in and cannot be deleted")
	}
	i := slices.IndexFunc(c.Contexts, func(x Context) bool { return x.Name == name })
	if i < 0 {
		_, err := c.Get(name)
		return false, fmt.Errorf("delete context: %w", err)
	}
	c.Contexts = slices.Delete(c.Contexts, i, i+1)
	if c.CurrentContext == name {
		c.CurrentContext = ""
		return true, nil
	}
	return false, nil
}

// Source says where the selected context came from.
type Source string

// The sources, by precedence.
const (
	SourceFlag    Source = "--context"
	SourceEnv     Source = "$" + EnvContext
	SourceConfig  Source = "current-context"
	SourceDefault Source = "default"
)

// Selection is the context a command runs against.
type Selection struct {
	Context Context
	Source  Source
	// Token is $STOA_TOKEN: when set, the bearer token to send instead of
	// the stored one (and nothing is refreshed or saved).
	Token string
}

// Resolve picks the context: flag (--context), then $STOA_CONTEXT, then
// current-context, then local.
func (c *Config) Resolve(flag string, getenv func(string) string) (Selection, error) {
	sel := Selection{Token: strings.TrimSpace(getenv(EnvToken))}
	name := ""
	switch {
	case flag != "":
		name, sel.Source = flag, SourceFlag
	case getenv(EnvContext) != "":
		name, sel.Source = getenv(EnvContext), SourceEnv
	case c.CurrentContext != "":
		name, sel.Source = c.CurrentContext, SourceConfig
	default:
		name, sel.Source = LocalContext, SourceDefault
	}
	x, err := c.Get(name)
	if err != nil {
		return Selection{}, fmt.Errorf("select context (from %s): %w", sel.Source, err)
	}
	sel.Context = x
	return sel, nil
}

// writeFileAtomic writes through a temporary file in the same directory
// and a rename, so readers never see a partial file and a crash loses
// nothing. The directory is created 0700.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".config-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FileError is a problem at a position in config.yaml.
type FileError struct {
	Path         string
	Line, Column int
	Message      string
	Hint         string
	// Source is the offending line.
	Source string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.Source != "" {
		fmt.Fprintf(&b, "\n  %d | %s", e.Line, e.Source)
		if e.Column > 0 {
			fmt.Fprintf(&b, "\n  %s | %s^", strings.Repeat(" ", len(fmt.Sprint(e.Line))), caretPad(e.Source, e.Column))
		}
	}
	if e.Hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func caretPad(line string, col int) string {
	var b strings.Builder
	for i, r := range line {
		if i >= col-1 {
			break
		}
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func lineOf(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimRight(lines[n-1], "\r")
}

func yamlFileError(path string, data []byte, err error) error {
	fe := &FileError{Path: path, Message: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		fe.Message = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			fe.Line, fe.Column = tk.Position.Line, tk.Position.Column
			fe.Source = lineOf(data, fe.Line)
		}
	}
	if strings.Contains(fe.Message, "unknown field") {
		fe.Hint = "fields are name, server, issuer, clientID, audience, scopes, fingerprint, issuerFingerprint (and current-context, contexts at the top)"
	}
	return fe
}

func fieldFileError(path string, data []byte, i int, fe *FieldError) error {
	p := fmt.Sprintf("$.contexts[%d].%s", i, fe.Field)
	e := newFileError(path, data, p, fe.Error(), "")
	if e.Line == 0 {
		e = newFileError(path, data, fmt.Sprintf("$.contexts[%d]", i), fe.Error(), "")
	}
	return e
}

// newFileError locates a YAML path in data for the message.
func newFileError(path string, data []byte, yamlPath, msg, hint string) *FileError {
	e := &FileError{Path: path, Message: msg, Hint: hint}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return e
	}
	p, err := yaml.PathString(yamlPath)
	if err != nil {
		return e
	}
	n, err := p.FilterFile(f)
	if err != nil || n == nil {
		return e
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		e.Line, e.Column = tk.Position.Line, tk.Position.Column
		e.Source = lineOf(data, e.Line)
	}
	return e
}
