package federation

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Prefix returns the part every exposed tool name of the upstream starts
// with: "{tenant}__{tool}__".
func Prefix(tenant, tool string) string { return tenant + "__" + tool + "__" }

// ExposedName returns the catalog name of the upstream tool upstreamName:
// Prefix(tenant, tool) followed by its rename, if any, else by the upstream
// name. A name that is longer than spec.MaxMCPNameLen or holds characters
// outside [A-Za-z0-9_-] is sanitized deterministically (the same input
// always gives the same name, so clients' saved references survive
// restarts): other characters become '_', and an over-long name is cut and
// ends with '_' and 8 hex digits of a hash of the upstream name, so two cut
// names do not collide. problem then explains what happened and which
// rename to add; it is "" for a name used as is.
func ExposedName(tenant, tool, upstreamName string, rename map[string]string) (name, problem string) {
	prefix := Prefix(tenant, tool)
	if r, ok := rename[upstreamName]; ok {
		// Renames are validated with the configuration; a bad one here is a
		// programming error upstream of us, still sanitized below.
		upstreamName = r
	}
	if validName(prefix + upstreamName) {
		return prefix + upstreamName, ""
	}
	clean := sanitizeSegment(upstreamName)
	room := spec.MaxMCPNameLen - len(prefix)
	why := "contains characters other than letters, digits, '_' and '-'"
	if len(prefix)+len(upstreamName) > spec.MaxMCPNameLen {
		why = fmt.Sprintf("would make the tool name %d characters long (at most %d)", len(prefix)+len(upstreamName), spec.MaxMCPNameLen)
	}
	if len(clean) > room || clean == "" {
		h := fnv.New32a()
		h.Write([]byte(upstreamName))
		suffix := fmt.Sprintf("_%08x", h.Sum32())
		keep := max(room-len(suffix), 0)
		clean = strings.TrimRight(clean[:min(keep, len(clean))], "_-") + suffix
		if len(clean) > room {
			clean = clean[len(clean)-room:]
		}
	}
	suggest := clean
	if len(suggest) > 9 && suggest[len(suggest)-9] == '_' && len(prefix)+len(upstreamName) > spec.MaxMCPNameLen {
		// Suggest a readable rename rather than the hashed form.
		suggest = strings.TrimRight(suggest[:len(suggest)-9], "_-")
		if suggest == "" {
			suggest = clean
		}
	}
	return prefix + clean, fmt.Sprintf("upstream tool %q %s; exposed as %q. Name it explicitly with tools.rename: {%q: %q}",
		upstreamName, why, prefix+clean, upstreamName, suggest)
}

// sanitizeSegment replaces every character outside [A-Za-z0-9_-] by '_'
// (one per byte of a multi-byte rune, so distinct inputs stay distinct in
// length at least) and squeezes runs of '_' created that way.
func sanitizeSegment(s string) string {
	var b strings.Builder
	last := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isNameChar(c) {
			c = '_'
			if last == '_' {
				continue
			}
		}
		b.WriteByte(c)
		last = c
	}
	return b.String()
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// validName reports whether s is 1..spec.MaxMCPNameLen characters of
// [A-Za-z0-9_-].
func validName(s string) bool {
	if s == "" || len(s) > spec.MaxMCPNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// ResourcePrefix is what the namespaced URIs of the upstream's resources
// start with: "stoa://tools/{tenant}/{tool}/upstream/". The rest of the URI
// is the upstream's own URI, unchanged. It lies under the Tool's own
// resource URI (stoa://tools/{tenant}/{tool}), so tenant rules that apply to
// the Tool apply to it, and a URI names exactly one upstream: a caller can
// only reach an upstream's resources through that upstream's prefix.
func ResourcePrefix(tenant, tool string) string {
	return "stoa://tools/" + tenant + "/" + tool + "/upstream/"
}

// globMatch reports whether s matches pattern, where '*' matches any run of
// characters (including none, and including '/' and '.') and '?' exactly one
// byte; every other character matches itself. Upstream tool names are free
// text, so path.Match's '/' rule and character classes would only surprise.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Filter selects upstream names: Deny wins over Allow, and an empty Allow
// admits everything not denied.
type Filter struct {
	// Allow lists glob patterns ('*', '?') of names to expose; empty = all.
	Allow []string
	// Deny lists glob patterns of names never exposed.
	Deny []string
}

// Admits reports whether the filter exposes name.
func (f *Filter) Admits(name string) bool {
	for _, p := range f.Deny {
		if globMatch(p, name) {
			return false
		}
	}
	if len(f.Allow) == 0 {
		return true
	}
	for _, p := range f.Allow {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}
