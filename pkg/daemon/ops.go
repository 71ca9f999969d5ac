package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// registerMetrics adds the daemon-level metrics: build info, the live
// revision, Go runtime and process collectors.
func (d *Daemon) registerMetrics() {
	d.metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stoa_config_revision", Help: "The live configuration revision.",
		}, func() float64 { return float64(d.Live().Revision) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stoa_build_info", Help: "Build information; always 1.",
			ConstLabels: prometheus.Labels{"version": version.Version, "commit": version.Commit, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stoa_objects", Help: "Number of live objects.",
		}, func() float64 { return float64(len(d.Live().Objects)) }),
	)
}

// metricsHandler serves the registry in the exposition format the
// scraper asks for.
func (d *Daemon) metricsHandler() http.Handler {
	return promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{})
}

// opsServer serves /healthz, /readyz and /metrics.
type opsServer struct {
	d   *Daemon
	ln  net.Listener
	srv *http.Server
}

func newOpsServer(d *Daemon) (*opsServer, error) {
	ln, err := net.Listen("tcp", d.cfg.OpsListen)
	if err != nil {
		return nil, fmt.Errorf("ops listener %s: %w", d.cfg.OpsListen, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if !d.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: starting or stopping")
			return
		}
		// A database store that cannot be reached makes the stoad
		// unready (a load balancer sends requests to another replica)
		// until it answers again; no restart is needed.
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		err := store.Ping(ctx, d.store)
		cancel()
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: state store unavailable: %v\n", err)
			return
		}
		for _, rt := range d.runtimes {
			if c := rt.Status(); c.State == "failed" {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %s: %s\n", c.Name, c.Detail)
				return
			}
		}
		fmt.Fprintf(w, "ready: revision %d\n", d.Live().Revision)
	})
	mux.Handle("GET /metrics", d.metricsHandler())
	if d.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	return &opsServer{d: d, ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

func (o *opsServer) Name() string { return "ops" }
func (o *opsServer) Addr() string { return o.ln.Addr().String() }
func (o *opsServer) Serve() error {
	if err := o.srv.Serve(o.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
func (o *opsServer) Shutdown(ctx context.Context) error { return o.srv.Shutdown(ctx) }
