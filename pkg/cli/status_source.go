package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// printSource writes where a read-only stoad's configuration comes from:
// its control plane (stoad --join) or its bundle file (stoad --bundle).
// w is the status table's tabwriter.
func printSource(w io.Writer, s *api.Status) {
	if f := s.Fleet; f != nil {
		as := ""
		if f.Name != "" {
			as = " as data plane " + f.Name
		}
		fmt.Fprintf(w, "source:\tcontrol plane %s%s\n", f.ControlPlane, as)
		fmt.Fprintf(w, "\t  state        %s since %s\n", f.State, at(f.Since))
		fmt.Fprintf(w, "\t  serving      %s\n", served(f.Revision, f.Digest, f.Origin))
		lag := fmt.Sprintf("%d", f.Lag)
		if f.ControlPlaneRevision > 0 {
			lag += fmt.Sprintf(" (control plane at revision %d)", f.ControlPlaneRevision)
		}
		fmt.Fprintf(w, "\t  lag          %s\n", lag)
		fmt.Fprintf(w, "\t  last sync    %s\n", at(f.LastSync))
		fmt.Fprintf(w, "\t  last contact %s\n", at(f.LastContact))
		if !f.CertificateExpires.IsZero() {
			fmt.Fprintf(w, "\t  certificate  expires %s\n", at(f.CertificateExpires))
		}
		printRefusal(w, f.LastRefusal)
		if f.LastError != "" {
			fmt.Fprintf(w, "\t  LAST ERROR   %s\n", f.LastError)
		}
		if f.Hint != "" {
			fmt.Fprintf(w, "\t  hint         %s\n", f.Hint)
		}
	}
	if b := s.Bundle; b != nil {
		fmt.Fprintf(w, "source:\tbundle file %s (signature %s)\n", b.File, b.Signature)
		fmt.Fprintf(w, "\t  serving      %s\n", served(b.Revision, b.Digest, b.Origin))
		fmt.Fprintf(w, "\t  last load    %s\n", at(b.LastLoad))
		fmt.Fprintf(w, "\t  last check   %s\n", at(b.LastCheck))
		printRefusal(w, b.LastRefusal)
		if b.LastError != "" {
			fmt.Fprintf(w, "\t  LAST ERROR   %s\n", b.LastError)
		}
		if b.Hint != "" {
			fmt.Fprintf(w, "\t  hint         %s\n", b.Hint)
		}
	}
}

// served is "revision 42 (sha256:…) from control-plane", or nothing yet.
func served(rev int64, digest, origin string) string {
	if rev == 0 && digest == "" {
		return "nothing yet"
	}
	s := fmt.Sprintf("revision %d", rev)
	if digest != "" {
		s += " (" + digest + ")"
	}
	if origin != "" {
		s += " from " + origin
	}
	return s
}

func printRefusal(w io.Writer, r *fleet.Refusal) {
	if r == nil {
		return
	}
	what := r.Reason
	if r.Revision != 0 {
		what = fmt.Sprintf("revision %d, %s", r.Revision, r.Reason)
	}
	fmt.Fprintf(w, "\t  LAST REFUSAL %s (%s): %s\n", at(r.At), what, r.Message)
	if r.Hint != "" {
		fmt.Fprintf(w, "\t               hint: %s\n", r.Hint)
	}
}

// at is a time in local time, or "never".
func at(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.DateTime)
}
