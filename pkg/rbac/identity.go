package rbac

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Identity is the caller behind a verified token. Claims is the token's
// whole claims set as pkg/auth decoded it (numbers as json.Number); it is
// only read, never kept beyond the Grants computed from it.
type Identity struct {
	Issuer  string
	Subject string
	Claims  map[string]any
}

// Actor is how the caller appears in revisions, events and audit entries:
// "oidc:" + issuer + "#" + subject. Without the "oidc:" prefix it is the
// issuer-pinned subject form accepted in spec.access subjects, so an
// actor seen in `stoa history` can be bound as it is.
func (id Identity) Actor() string {
	return "oidc:" + id.Issuer + "#" + id.Subject
}

// pinned splits "ISSUER#VALUE" into its parts. An OIDC issuer is an http(s)
// URL without a fragment, so the first "#" after such a prefix separates
// the two; anything else is an unpinned value, "#" and all.
func pinned(s string) (issuer, value string, ok bool) {
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return "", s, false
	}
	i := strings.IndexByte(s, '#')
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

// claim resolves a claim name or dotted path ("realm_access.roles") the way
// pkg/auth does: at each level the whole remaining path is tried as a key
// first, then shorter prefixes split at dots, so a literal key containing
// dots ("https://example.com/roles") beats nesting. "iss" and "sub" are
// the verified Issuer and Subject, whatever the claims map says.
func (id *Identity) claim(path string) (any, bool) {
	switch path {
	case "iss":
		return id.Issuer, id.Issuer != ""
	case "sub":
		return id.Subject, id.Subject != ""
	}
	return lookupClaim(id.Claims, path)
}

func lookupClaim(claims map[string]any, path string) (any, bool) {
	if claims == nil || path == "" {
		return nil, false
	}
	if v, ok := claims[path]; ok {
		return v, true
	}
	for i := strings.LastIndexByte(path, '.'); i > 0; i = strings.LastIndexByte(path[:i], '.') {
		m, ok := claims[path[:i]].(map[string]any)
		if !ok {
			continue
		}
		if r, ok := lookupClaim(m, path[i+1:]); ok {
			return r, true
		}
	}
	return nil, false
}

// scalarText is a scalar claim's text for comparison: strings as they are,
// numbers and booleans as their JSON text ("42", "true"). Other values
// (objects, null, nested arrays) compare equal to nothing.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return string(v), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// eachClaimValue calls fn with a claim's value, or with each element of an
// array claim, until fn returns false.
func eachClaimValue(v any, fn func(string) bool) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if s, ok := scalarText(e); ok && !fn(s) {
				return
			}
		}
	case []string:
		for _, s := range v {
			if !fn(s) {
				return
			}
		}
	default:
		if s, ok := scalarText(v); ok {
			fn(s)
		}
	}
}

// eachGroup calls fn with each group of a groups claim until fn returns
// false: the elements of an array, or the fields of a string separated by
// spaces or commas (IdPs that flatten groups into one string use either).
// Empty groups are skipped.
func eachGroup(v any, fn func(string) bool) {
	s, ok := v.(string)
	if !ok {
		eachClaimValue(v, func(g string) bool { return g == "" || fn(g) })
		return
	}
	for s != "" {
		i := strings.IndexAny(s, " ,\t\n\r")
		var g string
		if i < 0 {
			g, s = s, ""
		} else {
			g, s = s[:i], s[i+1:]
		}
		if g != "" && !fn(g) {
			return
		}
	}
}

// groups lists the token's groups for messages (at most max of them, and
// how many there were).
func (id *Identity) groups(claim string, max int) ([]string, int) {
	v, ok := id.claim(claim)
	if !ok {
		return nil, 0
	}
	var out []string
	n := 0
	eachGroup(v, func(g string) bool {
		if n < max {
			out = append(out, g)
		}
		n++
		return true
	})
	return out, n
}

// claimMatches reports whether the token's claim equals want, or contains
// it when the claim is an array.
func (id *Identity) claimMatches(name, want string) bool {
	v, ok := id.claim(name)
	if !ok {
		return false
	}
	found := false
	eachClaimValue(v, func(s string) bool {
		found = s == want
		return !found
	})
	return found
}
