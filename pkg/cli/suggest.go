package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// Unknown input is an error with a did-you-mean, never a silent fallback:
// unknown subcommands (also of commands that only group others), unknown
// kinds and unknown values of enum flags all exit 1 and name the closest
// valid choice.

// suggest returns the candidate closest to s when it is close enough to be
// a typo (case, '-' and '_' ignored; a prefix; or an edit distance of about
// a third of the word), else "".
func suggest(s string, candidates []string) string {
	norm := func(x string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(x))
	}
	ns := norm(s)
	if ns == "" {
		return ""
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		nc := norm(c)
		if nc == ns {
			return c
		}
		if len(ns) >= 2 && strings.HasPrefix(nc, ns) {
			return c
		}
		if d := editDistance(ns, nc); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > max(1, (len(ns)+2)/3) {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
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

// didYouMean is `; did you mean "x"?` when s is close to a candidate.
func didYouMean(s string, candidates []string) string {
	if m := suggest(s, candidates); m != "" {
		return fmt.Sprintf("; did you mean %q?", m)
	}
	return ""
}

// enumValue is a string flag that accepts only the given values; a wrong
// value fails flag parsing with the valid ones and a did-you-mean.
type enumValue struct {
	target *string
	values []string
}

func newEnum(target *string, def string, values ...string) *enumValue {
	*target = def
	return &enumValue{target: target, values: values}
}

func (e *enumValue) String() string { return *e.target }
func (e *enumValue) Type() string   { return "string" }

func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.values, s) {
		return fmt.Errorf("%q is not one of %s%s", s, strings.Join(e.values, ", "), didYouMean(s, e.values))
	}
	*e.target = s
	return nil
}

// enumFlag binds an enum flag and completes its values.
func enumFlag(cmd *cobra.Command, target *string, name, short, def, usage string, values ...string) {
	cmd.Flags().VarP(newEnum(target, def, values...), name, short, usage)
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// unknownSubcommand is the RunE of commands that only group others (keys,
// xdp, import, …): without arguments it prints the help, as before; an
// argument is an unknown command — exit 1 with a did-you-mean — rather than
// help and exit 0, which let typos in scripts pass unnoticed.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() || c.Name() == "help" {
			names = append(names, c.Name())
			names = append(names, c.Aliases...)
		}
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	} else {
		msg += didYouMean(args[0], names)
	}
	return &hintError{err: fmt.Errorf("%s", msg), hint: "list the commands with: " + cmd.CommandPath() + " --help"}
}

// guardGroups gives every command that only groups others the
// unknown-subcommand behaviour (cobra prints help and exits 0 for them).
func guardGroups(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.RunE = unknownSubcommand
		if !strings.Contains(c.Use, " ") {
			c.Use += " COMMAND" // runnable now: say what the usage line expects
		}
		// unknownSubcommand checks the arguments (cobra's NoArgs, which
		// its completion command uses, would say less).
		c.Args = cobra.ArbitraryArgs
	} else if c.HasSubCommands() && c.Args != nil {
		// A command that runs and also has subcommands (audit, audit
		// verify): arguments it refuses read as an unknown subcommand.
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				if len(args) > 0 {
					return unknownSubcommand(cmd, args)
				}
				return err
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		guardGroups(sub)
	}
}

// newHelpCmd is `stoa help [command]`; an unknown topic is an error (cobra's
// own prints "Unknown help topic" and exits 0).
func newHelpCmd() *cobra.Command {
	return noOutput(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Args:  cobra.ArbitraryArgs, // checked in RunE: unknown topics fail
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			var out []string
			cmd, _, e := c.Root().Find(args)
			if e != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			if cmd == nil {
				cmd = c.Root()
			}
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() || sub == c {
					if strings.HasPrefix(sub.Name(), toComplete) {
						out = append(out, fmt.Sprintf("%s\t%s", sub.Name(), sub.Short))
					}
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			root := c.Root()
			cmd, rest, err := root.Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 && cmd.HasSubCommands() {
				return unknownSubcommand(cmd, rest)
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	})
}
