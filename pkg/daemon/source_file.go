package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// fileSource serves a signed bundle file (stoad --bundle FILE
// --bundle-key cosign.pub): for air-gapped sites and pipelines that
// publish bundles as artifacts. The file and its signature are verified
// (digest, signature, canonical form, revision never backwards) before
// anything is prepared; a refused file is an event and a metric, and the
// served configuration stays. The last good bundle is kept on disk like a
// data plane's, so a restart serves it even if the file was damaged
// meanwhile, and an older file is refused across restarts too.
//
// The file is polled (stat every --bundle-poll), not watched with
// fsnotify: publishers replace files by rename, Kubernetes swaps a
// ConfigMap's symlinked directory, and NFS or FUSE mounts deliver no
// inotify events at all — a watch on the file itself misses the first
// two (the watched inode is gone) and all of the third. Stat is cheap,
// needs no dependency, and behaves the same everywhere; SIGHUP reads at
// once. A change is read once the pair has stayed the same for one poll,
// so a bundle copied before its signature (or the reverse) is not
// refused half-written.
type fileSource struct {
	d        *Daemon
	path     string
	sigPath  string
	dir      string
	store    *bundle.Store // the last good bundle, in dir
	verifier signature.Verifier
	poll     time.Duration
	kick     chan struct{}

	refusals      *prometheus.CounterVec
	applied       *prometheus.CounterVec
	applyFailures prometheus.Counter
	revision      prometheus.Gauge

	// checkMu serialises reading and serving the file; serving, read
	// and pending are its.
	checkMu sync.Mutex
	serving *bundle.Bundle
	read    stamp // the pair last read
	pending stamp // a change seen once, read when seen again

	mu sync.Mutex // guards st, for status while a revision is prepared
	st api.BundleStatus
}

func newFileSource(d *Daemon, sc *SourceConfig) (*fileSource, error) {
	v, err := bundle.LoadVerifierFile(sc.BundleKey)
	if err != nil {
		return nil, withHint(fmt.Errorf("--bundle-key: %w", err))
	}
	path, err := filepath.Abs(sc.Bundle)
	if err != nil {
		return nil, fmt.Errorf("--bundle: %w", err)
	}
	sigPath, err := filepath.Abs(sc.signature())
	if err != nil {
		return nil, fmt.Errorf("--bundle-signature: %w", err)
	}
	f := &fileSource{
		d: d, path: path, sigPath: sigPath, dir: filepath.Join(sc.dir(d.cfg.StateDir), "bundles"),
		store:    bundle.NewStore(filepath.Join(sc.dir(d.cfg.StateDir), "bundles")),
		verifier: v, poll: sc.BundlePoll, kick: make(chan struct{}, 1),
		// The names a data plane's Syncer uses: one dashboard for both.
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_bundle_refusals_total",
			Help: "Bundles refused before anything was prepared, by reason (signature, digest, stale, conflict, malformed)."}, []string{"reason"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_bundles_applied_total",
			Help: "Revisions served, by how they arrived (file, disk)."}, []string{"via"}),
		applyFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "stoa_fleet_apply_failures_total",
			Help: "Verified revisions the daemon failed to prepare (the previous one stays served)."}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stoa_fleet_revision", Help: "The revision served."}),
	}
	if f.poll <= 0 {
		f.poll = 2 * time.Second
	}
	f.st = api.BundleStatus{File: path, Signature: sigPath}
	d.metrics.MustRegister(f.refusals, f.applied, f.applyFailures, f.revision)
	return f, nil
}

func (f *fileSource) start(ctx context.Context, _ func(error)) func() {
	// Before the LocalAPI says ready: the last good bundle, then the file.
	f.loadLastGood()
	f.check(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(f.poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.check(false)
			case <-f.kick:
				f.check(true)
			}
		}
	}()
	return func() { <-done }
}

func (f *fileSource) reload() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *fileSource) status(s *api.Status) {
	f.mu.Lock()
	st := f.st
	f.mu.Unlock()
	if st.LastRefusal != nil {
		r := *st.LastRefusal
		st.LastRefusal = &r
	}
	s.Bundle = &st
}

func (f *fileSource) readOnly() *api.Error {
	return &api.Error{Code: api.CodeForbidden,
		Message: fmt.Sprintf("this stoad serves the signed bundle %s; its configuration comes from that file; change it there", f.path),
		Hint:    fmt.Sprintf("build and sign a new revision (stoa bundle build -f DIR --revision N --out %s; stoa bundle sign %s --key cosign.key) and replace the file; stoad reads it within %s, or at once on SIGHUP", f.path, f.path, f.poll)}
}

// loadLastGood serves the bundle kept on disk (verified again) until the
// file is read.
func (f *fileSource) loadLastGood() {
	b, sig, err := f.store.Load(f.verifier)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	f.checkMu.Lock()
	defer f.checkMu.Unlock()
	if err != nil {
		f.refuse(err, "disk", 0, bundle.Digest{})
		return
	}
	f.apply(b, sig, api.OriginDisk)
}

// stamp identifies the contents of the bundle and signature files
// without reading them.
type stamp struct {
	ok       bool
	bundle   fileStamp
	sig      fileStamp
	errorMsg string
}

type fileStamp struct {
	ino, size int64
	mtime     time.Time
}

func statFile(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = int64(st.Ino)
	}
	return s, nil
}

func (f *fileSource) stamp() stamp {
	b, err := statFile(f.path)
	if err != nil {
		return stamp{errorMsg: err.Error()}
	}
	s, err := statFile(f.sigPath)
	if err != nil {
		return stamp{errorMsg: err.Error()}
	}
	return stamp{ok: true, bundle: b, sig: s}
}

