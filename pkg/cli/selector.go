package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// labelSelector is a kubectl-style label selector: comma-separated
// requirements, all of which must hold — key=value (or key==value),
// key!=value, key (the label exists) and !key (it does not).
type labelSelector []labelRequirement

type labelOp int

const (
	opEquals labelOp = iota
	opNotEquals
	opExists
	opNotExists
)

type labelRequirement struct {
	Key, Value string
	Op         labelOp
}

// labelKey matches label keys as apply stores them: an optional DNS prefix
// and a name of letters, digits, '-', '_' and '.'.
var labelKey = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

// parseSelector reads a selector such as "team=billing,tier!=canary,!legacy".
func parseSelector(s string) (labelSelector, error) {
	var sel labelSelector
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		var r labelRequirement
		switch {
		case part == "":
			return nil, fmt.Errorf("selector %q: empty requirement (two commas?)", s)
		case strings.Contains(part, "!="):
			r.Key, r.Value, _ = strings.Cut(part, "!=")
			r.Op = opNotEquals
		case strings.Contains(part, "=="):
			r.Key, r.Value, _ = strings.Cut(part, "==")
		case strings.Contains(part, "="):
			r.Key, r.Value, _ = strings.Cut(part, "=")
		case strings.HasPrefix(part, "!"):
			r.Key, r.Op = strings.TrimSpace(part[1:]), opNotExists
		default:
			r.Key, r.Op = part, opExists
		}
		r.Key, r.Value = strings.TrimSpace(r.Key), strings.TrimSpace(r.Value)
		if !labelKey.MatchString(r.Key) {
			return nil, fmt.Errorf("selector %q: %q is not a label key (want key=value, key!=value, key or !key)", s, r.Key)
		}
		if strings.ContainsAny(r.Value, "=!") {
			return nil, fmt.Errorf("selector %q: value %q may not contain '=' or '!'", s, r.Value)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// Matches reports whether labels satisfy every requirement.
func (sel labelSelector) Matches(labels map[string]string) bool {
	for _, r := range sel {
		v, ok := labels[r.Key]
		switch r.Op {
		case opEquals:
			if !ok || v != r.Value {
				return false
			}
		case opNotEquals:
			if ok && v == r.Value {
				return false
			}
		case opExists:
			if !ok {
				return false
			}
		case opNotExists:
			if ok {
				return false
			}
		}
	}
	return true
}

// equalities returns the selector as a map of required labels, or an
// error when it uses anything but key=value (stoad's prune scope matches
// equality only).
func (sel labelSelector) equalities(flag string) (map[string]string, error) {
	if len(sel) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, r := range sel {
		if r.Op != opEquals {
			return nil, fmt.Errorf("%s %s: only key=value requirements are supported here", flag, sel)
		}
		m[r.Key] = r.Value
	}
	return m, nil
}

func (sel labelSelector) String() string {
	parts := make([]string, len(sel))
	for i, r := range sel {
		switch r.Op {
		case opEquals:
			parts[i] = r.Key + "=" + r.Value
		case opNotEquals:
			parts[i] = r.Key + "!=" + r.Value
		case opExists:
			parts[i] = r.Key
		case opNotExists:
			parts[i] = "!" + r.Key
		}
	}
	return strings.Join(parts, ",")
}

// selectorValue is the -l flag: repeatable, each value a selector; all
// requirements must hold.
type selectorValue struct {
	sel *labelSelector
}

func (v *selectorValue) String() string {
	if v.sel == nil {
		return ""
	}
	return v.sel.String()
}

func (v *selectorValue) Type() string { return "selector" }

func (v *selectorValue) Set(s string) error {
	sel, err := parseSelector(s)
	if err != nil {
		return err
	}
	*v.sel = append(*v.sel, sel...)
	return nil
}

// labelsOf returns a sorted "k=v,…" rendering of labels (for tables).
func labelsOf(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + labels[k]
	}
	return strings.Join(keys, ",")
}
