package spec

import (
	"fmt"
	"strings"
)

// MaxMCPNameLen is the longest MCP tool name stoa accepts.
const MaxMCPNameLen = 64

// PlatformToolPrefix starts the names of stoa's own MCP tools; tenants'
// tools may not use it.
const PlatformToolPrefix = "stoa_"

// MCPToolName returns op.MCPName if set, else tenant+"__"+tool+"__"+op.Name.
func MCPToolName(tenant, tool string, op *Operation) string {
	if op.MCPName != "" {
		return op.MCPName
	}
	return tenant + "__" + tool + "__" + op.Name
}

// checkDNSLabel explains why s is not a DNS label (RFC 1123, starting with a
// letter), or returns "".
func checkDNSLabel(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > 63:
		return fmt.Sprintf("is %d characters long; at most 63 are allowed", len(s))
	case s[0] < 'a' || s[0] > 'z':
		return "must start with a lower-case letter"
	case s[len(s)-1] == '-':
		return "must not end with '-'"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("contains %q; only lower-case letters, digits and '-' are allowed", rune(c))
		}
	}
	return ""
}

// dnsLabelHint suggests a valid label for s.
func dnsLabelHint(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-0123456789")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	if out == "" || out == s {
		return "use lower-case letters, digits and '-', starting with a letter (at most 63 characters)"
	}
	return fmt.Sprintf("for example %q", out)
}

// isMCPNameChar reports whether c may appear in an MCP tool name.
func isMCPNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// validMCPName reports whether s is 1..64 characters of [A-Za-z0-9_-].
func validMCPName(s string) bool {
	if s == "" || len(s) > MaxMCPNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isMCPNameChar(s[i]) {
			return false
		}
	}
	return true
}

// suggestMCPName proposes a short explicit mcpName for an operation whose
// generated name is too long.
func suggestMCPName(tenant, tool, op string) string {
	for _, c := range []string{tool + "__" + op, tenant + "__" + op, op} {
		if validMCPName(c) && !strings.HasPrefix(c, PlatformToolPrefix) {
			return c
		}
	}
	var b strings.Builder
	for i := 0; i < len(op) && b.Len() < MaxMCPNameLen; i++ {
		if isMCPNameChar(op[i]) {
			b.WriteByte(op[i])
		}
	}
	if b.Len() == 0 {
		return "my_tool"
	}
	return b.String()
}

// isOperationName reports whether s matches [a-z0-9_-]+.
func isOperationName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkLabelKey explains why k is not a valid label key ([prefix/]name, the
// name at most 63 characters of [A-Za-z0-9._-] starting and ending with an
// alphanumeric, the prefix a DNS subdomain), or returns "".
func checkLabelKey(k string) string {
	prefix, name, ok := strings.Cut(k, "/")
	if !ok {
		name, prefix = prefix, ""
	} else {
		if prefix == "" || len(prefix) > 253 {
			return "has an empty or over-long prefix before '/'"
		}
		for _, part := range strings.Split(prefix, ".") {
			if checkDNSName(part) != "" {
				return fmt.Sprintf("prefix %q is not a DNS subdomain", prefix)
			}
		}
	}
	if why := checkLabelValue(name); why != "" || name == "" {
		if name == "" {
			return "has an empty name"
		}
		return why
	}
	return ""
}

// checkDNSName checks one label of a DNS name (digits may lead).
func checkDNSName(s string) string {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return "invalid"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "invalid"
		}
	}
	return ""
}

// checkLabelValue explains why v is not a valid label value (empty, or at
// most 63 characters of [A-Za-z0-9._-] starting and ending with an
// alphanumeric), or returns "".
func checkLabelValue(v string) string {
	if v == "" {
		return ""
	}
	if len(v) > 63 {
		return fmt.Sprintf("is %d characters long; at most 63 are allowed", len(v))
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if !alnum(v[0]) || !alnum(v[len(v)-1]) {
		return "must start and end with a letter or digit"
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Sprintf("contains %q; only letters, digits, '-', '_' and '.' are allowed", rune(c))
		}
	}
	return ""
}
