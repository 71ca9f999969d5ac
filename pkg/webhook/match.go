package webhook

import "strings"

// Match reports whether event type typ is selected by one of patterns: an
// exact type, "*" (everything), or a prefix wildcard such as
// "subscription.*" (every type starting with "subscription.").
func Match(patterns []string, typ string) bool {
	for _, p := range patterns {
		if p == "*" || p == typ {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, ".") && strings.HasPrefix(typ, prefix) {
			return true
		}
	}
	return false
}
