package bundle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
)

// The last good bundle lives in a directory as three files:
//
//	bundle-<hex digest>.json      the bundle, as signed
//	bundle-<hex digest>.json.sig  its cosign signature
//	last-good.json                {"revision":N,"digest":"sha256:…"}
//
// The pair is written first under content-addressed names, then the
// pointer is replaced, each file by temp file + fsync + rename with the
// directory fsynced after. A crash at any point leaves the old pointer
// with its complete pair, or the new pointer with its complete pair,
// never a bundle with another bundle's signature. Operators can check the
// files with `cosign verify-blob` as they are.
const pointerName = "last-good.json"

type pointer struct {
	Revision int64  `json:"revision"`
	Digest   Digest `json:"digest"`
}

func pairNames(d Digest) (bundle, sig string) {
	name := "bundle-" + hex.EncodeToString(d[:]) + ".json"
	return name, name + ".sig"
}

// WriteFileAtomic makes b and its signature the last good bundle in dir
// (created 0700 if missing), crash-safely, and removes the previous one.
func WriteFileAtomic(dir string, b *Bundle, sig []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write last good bundle: %w", err)
	}
	bname, sname := pairNames(b.digest)
	if err := writeFile(dir, bname, b.raw); err != nil {
		return err
	}
	if err := writeFile(dir, sname, sig); err != nil {
		return err
	}
	// The pair must be durable before the pointer names it.
	if err := syncDir(dir); err != nil {
		return err
	}
	p, err := json.Marshal(pointer{Revision: b.rev, Digest: b.digest})
	if err != nil {
		return fmt.Errorf("write last good bundle: %w", err)
	}
	if err := writeFile(dir, pointerName, append(p, '\n')); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	removeStale(dir, bname, sname)
	return nil
}

// writeFile writes data to dir/name through a synced temp file.
func writeFile(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// removeStale deletes earlier pairs and temp files left by a crash. It is
// best effort: leftovers cost disk, never correctness.
func removeStale(dir, keepBundle, keepSig string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if n == keepBundle || n == keepSig {
			continue
		}
		if strings.HasPrefix(n, ".tmp-") || (strings.HasPrefix(n, "bundle-") && (strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".json.sig"))) {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// ReadLastGood loads the last good bundle from dir and verifies it again
// (digest, signature with v, canonical form), since a disk can rot or be
// written by someone else. With no bundle stored the error matches
// fs.ErrNotExist.
func ReadLastGood(dir string, v signature.Verifier) (*Bundle, []byte, error) {
	pb, err := os.ReadFile(filepath.Join(dir, pointerName))
	if err != nil {
		return nil, nil, fmt.Errorf("read last good bundle: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.DisallowUnknownFields()
	var p pointer
	if err := dec.Decode(&p); err != nil {
		return nil, nil, &FormatError{Msg: fmt.Sprintf("read %s: %v", pointerName, err)}
	}
	bname, sname := pairNames(p.Digest)
	raw, err := os.ReadFile(filepath.Join(dir, bname))
	if err == nil {
		var sig []byte
		if sig, err = os.ReadFile(filepath.Join(dir, sname)); err == nil {
			b, err := Open(raw, sig, v, OpenOptions{Digest: p.Digest})
			if err != nil {
				return nil, nil, fmt.Errorf("read last good bundle: %w", err)
			}
			if b.rev != p.Revision {
				return nil, nil, &FormatError{Msg: fmt.Sprintf("read last good bundle: %s says revision %d, the bundle is revision %d", pointerName, p.Revision, b.rev)}
			}
			return b, bytes.TrimSpace(sig), nil
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		// The pointer names a pair that is gone: damage, not "nothing stored".
		return nil, nil, &FormatError{Msg: fmt.Sprintf("read last good bundle: %s names %s, which is missing", pointerName, bname)}
	}
	return nil, nil, fmt.Errorf("read last good bundle: %w", err)
}
