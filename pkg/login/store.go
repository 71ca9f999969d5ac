package login

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/zalando/go-keyring"
)

// Backend says where a token is kept.
type Backend string

// The backends.
const (
	BackendKeyring Backend = "keyring"
	BackendFile    Backend = "file"
)

// KeyringService is the service name tokens are stored under in the OS
// keyring; the account is the context name.
const KeyringService = "stoa"

// Keyring is the subset of an OS keyring a Store uses. Get returns
// ErrKeyringNotFound for a missing secret.
type Keyring interface {
	Set(service, account, secret string) error
	Get(service, account string) (string, error)
	Delete(service, account string) error
}

// ErrKeyringNotFound is what a Keyring returns for a missing secret.
var ErrKeyringNotFound = keyring.ErrNotFound

// SystemKeyring is the OS keyring: macOS Keychain, Windows Credential
// Manager, or the D-Bus Secret Service (GNOME Keyring, KWallet) elsewhere.
type SystemKeyring struct{}

// Set implements Keyring.
func (SystemKeyring) Set(service, account, secret string) error {
	return keyring.Set(service, account, secret)
}

// Get implements Keyring.
func (SystemKeyring) Get(service, account string) (string, error) {
	return keyring.Get(service, account)
}

// Delete implements Keyring.
func (SystemKeyring) Delete(service, account string) error {
	return keyring.Delete(service, account)
}

// Store keeps tokens per context: in Keyring when it works, otherwise in
// Dir/tokens/<context>.json (mode 0600, directory 0700).
type Store struct {
	// Keyring is tried first; nil means files only.
	Keyring Keyring
	// Dir is stoa's configuration directory ($XDG_CONFIG_HOME/stoa).
	Dir string
	// Service overrides KeyringService (tests use their own).
	Service string
}

// NewStore returns a store that uses the OS keyring with a file fallback
// under dir.
func NewStore(dir string) *Store { return &Store{Keyring: SystemKeyring{}, Dir: dir} }

func (s *Store) service() string {
	if s.Service != "" {
		return s.Service
	}
	return KeyringService
}

// SaveResult says where Save put a token, for a line on stderr.
type SaveResult struct {
	Backend Backend
	// Path is the file, for BackendFile.
	Path string
	// Reason says why the keyring was not used (empty for BackendKeyring,
	// or when the store has no keyring).
	Reason string
	// Warn is set when a keyring exists but refused the token, which the
	// user may want to fix, as opposed to there being no keyring at all.
	Warn bool
}

// String renders the result for stderr.
func (r SaveResult) String() string {
	switch {
	case r.Backend == BackendKeyring:
		return "token stored in the OS keyring"
	case r.Warn:
		return fmt.Sprintf("warning: the OS keyring refused the token (%s); stored it in %s (mode 0600) instead", r.Reason, r.Path)
	case r.Reason != "":
		return fmt.Sprintf("no OS keyring available (%s); token stored in %s (mode 0600)", r.Reason, r.Path)
	}
	return fmt.Sprintf("token stored in %s (mode 0600)", r.Path)
}

var keyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func checkKey(key string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("context name %q: want 1-63 of [A-Za-z0-9._-], starting with a letter or digit", key)
	}
	return nil
}

// Path returns the file a context's token falls back to.
func (s *Store) Path(key string) string {
	return filepath.Join(s.Dir, "tokens", key+".json")
}

