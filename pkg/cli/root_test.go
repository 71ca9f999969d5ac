package cli

import (
	"slices"
	"strings"
	"testing"
)

func rootCases() []cmdCase {
	return []cmdCase{
		{name: "help", out: []string{"Declarative configuration:", "Inspecting the gateway:", "Exit codes:"}, calls: []string{}, noGolden: true},
		{name: "unknown command", args: []string{"aply"}, code: ExitFailure, flagErr: true, errOut: []string{`unknown command "aply"`, `did you mean "apply"`}},
		{name: "unknown flag", args: []string{"--bogus"}, code: ExitFailure, flagErr: true, errOut: []string{"unknown flag: --bogus"}},
		{name: "unknown output format", args: []string{"status", "-o", "jsn"}, code: ExitFailure, flagErr: true, errOut: []string{`did you mean "json"`}},
	}
}

func helpCases() []cmdCase {
	return []cmdCase{
		{name: "help of a group", args: []string{"keys"}, out: []string{"rotate", "revoke"}, calls: []string{}, noGolden: true},
		{name: "help of a command", args: []string{"keys", "rotate"}, out: []string{"--grace"}, calls: []string{}, noGolden: true},
		{name: "unknown topic", args: []string{"bogus"}, code: ExitFailure, flagErr: true, errOut: []string{`unknown command "bogus"`}},
		{name: "unknown subtopic", args: []string{"keys", "rotat"}, code: ExitFailure, flagErr: true, errOut: []string{`did you mean "rotate"`}},
		{name: "-o refused", args: []string{"-o", "json"}, code: ExitFailure, flagErr: true, errOut: []string{"prints no data"}},
	}
}

func completionCases() []cmdCase {
	return []cmdCase{
		{name: "help", out: []string{"bash", "zsh", "fish", "powershell"}, calls: []string{}, noGolden: true},
		{name: "unknown shell", args: []string{"fsh"}, code: ExitFailure, flagErr: true, errOut: []string{`did you mean "fish"`}},
		{name: "-o refused", args: []string{"bash", "-o", "yaml"}, code: ExitFailure, flagErr: true, errOut: []string{"prints no data"}},
	}
}

func completionShellCases(shell, marker string) []cmdCase {
	return []cmdCase{
		{name: "script", out: []string{marker, "stoa"}, calls: []string{}, noGolden: true},
		{name: "without descriptions", args: []string{"--no-descriptions"}, out: []string{marker}, calls: []string{}, noGolden: true},
		{name: "stray argument", args: []string{"extra"}, code: ExitFailure, flagErr: true, errOut: []string{"unknown command"}},
		{name: "-o refused", args: []string{"-o", "json"}, code: ExitFailure, flagErr: true, errOut: []string{"prints no data"}},
	}
}

// TestCompletionAsksTheFactoryClient: dynamic completions (tenants, object
// names, key ids, revisions) come through the same API client as
// commands, so the fake answers them.
func TestCompletionAsksTheFactoryClient(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		want  []string
		calls []string
	}{
		{[]string{"__complete", "get", "tools", "-n", ""}, []string{"acme", "globex"}, []string{`Objects("Tenant", "", "")`}},
		{[]string{"__complete", "get", "tool", "b"}, []string{"billing-api\ttenant acme"}, []string{`Objects("Tool", "", "")`}},
		{[]string{"__complete", "delete", "tool", "-n", "acme", ""}, []string{"billing-api", "inventory-api"}, []string{`Objects("Tool", "acme", "")`}},
		{[]string{"__complete", "keys", "rotate", ""}, []string{"k3v7q2m4x5c6b7n2\tacme/web-shop (ci)"}, []string{"Keys({Namespace: Consumer:})"}},
		{[]string{"__complete", "rollback", ""}, []string{"3\tapply by alice (uid 1000), current: initial", "2\tdelete by bob"}, []string{"Revisions(50)"}},
		{[]string{"__complete", "history", "2"}, []string{"2\tdelete by bob"}, []string{"Revisions(50)"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fa := newFake(t, cmdCase{})
			r := runCmd(t, fa, cmdCase{}, tc.args)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.errOut)
			}
			lines := strings.Split(strings.TrimSpace(r.out), "\n")
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("completion lacks %q:\n%s", w, r.out)
				}
			}
			if !slices.Equal(r.calls, tc.calls) {
				t.Errorf("calls %v, want %v", r.calls, tc.calls)
			}
		})
	}
	// An unreachable stoad completes nothing, quietly.
	fa := newFake(t, cmdCase{})
	fa.Fail("Objects", errUnreachable)
	r := runCmd(t, fa, cmdCase{}, []string{"__complete", "get", "tools", "-n", ""})
	if r.code != 0 || strings.Contains(r.out, "acme") || strings.Contains(r.errOut, "stoad") {
		t.Errorf("unreachable: exit %d, stdout %q, stderr %q", r.code, r.out, r.errOut)
	}
}

// TestRootListsEveryCommand: the root constructor is the one list of
// commands, grouped as help shows them.
func TestRootListsEveryCommand(t *testing.T) {
	groups := map[string][]string{}
	for _, c := range testRoot().Commands() {
		groups[c.GroupID] = append(groups[c.GroupID], c.Name())
	}
	want := map[string][]string{
		"config":  {"apply", "delete", "diff", "explain", "rollback", "validate"},
		"inspect": {"dashboard", "events", "get", "history", "status", "top"},
		"":        {"audit", "bundle", "completion", "context", "export", "fleet", "help", "import", "keys", "login", "logout", "mcp", "quotas", "snapshots", "version", "webhooks", "xdp"},
	}
	for g, names := range want {
		if got := groups[g]; !slices.Equal(got, names) {
			t.Errorf("group %q: %v, want %v", g, got, names)
		}
	}
}
