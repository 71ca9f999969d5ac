package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Quantity is an amount of bytes: an integer with an optional binary (Ki,
// Mi, Gi, Ti, Pi, Ei) or decimal (k, M, G, T, P, E) suffix, as Kubernetes
// writes memory: "512Mi", "2Gi", "1G", "1048576".
type Quantity struct {
	// Like Duration, the text is parsed once and kept as written for JSON,
	// YAML, diffs and digests. The zero Quantity is unset.
	text string
	n    int64
}

// quantityUnits are the suffixes and their factors, longest first so that
// "Mi" is tried before "M".
var quantityUnits = []struct {
	suffix string
	factor int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
}

// quantityHint is the hint of an unparsable quantity.
const quantityHint = "write bytes as an integer with an optional suffix Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000), e.g. 512Mi or 2Gi"

// NewQuantity parses text that does not come from a spec document.
func NewQuantity(text string) (Quantity, error) {
	n, err := parseQuantity(text)
	if err != nil {
		return Quantity{}, err
	}
	return Quantity{text: text, n: n}, nil
}

// MustQuantity is NewQuantity for literals in code and tests.
func MustQuantity(text string) Quantity {
	q, err := NewQuantity(text)
	if err != nil {
		panic(err)
	}
	return q
}

// Bytes is the amount in bytes (0 when unset).
func (q Quantity) Bytes() int64 { return q.n }

// String returns the quantity as written.
func (q Quantity) String() string { return q.text }

// IsZero reports whether the field is unset.
func (q Quantity) IsZero() bool { return q.text == "" }

// MarshalText returns the text as written.
func (q Quantity) MarshalText() ([]byte, error) { return []byte(q.text), nil }

// UnmarshalText parses b; an empty string is an unset Quantity.
func (q *Quantity) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*q = Quantity{}
		return nil
	}
	v, err := NewQuantity(string(b))
	if err != nil {
		return err
	}
	*q = v
	return nil
}

// UnmarshalJSON accepts the string form and, since a byte count is a
// number, a JSON integer too.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var text string
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
		return q.UnmarshalText([]byte(text))
	}
	return q.UnmarshalText([]byte(s))
}

// parseQuantity parses a byte amount; it must not be negative.
func parseQuantity(s string) (int64, error) {
	num, factor := s, int64(1)
	for _, u := range quantityUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, factor = rest, u.factor
			break
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		if strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("invalid quantity %q: must not be negative", s)
		}
		return 0, fmt.Errorf("invalid quantity %q", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/factor {
		return 0, fmt.Errorf("invalid quantity %q: too large", s)
	}
	return n * factor, nil
}
