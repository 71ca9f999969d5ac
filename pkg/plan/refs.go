package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Reference is one field of an object that names another object: a
// ToolSet's tool, a Subscription's consumer, plan, tool or toolSet, and
// every tenant-scoped object's tenant (its namespace).
type Reference struct {
	From spec.Ref `json:"from"`
	Path string   `json:"path"` // the field in From, e.g. spec.tools[1]
	To   spec.Ref `json:"to"`
}

// References lists the references o makes, in field order. They are the
// references spec.Validate resolves (a test keeps the two in step).
func References(o *spec.Object) []Reference {
	from := o.Ref()
	ns := o.Metadata.Namespace
	var out []Reference
	add := func(path string, k spec.Kind, name string) {
		if name == "" {
			return
		}
		to := spec.Ref{Kind: k, Name: name}
		if k.Namespaced() {
			to.Namespace = ns
		}
		out = append(out, Reference{From: from, Path: path, To: to})
	}
	if o.Kind.Namespaced() {
		add("metadata.namespace", spec.KindTenant, ns)
	}
	switch s := o.Spec.(type) {
	case *spec.ToolSetSpec:
		seen := make(map[string]bool, len(s.Tools))
		for i, t := range s.Tools {
			if !seen[t] {
				add(fmt.Sprintf("spec.tools[%d]", i), spec.KindTool, t)
			}
			seen[t] = true
		}
	case *spec.SubscriptionSpec:
		add("spec.consumer", spec.KindConsumer, s.Consumer)
		add("spec.plan", spec.KindPlan, s.Plan)
		add("spec.tool", spec.KindTool, s.Tool)
		add("spec.toolSet", spec.KindToolSet, s.ToolSet)
	}
	return out
}

// Referrers returns the references that live objects outside deleting
// make to objects in deleting: what would dangle if only deleting went.
// They are ordered by referrer (dependency order), then field.
func Referrers(live []*spec.Object, deleting []spec.Ref) []Reference {
	gone := make(map[spec.Ref]bool, len(deleting))
	for _, r := range deleting {
		gone[r] = true
	}
	var out []Reference
	for _, o := range live {
		if gone[o.Ref()] {
			continue
		}
		for _, ref := range References(o) {
			if gone[ref.To] {
				out = append(out, ref)
			}
		}
	}
	sortReferences(out)
	return out
}

// Cascade returns deleting together with every live object that refers to
// one of them, directly or through other referrers (deleting a Tenant
// takes everything in it; a Tool its ToolSets and the Subscriptions to
// those), in reverse dependency order: the order deletes are applied.
// Refs in deleting that are not live are kept as given.
func Cascade(live []*spec.Object, deleting []spec.Ref) []spec.Ref {
	referrers := map[spec.Ref][]spec.Ref{} // target → objects naming it
	for _, o := range live {
		for _, ref := range References(o) {
			referrers[ref.To] = append(referrers[ref.To], ref.From)
		}
	}
	seen := make(map[spec.Ref]bool, len(deleting))
	queue := make([]spec.Ref, 0, len(deleting))
	for _, r := range deleting {
		if !seen[r] {
			seen[r] = true
			queue = append(queue, r)
		}
	}
	for i := 0; i < len(queue); i++ {
		for _, from := range referrers[queue[i]] {
			if !seen[from] {
				seen[from] = true
				queue = append(queue, from)
			}
		}
	}
	sort.Slice(queue, func(i, j int) bool { return queue[j].Less(queue[i]) })
	return queue
}

func sortReferences(refs []Reference) {
	sort.SliceStable(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if a.From != b.From {
			return a.From.Less(b.From)
		}
		if a.To != b.To {
			return a.To.Less(b.To)
		}
		return a.Path < b.Path
	})
}

// maxListedReferrers bounds the references a refusal lists; the rest are
// counted (a Tenant can have thousands of objects).
const maxListedReferrers = 20

// ReferrersMessage explains why a deletion cannot go alone: which objects
// still refer to what it deletes, each by reference and field. refs come
// from Referrers and must not be empty.
func ReferrersMessage(refs []Reference) string {
	targets := map[spec.Ref]bool{}
	from := map[spec.Ref]bool{}
	var named []spec.Ref
	for _, r := range refs {
		if !targets[r.To] {
			named = append(named, r.To)
		}
		targets[r.To] = true
		from[r.From] = true
	}
	sort.Slice(named, func(i, j int) bool { return named[i].Less(named[j]) })
	what := fmt.Sprintf("%d objects", len(named))
	if len(named) <= 3 {
		s := make([]string, len(named))
		for i, r := range named {
			s[i] = r.String()
		}
		what = strings.Join(s, ", ")
	}
	pronoun := "it"
	if len(targets) > 1 {
		pronoun = "them"
	}
	verb := "objects still refer to"
	if len(from) == 1 {
		verb = "object still refers to"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "delete %s: %d %s %s", what, len(from), verb, pronoun)
	width := 0
	for i, r := range refs {
		if i < maxListedReferrers {
			width = max(width, len(r.From.String()))
		}
	}
	for i, r := range refs {
		if i == maxListedReferrers {
			fmt.Fprintf(&b, "\n  … and %d more", len(refs)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %-*s  %s", width, r.From, r.Path)
		if len(targets) > 1 {
			fmt.Fprintf(&b, " → %s", r.To)
		}
	}
	return b.String()
}
