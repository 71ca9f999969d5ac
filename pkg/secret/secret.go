// Package secret resolves spec SecretRefs: secrets live in stoad's
// environment or in files, never in spec text, and are never logged.
package secret

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// maxFileBytes bounds a secret file.
const maxFileBytes = 64 << 10

// Read returns the secret ref points at. Errors name the variable or file,
// never the value.
func Read(ref spec.SecretRef) (string, error) {
	switch {
	case ref.Env != "" && ref.File != "":
		return "", errors.New("secretRef: set env or file, not both")
	case ref.Env != "":
		v, ok := os.LookupEnv(ref.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("secretRef: environment variable %s of stoad is not set", ref.Env)
		}
		return v, nil
	case ref.File != "":
		f, err := os.Open(ref.File)
		if err != nil {
			return "", fmt.Errorf("secretRef: %w", err)
		}
		defer f.Close()
		b := make([]byte, maxFileBytes+1)
		n, _ := f.Read(b)
		if n > maxFileBytes {
			return "", fmt.Errorf("secretRef: file %s is larger than %d bytes", ref.File, maxFileBytes)
		}
		v := strings.TrimSpace(string(b[:n]))
		if v == "" {
			return "", fmt.Errorf("secretRef: file %s is empty", ref.File)
		}
		return v, nil
	}
	return "", errors.New("secretRef: set env or file")
}
