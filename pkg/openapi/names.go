package openapi

import (
	"strings"
	"unicode"
)

// snake converts an operationId or path text to an operation name:
// lower-case snake_case of [a-z0-9_] ("getPetById" → "get_pet_by_id",
// "list-pets" → "list_pets", "HTTPStatus" → "http_status").
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	under := func() {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
	}
	for i, r := range rs {
		switch {
		case r >= 'A' && r <= 'Z':
			// A new word starts at an upper-case letter after a lower-case
			// letter or digit, or before a lower-case letter in an acronym
			// ("HTTPServer" → http_server).
			if i > 0 {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z'
				if (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9') || (prev >= 'A' && prev <= 'Z' && nextLower) {
					under()
				}
			}
			b.WriteRune(unicode.ToLower(r))
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			under()
		}
	}
	return strings.Trim(b.String(), "_")
}

// methodPathName names an operation without operationId: the method and
// the path's segments ("GET /pets/{petId}" → "get_pets_pet_id").
func methodPathName(method, path string) string {
	parts := []string{strings.ToLower(method)}
	for _, seg := range strings.Split(path, "/") {
		seg = strings.Trim(seg, "{}")
		if s := snake(seg); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "_")
}

// uniqueName returns name, or name_2, name_3, … when taken.
func uniqueName(name string, taken map[string]bool) string {
	out := name
	for i := 2; taken[out]; i++ {
		out = name + "_" + itoa(i)
	}
	taken[out] = true
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
