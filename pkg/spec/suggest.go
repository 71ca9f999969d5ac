package spec

import "strings"

// suggest returns the candidate closest to s when it is close enough to be
// a likely typo: same letters ignoring case, '-' and '_', or within an edit
// distance of about a third of the word. It returns "" otherwise.
func suggest(s string, candidates []string) string {
	norm := func(x string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(x))
	}
	ns := norm(s)
	best, bestDist := "", -1
	for _, c := range candidates {
		if c == s {
			continue
		}
		nc := norm(c)
		if nc == ns {
			return c
		}
		dist := editDistance(ns, nc)
		if bestDist < 0 || dist < bestDist {
			best, bestDist = c, dist
		}
	}
	limit := max(1, (len(ns)+2)/3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Damerau–Levenshtein (optimal string alignment)
// distance between a and b, counted in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Long words are never typos of field names; keep the cost bounded.
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
