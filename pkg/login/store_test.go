package login_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/login"
	"github.com/zalando/go-keyring"
)

// memKeyring is an in-memory keyring; err, when set, makes every call
// fail with it.
type memKeyring struct {
	mu  sync.Mutex
	m   map[string]string
	err error
	// setErr fails Set only: a keyring that is there but refuses to store.
	setErr error
}

func newMemKeyring() *memKeyring { return &memKeyring{m: map[string]string{}} }

func (k *memKeyring) Set(service, account, secret string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return k.err
	}
	if k.setErr != nil {
		return k.setErr
	}
	k.m[service+"/"+account] = secret
	return nil
}

func (k *memKeyring) Get(service, account string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return "", k.err
	}
	v, ok := k.m[service+"/"+account]
	if !ok {
		return "", login.ErrKeyringNotFound
	}
	return v, nil
}

func (k *memKeyring) Delete(service, account string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return k.err
	}
	if _, ok := k.m[service+"/"+account]; !ok {
		return login.ErrKeyringNotFound
	}
	delete(k.m, service+"/"+account)
	return nil
}

func sampleToken(access string) *login.Token {
	return &login.Token{AccessToken: access, RefreshToken: "rt-" + access, Expiry: time.Unix(2000000000, 0).UTC(),
		Issuer: "https://127.0.0.1:1", ClientID: login.DefaultClientID, TokenURL: "https://127.0.0.1:1/oauth/token", Flow: login.FlowBrowser}
}

func TestStoreKeyring(t *testing.T) {
	kr := newMemKeyring()
	st := &login.Store{Keyring: kr, Dir: t.TempDir()}
	res, err := st.Save("prod", sampleToken("a1"))
	if err != nil || res.Backend != login.BackendKeyring || res.String() != "token stored in the OS keyring" {
		t.Fatalf("Save = %+v, %v", res, err)
	}
	if _, err := os.Stat(st.Path("prod")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a keyring save also wrote the file")
	}
	tok, b, err := st.Load("prod")
	if err != nil || b != login.BackendKeyring || tok.AccessToken != "a1" || !tok.Expiry.Equal(time.Unix(2000000000, 0)) {
		t.Fatalf("Load = %+v %s %v", tok, b, err)
	}
	removed, err := st.Delete("prod")
	if err != nil || len(removed) != 1 || removed[0] != login.BackendKeyring {
		t.Fatalf("Delete = %v %v", removed, err)
	}
	if _, _, err := st.Load("prod"); !errors.Is(err, login.ErrNotLoggedIn) || !strings.Contains(err.Error(), "stoa login") {
		t.Fatalf("Load after Delete: %v", err)
	}
	if removed, err := st.Delete("prod"); err != nil || len(removed) != 0 {
		t.Fatalf("second Delete = %v %v", removed, err)
	}
}

func TestStoreFallsBackToFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error // every call fails: no keyring
		setErr error // only Set fails: a keyring that refuses
		warn   bool
	}{
		// What go-keyring says on a headless Linux box without D-Bus.
		{"no dbus", errors.New(`exec: "dbus-launch": executable file not found in $PATH`), nil, false},
		{"no secret service", errors.New("The name org.freedesktop.secrets was not provided by any .service files"), nil, false},
		// A keyring that exists and says no.
		{"refused", nil, errors.New("user denied access"), true},
		{"too big", nil, keyring.ErrSetDataTooBig, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "stoa")
			kr := newMemKeyring()
			kr.err, kr.setErr = tc.err, tc.setErr
			st := &login.Store{Keyring: kr, Dir: dir}
			res, err := st.Save("dev", sampleToken("f1"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Backend != login.BackendFile || res.Path != st.Path("dev") || res.Warn != tc.warn || res.Reason == "" {
				t.Fatalf("Save = %+v", res)
			}
			if msg := res.String(); !strings.Contains(msg, res.Path) || strings.HasPrefix(msg, "warning") != tc.warn {
				t.Errorf("message %q", msg)
			}
			fi, err := os.Stat(res.Path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("token file: %v %v", fi.Mode(), err)
			}
			di, _ := os.Stat(filepath.Dir(res.Path))
			if di.Mode().Perm() != 0o700 {
				t.Fatalf("tokens dir mode %v", di.Mode())
			}
			tok, b, err := st.Load("dev")
			if err != nil || b != login.BackendFile || tok.AccessToken != "f1" {
				t.Fatalf("Load = %+v %s %v", tok, b, err)
			}
			// No temp files are left behind.
			ents, _ := os.ReadDir(filepath.Dir(res.Path))
			if len(ents) != 1 {
				t.Errorf("tokens dir holds %d entries", len(ents))
			}
			removed, err := st.Delete("dev")
			if err != nil || len(removed) != 1 || removed[0] != login.BackendFile {
				t.Fatalf("Delete = %v %v", removed, err)
			}
		})
	}
}

