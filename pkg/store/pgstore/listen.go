package pgstore

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/internal/changefeed"
)

// channel is the NOTIFY channel every writing transaction announces its
// store.Change on (channels are per database, as the store is).
const channel = "stoa_changes"

// Listener timing: an idle connection is checked this often (a peer
// that vanished without closing it is found in about a minute), and a
// lost one is dialled again with a backoff up to maxBackoff.
const (
	idleCheck  = 30 * time.Second
	maxBackoff = 5 * time.Second
)

func encodeChange(c store.Change) (string, error) {
	b, err := json.Marshal(c)
	return string(b), err
}

// listener holds one connection of its own in LISTEN, publishing every
// notification to the hub. When the connection is lost it reconnects by
// itself and, since notifications sent meanwhile are lost with it,
// publishes a Resync change carrying the current revision and event.
type listener struct {
	cfg    *pgx.ConnConfig
	feed   *changefeed.Hub
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// startListener connects (so that every commit from now on is heard)
// and starts listening.
func startListener(ctx context.Context, cfg *pgx.ConnConfig, feed *changefeed.Hub, log *slog.Logger) (*listener, error) {
	l := &listener{cfg: cfg, feed: feed, log: log, done: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(lctx, conn)
	return l, nil
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, classify(ctx, "listen for changes", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, classify(ctx, "listen for changes", err)
	}
	return conn, nil
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}

func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	backoff := 100 * time.Millisecond
	for {
		if conn == nil {
			c, err := l.connect(ctx)
			if err == nil {
				err = l.resync(ctx, c)
				if err != nil {
					c.Close(context.Background())
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				l.log.Warn("store: change listener cannot reconnect", "err", err, "retry", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			l.log.Info("store: change listener reconnected")
			conn, backoff = c, 100*time.Millisecond
		}
		wctx, cancel := context.WithTimeout(ctx, idleCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			var c store.Change
			if err := json.Unmarshal([]byte(n.Payload), &c); err != nil {
				l.log.Warn("store: change notification does not decode", "payload", n.Payload, "err", err)
				c = store.Change{Domains: store.AllDomains, Resync: true}
			}
			l.feed.Publish(c)
			continue
		case ctx.Err() != nil:
			return
		case pgconn.Timeout(err) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("store: change listener lost its connection; reconnecting", "err", err)
		conn.Close(context.Background())
		conn = nil
	}
}

// resync tells the watchers to reread everything, with the current
// revision and event.
func (l *listener) resync(ctx context.Context, conn *pgx.Conn) error {
	var c store.Change
	if err := conn.QueryRow(ctx, `SELECT revision, event_seq FROM head WHERE id = 1`).Scan(&c.Revision, &c.Event); err != nil {
		return classify(ctx, "read the head row", err)
	}
	c.Domains, c.Resync = store.AllDomains, true
	l.feed.Publish(c)
	return nil
}
