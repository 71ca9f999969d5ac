package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/localapi"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

// GitOps mode: --specs DIR is applied at start, whenever its contents change
// (polled every --specs-poll) and on SIGHUP. The directory is the source of
// truth for the namespaces it covers: objects it no longer contains are
// pruned there (like `stoa apply --prune`). A broken directory never
// replaces the last good revision; the error is logged and sent as an event.

// specsFingerprint hashes the names and contents of every spec file in dir.
func specsFingerprint(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != dir && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", path)
		_, err = io.Copy(h, f)
		return err
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// gitopsGuard refuses a change made over the LocalAPI while the daemon
// runs in GitOps mode: the directory is the source of truth, and a change
// made elsewhere would silently be overwritten by its next change (or
// SIGHUP). force (--force) overrides it; dry runs (diff) always pass.
func (d *Daemon) gitopsGuard(force, dryRun bool) error {
	if err := d.readOnlyGuard(); err != nil {
		return err
	}
	dir := d.cfg.SpecsDir
	if dir == "" || dryRun || force {
		return nil
	}
	return &api.Error{Code: api.CodeConflict,
		Message: fmt.Sprintf("stoad is running in GitOps mode from %s; change the files there, or pass --force", dir),
		Hint:    fmt.Sprintf("a change forced here lasts only until the files in %s change or stoad gets SIGHUP", dir)}
}

// gitopsForced notes a forced change in its revision message.
func gitopsForced(d *Daemon, force bool, msg string) string {
	if d.cfg.SpecsDir == "" || !force {
		return msg
	}
	note := "forced while in GitOps mode from " + d.cfg.SpecsDir
	if msg == "" {
		return note
	}
	return msg + " (" + note + ")"
}

// noteSync records the outcome of a sync for `stoa status`.
func (d *Daemon) noteSync(at time.Time, rev int64, err error) {
	st := api.GitOpsStatus{Dir: d.cfg.SpecsDir}
	if old := d.gitops.Load(); old != nil {
		st = *old
	}
	st.LastAttemptAt = at
	if err != nil {
		st.LastErrorAt, st.LastError = at, err.Error()
	} else {
		st.LastAppliedAt, st.LastRevision = at, rev
	}
	d.gitops.Store(&st)
}

// syncSpecs applies the specs directory if it changed (or force).
func (d *Daemon) syncSpecs(ctx context.Context, force bool) (err error) {
	d.specsMu.Lock()
	defer d.specsMu.Unlock()
	dir := d.cfg.SpecsDir
	now := time.Now().UTC()
	fp, err := specsFingerprint(dir)
	if err != nil {
		err = fmt.Errorf("read specs dir: %w", err)
		d.noteSync(now, 0, err)
		return err
	}
	if !force && fp == d.specsHash {
		return nil
	}
	defer func() { d.noteSync(now, d.Live().Revision, err) }()
	// The same loader as the CLI's, without the network: the directory
	// alone is the source of truth.
	res, err := specload.Load(ctx, []string{dir}, specload.Options{References: specload.ReferencesLive})
	if err != nil {
		d.specsHash = fp
		return err
	}
	objs, diags := res.Objects, res.Diagnostics
	if diags.HasErrors() {
		d.specsHash = fp // do not retry the same broken content every poll
		d.events.Emit("error", "", fmt.Sprintf("gitops: specs in %s are invalid; keeping revision %d", dir, d.Live().Revision),
			map[string]any{"diagnostics": diags.Error()})
		return fmt.Errorf("specs invalid:\n%s", diags.Error())
	}
	scope := specload.PruneScope(objs, false, nil)
	resp, err := d.apply(&api.ApplyRequest{Objects: objs, Prune: true, Scope: scope, Message: "gitops: " + dir}, localapi.Caller{Actor: "gitops", ActorKind: "gitops"})
	if err != nil {
		d.specsHash = fp
		d.events.Emit("error", "", fmt.Sprintf("gitops: apply of %s failed: %v", dir, err), nil)
		if ae, ok := err.(*api.Error); ok && len(ae.Diagnostics) > 0 {
			spec.Locate(objs, ae.Diagnostics)
			return fmt.Errorf("%s:\n%s", ae.Message, ae.Diagnostics.Error())
		}
		return err
	}
	d.specsHash = fp
	if resp.Created {
		d.log.Info("gitops: applied", "dir", dir, "revision", resp.Revision, "summary", resp.Summary.String())
	}
	return nil
}

func (d *Daemon) watchSpecs(ctx context.Context) {
	t := time.NewTicker(d.cfg.SpecsPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.syncSpecs(ctx, false); err != nil {
				d.log.Error("gitops: apply failed; serving the last good revision", "dir", d.cfg.SpecsDir, "err", err)
			}
		}
	}
}
