package e2e

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load sends a light, bounded stream of requests through the proxy (about
// rps a second across the quickstart tools) until the test ends or max
// requests were sent; it stops by itself either way.
type load struct {
	sent, ok atomic.Int64
	cancel   func()
	wg       sync.WaitGroup
}

func startLoad(t testing.TB, e *mcpEnv, rps int) *load {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	l := &load{cancel: cancel}
	t.Cleanup(l.stop)
	targets := []struct{ path, key string }{
		{"/acme/billing-api/invoices/INV-1001", e.AcmeKey},
		{"/acme/billing-api/invoices/NOPE", e.AcmeKey}, // a 404 from the upstream
		{"/acme/inventory-api/items/sku-1", e.AcmeKey},
		{"/globex/weather-api/current/paris", e.GlobexKey},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	const max = 20000
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		for i := 0; i < max; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			tg := targets[i%len(targets)]
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.D.Listen+tg.path, nil)
			req.Header.Set("X-Api-Key", tg.key)
			l.sent.Add(1)
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				l.ok.Add(1)
			}
		}
	}()
	return l
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}
