package ca

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// metaKey is where the CA lives in the store's fleet namespace.
const metaKey = "ca"

type stored struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// FromStore loads the CA from the store's Meta domain (namespace fleet,
// key "ca"), creating it on first use. Control plane replicas sharing one
// database thus share one CA; two replicas starting together agree on
// one, since the store serialises the read-and-create.
//
// The key is stored unencrypted: whoever can write the store can already
// change the configuration every data plane serves, so the store is
// trusted with the CA as it is with everything else. FromFiles keeps it
// out of the database.
func FromStore(ctx context.Context, st store.Store, now time.Time) (*CA, error) {
	var c *CA
	err := st.Update(ctx, func(tx store.Tx) error {
		v, err := tx.Meta().Get(ctx, store.MetaFleet, metaKey)
		switch {
		case err == nil:
			var s stored
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("load fleet CA from the store: %w: %v", store.ErrCorrupt, err)
			}
			c, err = Parse([]byte(s.Cert), []byte(s.Key))
			return err
		case errors.Is(err, store.ErrNotFound):
			if c, err = Generate(now); err != nil {
				return err
			}
			b, err := json.Marshal(stored{Cert: string(c.CertPEM()), Key: string(c.KeyPEM())})
			if err != nil {
				return err
			}
			return tx.Meta().Put(ctx, store.MetaFleet, metaKey, b)
		default:
			return fmt.Errorf("load fleet CA from the store: %w", err)
		}
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// FromFiles loads the CA from certFile and keyFile (PEM), creating both
// when neither exists (the key 0600 in a 0700 directory). One file
// without the other is an error rather than a new CA, which would
// silently cut off every data plane.
func FromFiles(certFile, keyFile string, now time.Time) (*CA, error) {
	cb, cerr := os.ReadFile(certFile)
	kb, kerr := os.ReadFile(keyFile)
	switch {
	case cerr == nil && kerr == nil:
		if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("load fleet CA: %s is readable by others (mode %v); chmod 600 %s", keyFile, fi.Mode().Perm(), keyFile)
		}
		return Parse(cb, kb)
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		c, err := Generate(now)
		if err != nil {
			return nil, err
		}
		if err := writeFile(keyFile, c.KeyPEM(), 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(certFile, c.CertPEM(), 0o644); err != nil {
			return nil, err
		}
		return c, nil
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return nil, fmt.Errorf("load fleet CA: %w", cerr)
	case kerr != nil && !errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("load fleet CA: %w", kerr)
	case cerr != nil:
		return nil, fmt.Errorf("load fleet CA: %s exists but %s does not; restore it, or remove both to make a new CA (every data plane must then join again)", keyFile, certFile)
	default:
		return nil, fmt.Errorf("load fleet CA: %s exists but %s does not; restore it, or remove both to make a new CA (every data plane must then join again)", certFile, keyFile)
	}
}

// WriteFile writes data to path atomically (temporary file, fsync,
// rename, directory fsync) with the given mode, creating the directory
// 0700.
func WriteFile(path string, data []byte, mode os.FileMode) error { return writeFile(path, data, mode) }

func writeFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}