// Save stores tok for the context key.
func (s *Store) Save(key string, tok *Token) (SaveResult, error) {
	if err := checkKey(key); err != nil {
		return SaveResult{}, fmt.Errorf("save token: %w", err)
	}
	data, err := json.Marshal(tok)
	if err != nil {
		return SaveResult{}, fmt.Errorf("save token: %w", err)
	}
	res := SaveResult{Backend: BackendFile, Path: s.Path(key)}
	if s.Keyring != nil {
		kerr := s.Keyring.Set(s.service(), key, string(data))
		if kerr == nil {
			// A copy left in the file from an earlier fallback would be
			// stale: remove it so Load and Delete see one token.
			if err := os.Remove(res.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return SaveResult{Backend: BackendKeyring}, fmt.Errorf("save token: stored in the keyring, but could not remove the old file copy: %w", err)
			}
			return SaveResult{Backend: BackendKeyring}, nil
		}
		res.Reason = oneLine(kerr.Error())
		res.Warn = !keyringUnavailable(kerr)
		// Best effort: an older token left in the keyring would shadow the
		// file on Load.
		_ = s.Keyring.Delete(s.service(), key)
	}
	if err := writeFileAtomic(res.Path, data); err != nil {
		return SaveResult{}, fmt.Errorf("save token: %w", err)
	}
	return res, nil
}

// Load returns the token stored for key and where it was found. It fails
// with ErrNotLoggedIn when there is none.
func (s *Store) Load(key string) (*Token, Backend, error) {
	if err := checkKey(key); err != nil {
		return nil, "", fmt.Errorf("load token: %w", err)
	}
	if s.Keyring != nil {
		// Any keyring failure (none installed, locked) falls through to
		// the file, where Save put the token in that case.
		if data, err := s.Keyring.Get(s.service(), key); err == nil {
			tok, err := decodeToken([]byte(data))
			if err != nil {
				return nil, "", fmt.Errorf("load token for context %q from the keyring: %w (%s)", key, err, hintLogin)
			}
			return tok, BackendKeyring, nil
		}
	}
	path := s.Path(key)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%w to context %q (%s)", ErrNotLoggedIn, key, hintLogin)
	}
	if err != nil {
		return nil, "", fmt.Errorf("load token: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("load token: %s is accessible by other users (mode %04o); fix it with: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("load token: %w", err)
	}
	tok, err := decodeToken(data)
	if err != nil {
		return nil, "", fmt.Errorf("load token for context %q from %s: %w (%s)", key, path, err, hintLogin)
	}
	return tok, BackendFile, nil
}

func decodeToken(data []byte) (*Token, error) {
	var t Token
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("stored token is corrupt: %w", err)
	}
	if t.AccessToken == "" {
		return nil, errors.New("stored token has no access token")
	}
	return &t, nil
}

// Delete removes key's token from the keyring and the file and returns
// where one was found (none: nothing was stored). A keyring that is not
// available is not an error.
func (s *Store) Delete(key string) ([]Backend, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("delete token: %w", err)
	}
	var removed []Backend
	var errs []error
	if s.Keyring != nil {
		switch err := s.Keyring.Delete(s.service(), key); {
		case err == nil:
			removed = append(removed, BackendKeyring)
		case errors.Is(err, ErrKeyringNotFound) || keyringUnavailable(err):
		default:
			errs = append(errs, fmt.Errorf("delete token from the keyring: %w", err))
		}
	}
	switch err := os.Remove(s.Path(key)); {
	case err == nil:
		removed = append(removed, BackendFile)
	case errors.Is(err, fs.ErrNotExist):
	default:
		errs = append(errs, fmt.Errorf("delete token: %w", err))
	}
	return removed, errors.Join(errs...)
}

// keyringUnavailable tells "there is no keyring service here" (no D-Bus
// session, no Secret Service provider: headless Linux, containers, CI)
// from a keyring that exists and refused.
func keyringUnavailable(err error) bool {
	m := strings.ToLower(err.Error())
	for _, s := range []string{"dbus", "d-bus", "org.freedesktop.secrets", "secret service", "not provided by any .service", "no such file or directory", "connection refused"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// writeFileAtomic writes data to path through a temporary file in the
// same directory and a rename, so a crash never leaves a partial token.
// The directory is created 0700 and the file 0600.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// MkdirAll leaves an existing directory's mode alone; the tokens
	// directory is ours, so tighten it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
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