// A token saved to the file while the keyring was away is replaced (and
// the file removed) once the keyring works again; logout removes both.
func TestStoreKeyringComesBack(t *testing.T) {
	kr := newMemKeyring()
	st := &login.Store{Keyring: kr, Dir: t.TempDir()}
	kr.err = errors.New("dbus: session bus not available")
	if _, err := st.Save("c", sampleToken("old")); err != nil {
		t.Fatal(err)
	}
	kr.err = nil
	if res, err := st.Save("c", sampleToken("new")); err != nil || res.Backend != login.BackendKeyring {
		t.Fatalf("Save = %+v %v", res, err)
	}
	if _, err := os.Stat(st.Path("c")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the stale file copy survived")
	}
	// Both places hold a token (written behind the store's back): Delete
	// removes both.
	kr.err = errors.New("dbus: gone")
	if _, err := st.Save("c", sampleToken("file")); err != nil {
		t.Fatal(err)
	}
	kr.err = nil
	_ = kr.Set(login.KeyringService, "c", `{"access_token":"kr"}`)
	tok, b, err := st.Load("c")
	if err != nil || b != login.BackendKeyring || tok.AccessToken != "kr" {
		t.Fatalf("Load prefers the keyring: %+v %s %v", tok, b, err)
	}
	removed, err := st.Delete("c")
	if err != nil || len(removed) != 2 {
		t.Fatalf("Delete = %v %v", removed, err)
	}
}

func TestStoreRefusesBadFiles(t *testing.T) {
	st := &login.Store{Dir: t.TempDir()}
	if _, err := st.Save("x", sampleToken("t")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(st.Path("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Load("x"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file: %v", err)
	}
	if err := os.WriteFile(st.Path("x"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(st.Path("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Load("x"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt token file: %v", err)
	}
	for _, key := range []string{"", "../etc/passwd", "a/b", ".hidden", strings.Repeat("a", 64), "with space"} {
		if _, err := st.Save(key, sampleToken("t")); err == nil {
			t.Errorf("Save(%q) accepted", key)
		}
		if _, _, err := st.Load(key); err == nil {
			t.Errorf("Load(%q) accepted", key)
		}
	}
}

// SystemKeyring goes through go-keyring; its mock provider stands in for
// the OS keyring here (the real one needs a desktop session).
func TestSystemKeyringAdapter(t *testing.T) {
	keyring.MockInit()
	st := &login.Store{Keyring: login.SystemKeyring{}, Dir: t.TempDir(), Service: "stoa-test"}
	if res, err := st.Save("m", sampleToken("mk")); err != nil || res.Backend != login.BackendKeyring {
		t.Fatalf("Save = %+v %v", res, err)
	}
	if tok, _, err := st.Load("m"); err != nil || tok.AccessToken != "mk" {
		t.Fatalf("Load = %v", err)
	}
	if removed, err := st.Delete("m"); err != nil || len(removed) != 1 {
		t.Fatalf("Delete = %v %v", removed, err)
	}
	keyring.MockInitWithError(errors.New(`exec: "dbus-launch": executable file not found in $PATH`))
	res, err := st.Save("m", sampleToken("mk"))
	if err != nil || res.Backend != login.BackendFile || res.Warn {
		t.Fatalf("Save without a keyring = %+v %v", res, err)
	}
}
