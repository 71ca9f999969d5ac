package cli

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// StatusOptions are the inputs of `stoa status`.
type StatusOptions struct{ F *Factory }

func newStatusCmd(f *Factory) *cobra.Command {
	o := &StatusOptions{F: f}
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon: context, version, uptime, revision, objects, listeners, components",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
}

// Run prints the status.
func (o *StatusOptions) Run(ctx context.Context) error {
	s, err := o.F.Client().Status(ctx)
	if err != nil {
		return err
	}
	cur := o.F.contextInfo()
	if done, err := printed(o.F, StatusOutput{Status: s, Context: cur}); done {
		return err
	}
	w := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "context:\t%s\n", cur)
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "WARNING:\t%s\n", warn)
	}
	if s.Role != "" {
		fmt.Fprintf(w, "role:\t%s\n", s.Role)
	}
	fmt.Fprintf(w, "stoad:\t%s", s.Version)
	if s.Commit != "" {
		fmt.Fprintf(w, " (%s)", s.Commit)
	}
	if s.PID != 0 {
		fmt.Fprintf(w, ", pid %d", s.PID)
	}
	fmt.Fprintf(w, ", up %s\n", s.Uptime)
	fmt.Fprintf(w, "revision:\t%d\n", s.Revision)
	if s.StateDir != "" {
		fmt.Fprintf(w, "state:\t%s\n", s.StateDir)
	}
	if s.SpecsDir != "" {
		fmt.Fprintf(w, "gitops:\t%s\n", s.SpecsDir)
		if g := s.GitOps; g != nil {
			if !g.LastAppliedAt.IsZero() {
				fmt.Fprintf(w, "\t  last applied %s (revision %d)\n", g.LastAppliedAt.Local().Format(time.DateTime), g.LastRevision)
			}
			// A failure newer than the last success is the current state:
			// the directory is not what is live.
			if !g.LastErrorAt.IsZero() && g.LastErrorAt.After(g.LastAppliedAt) {
				lines := strings.Split(strings.TrimSpace(g.LastError), "\n")
				fmt.Fprintf(w, "\t  LAST APPLY FAILED %s: %s\n", g.LastErrorAt.Local().Format(time.DateTime), lines[0])
				for _, l := range lines[1:] {
					fmt.Fprintf(w, "\t    %s\n", l)
				}
			}
		}
	}
	printSource(w, s)
	var parts []string
	for _, k := range spec.Kinds {
		if n := s.Objects[string(k)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none (apply specs with: stoa apply -f DIR)"}
	}
	fmt.Fprintf(w, "objects:\t%s\n", strings.Join(parts, ", "))
	for i, l := range s.Listeners {
		label := ""
		if i == 0 {
			label = "listeners:"
		}
		fmt.Fprintf(w, "%s\t%-10s %s\n", label, l.Name, l.Address)
	}
	for i, c := range s.Components {
		label := ""
		if i == 0 {
			label = "components:"
		}
		fmt.Fprintf(w, "%s\t%-10s %-8s %s\n", label, c.Name, c.State, c.Detail)
		keys := make([]string, 0, len(c.Data))
		for k := range c.Data {
			if k != "address" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "\t  %-12s %s\n", k+":", dataValue(c.Data[k]))
		}
	}
	return w.Flush()
}

// StatusOutput is what `stoa status -o json` prints: the daemon's status
// and the context it was read through.
type StatusOutput struct {
	*api.Status
	Context ContextInfo `json:"context"`
}

// dataValue renders one value of a component's Data as decoded from JSON:
// whole numbers without exponent, lists comma-separated, objects as sorted
// key=value pairs.
func dataValue(v any) string {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = dataValue(e)
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + dataValue(v[k])
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprint(v)
}

// VersionOptions are the inputs of `stoa version`.
type VersionOptions struct{ F *Factory }

func newVersionCmd(f *Factory) *cobra.Command {
	o := &VersionOptions{F: f}
	return &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's and the daemon's versions, and the context asked",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
}

// Versions is what `stoa version -o json` prints; Server is absent when
// stoad is not reachable.
type Versions struct {
	Client VersionInfo  `json:"client"`
	Server *VersionInfo `json:"server,omitempty"`
	// Context is where the server was asked.
	Context ContextInfo `json:"context"`
}

// VersionInfo is one binary's version.
type VersionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
}

// Run prints versions; an unreachable daemon is reported, not an error.
func (o *VersionOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := o.F.Client().Status(ctx)
	cur := o.F.contextInfo()
	if o.F.structured() {
		out := Versions{Client: VersionInfo{Version: version.Version, Commit: version.Commit, Date: version.Date}, Context: cur}
		if err == nil {
			out.Server = &VersionInfo{Version: s.Version, Commit: s.Commit}
		} else {
			fmt.Fprintf(o.F.IO.ErrOut, "stoad: not reachable (%v)\n", err)
		}
		return writeObject(o.F, out)
	}
	fmt.Fprintln(o.F.IO.Out, version.String("stoa"))
	if err == nil {
		fmt.Fprintf(o.F.IO.Out, "stoad %s", s.Version)
		if s.Commit != "" {
			fmt.Fprintf(o.F.IO.Out, " (%s)", s.Commit)
		}
		fmt.Fprintln(o.F.IO.Out)
	} else {
		fmt.Fprintf(o.F.IO.ErrOut, "stoad: not reachable (%v)\n", err)
	}
	fmt.Fprintf(o.F.IO.Out, "context: %s\n", cur)
	return nil
}

// EventsOptions are the inputs of `stoa events`.
type EventsOptions struct {
	F      *Factory
	Follow bool
	Last   int
	Since  int64
	Type   string
}

func newEventsCmd(f *Factory) *cobra.Command {
	o := &EventsOptions{F: f}
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print daemon events (applies, rollbacks, reloads, blocks, errors)",
		Long: `Events prints stoad's recent events, oldest first. -o json and -o yaml print
them as one EventList document; -o ndjson one JSON line per event. With
--follow it keeps printing new events as they happen: one JSON line each for
-o json and -o ndjson.`,
		Example: "  stoa events\n  stoa events --last 3 -o json\n  stoa events --follow -o json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().IntVar(&o.Last, "last", 20, "start with the last N events")
	cmd.Flags().Int64Var(&o.Since, "since", 0, "start after this event sequence number")
	cmd.Flags().StringVar(&o.Type, "type", "", "only events whose type starts with this prefix")
	return cmd
}

// Run prints events.
func (o *EventsOptions) Run(ctx context.Context) error {
	opts := client.EventsOptions{Follow: o.Follow, Since: o.Since, Last: o.Last}
	if o.Since > 0 {
		opts.Last = 0
	}
	var (
		list   []api.Event
		stream = &streamWriter{f: o.F}
	)
	err := o.F.Client().Events(ctx, opts, func(e api.Event) error {
		if o.Type != "" && !strings.HasPrefix(e.Type, o.Type) {
			return nil
		}
		switch {
		case o.F.structured() && o.Follow:
			return stream.write(e)
		case o.F.structured():
			list = append(list, e)
			return nil
		}
		tenant := ""
		if e.Tenant != "" {
			tenant = " [" + e.Tenant + "]"
		}
		_, err := fmt.Fprintf(o.F.IO.Out, "%s  %-18s%s %s\n", e.Time.Local().Format(time.DateTime), e.Type, tenant, e.Message)
		return err
	})
	if err != nil || !o.F.structured() || o.Follow {
		return err
	}
	return writeList(o.F, "EventList", nil, list)
}