// check reads the pair if it changed and has settled (or force), and
// serves it if it verifies.
func (f *fileSource) check(force bool) {
	f.checkMu.Lock()
	defer f.checkMu.Unlock()
	cur := f.stamp()
	if !force {
		if cur == f.read {
			f.pending = stamp{}
			return
		}
		if cur != f.pending {
			f.pending = cur // changed: read it once it stays so for a poll
			return
		}
	}
	f.read, f.pending = cur, stamp{}
	f.mu.Lock()
	f.st.LastCheck = time.Now().UTC()
	f.mu.Unlock()
	raw, err := os.ReadFile(f.path)
	var sig []byte
	if err == nil {
		sig, err = os.ReadFile(f.sigPath)
	}
	if err != nil {
		f.fail(fmt.Sprintf("read bundle: %v", err), "publish the bundle and its signature (stoa bundle sign writes BUNDLE.sig), or name the signature with --bundle-signature")
		return
	}
	b, err := bundle.Open(raw, sig, f.verifier, bundle.OpenOptions{Serving: f.serving})
	if err != nil {
		var rev int64
		var re *bundle.RevisionError
		if errors.As(err, &re) {
			rev = re.Got
		}
		f.refuse(err, "file", rev, bundle.Digest(sha256.Sum256(raw)))
		return
	}
	if f.serving != nil && b.Digest() == f.serving.Digest() {
		f.mu.Lock()
		f.st.LastError, f.st.Hint = "", ""
		f.mu.Unlock()
		return
	}
	f.apply(b, sig, api.OriginFile)
}

// servingRevision is the revision served (0: none). Called with checkMu
// held.
func (f *fileSource) servingRevision() int64 {
	if f.serving == nil {
		return 0
	}
	return f.serving.Revision()
}

// apply serves a verified bundle and keeps it as the last good one.
// Called with checkMu held.
func (f *fileSource) apply(b *bundle.Bundle, sig []byte, origin string) {
	src := f.path
	if origin == api.OriginDisk {
		src = "the last good bundle in " + f.dir
	}
	serving := f.servingRevision()
	if err := f.d.applyBundle(b.Revision(), b.Objects(), "bundle:"+f.path, fmt.Sprintf("revision %d from %s (%s)", b.Revision(), src, b.Digest())); err != nil {
		f.applyFailures.Inc()
		f.d.log.Error("bundle: revision failed to apply; serving the previous one", "from", src, "revision", b.Revision(), "serving", serving, "err", err)
		f.d.events.Emit("fleet.bundle.apply_failed", "", fmt.Sprintf("revision %d of %s failed to apply: %v; still serving revision %d", b.Revision(), src, err, serving),
			map[string]any{"revision": b.Revision(), "digest": b.Digest().String(), "serving": serving, "source": origin})
		f.fail(fmt.Sprintf("apply revision %d: %v", b.Revision(), err), "fix the bundle's specs (stoa validate), then build, sign and publish it again")
		return
	}
	f.serving = b
	var keepErr error
	if origin != api.OriginDisk {
		keepErr = f.store.Write(b, sig)
	}
	f.mu.Lock()
	f.st.Revision, f.st.Digest, f.st.Origin, f.st.LastLoad = b.Revision(), b.Digest().String(), origin, time.Now().UTC()
	f.st.LastError, f.st.Hint = "", ""
	if origin != api.OriginDisk {
		f.st.LastRefusal = nil
	}
	f.mu.Unlock()
	if keepErr != nil {
		f.fail(fmt.Sprintf("keep the last good bundle: %v", keepErr), "check that "+f.dir+" is writable; the revision is served, but a restart would serve an older one")
	}
	f.applied.WithLabelValues(origin).Inc()
	f.revision.Set(float64(b.Revision()))
	f.d.log.Info("bundle: serving a new revision", "revision", b.Revision(), "digest", b.Digest(), "from", src)
	f.d.events.Emit("fleet.bundle.applied", "", fmt.Sprintf("serving revision %d from %s", b.Revision(), src),
		map[string]any{"revision": b.Revision(), "digest": b.Digest().String(), "via": origin})
}

// refuse records a bundle that failed verification; what is served does
// not change. Called with checkMu held.
func (f *fileSource) refuse(err error, from string, rev int64, digest bundle.Digest) {
	reason := bundle.Reason(err)
	if reason == "" {
		reason = "malformed"
	}
	hint := ""
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		hint = h.Hint()
	}
	src := f.path
	if from == "disk" {
		src = "the last good bundle in " + f.dir
	}
	ds := ""
	if !digest.IsZero() {
		ds = digest.String()
	}
	serving := f.servingRevision()
	f.refusals.WithLabelValues(reason).Inc()
	f.mu.Lock()
	f.st.LastRefusal = &fleet.Refusal{Reason: reason, Revision: rev, Digest: ds, Message: err.Error(), Hint: hint, At: time.Now().UTC()}
	f.st.Hint = fmt.Sprintf("serving revision %d; %s was refused (%s): publish a newer bundle signed with the pinned key", serving, src, reason)
	f.mu.Unlock()
	f.d.log.Error("bundle: refused; serving the previous one", "from", src, "reason", reason, "serving", serving, "err", err)
	f.d.events.Emit("fleet.bundle.refused", "", fmt.Sprintf("refused %s (%s): %v; still serving revision %d", src, reason, err, serving),
		map[string]any{"reason": reason, "revision": rev, "digest": ds, "serving": serving, "hint": hint, "source": from})
}

// fail records an error that is not a refusal (a missing file, an apply
// or disk failure).
func (f *fileSource) fail(msg, hint string) {
	f.mu.Lock()
	same := f.st.LastError == msg
	f.st.LastError, f.st.Hint = msg, hint
	f.mu.Unlock()
	if !same {
		f.d.log.Error("bundle: "+msg, "file", f.path)
	}
}
