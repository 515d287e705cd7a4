package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sepmbot/config"
	"sepmbot/ops"
	"sepmbot/store"
)

// Store is what the admin listener reads from the data file; *store.DB implements it.
type Store interface {
	View(ctx context.Context, fn func(tx *store.Tx) error) error
	WriteTo(ctx context.Context, w io.Writer) (int64, error)
}

// Chat is one chat platform as /readyz sees it.
type Chat interface {
	Name() string
	Connected() bool
}

// Server serves the admin endpoints.
type Server struct {
	Metrics *Metrics
	Store   Store
	Chats   []Chat
	SEPM    []*SEPM
	// Engines by site, for /audit/{id}.
	Engines map[string]Rotations
	// ReadyWindow: a site's latest answer must be this recent (default 2 minutes).
	ReadyWindow time.Duration
	Log         *slog.Logger
	Now         func() time.Time
	// Token, when set, is the bearer token /backup and /audit/{id} require; when
	// empty they answer loopback peers only (private.go).
	Token string
}

// Handler returns the admin mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{ErrorLog: nil}))
	}
	mux.HandleFunc("GET /backup", s.private(s.backup))
	mux.HandleFunc("GET /audit/{id}", s.private(s.audit))
	return mux
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Ready returns one line per component and whether all are ready.
func (s *Server) Ready(ctx context.Context) ([]string, bool) {
	ok := true
	var lines []string
	if s.Store != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.Store.View(ctx, func(*store.Tx) error { return nil })
		cancel()
		if err != nil {
			ok = false
			lines = append(lines, "store: "+err.Error())
		} else {
			lines = append(lines, "store: ok")
		}
	}
	for _, c := range s.Chats {
		if c.Connected() {
			lines = append(lines, "chat "+c.Name()+": connected")
		} else {
			ok = false
			lines = append(lines, "chat "+c.Name()+": not connected")
		}
	}
	window := s.ReadyWindow
	if window <= 0 {
		window = 2 * time.Minute
	}
	for _, e := range s.SEPM {
		reached, at, err := e.Reachable()
		switch {
		case !reached:
			ok = false
			lines = append(lines, fmt.Sprintf("sepm %s: unreachable: %v", e.Site(), err))
		case s.now().Sub(at) > window:
			ok = false
			lines = append(lines, fmt.Sprintf("sepm %s: no answer for %s", e.Site(), s.now().Sub(at).Round(time.Second)))
		default:
			lines = append(lines, fmt.Sprintf("sepm %s: ok", e.Site()))
		}
	}
	for i, l := range lines {
		lines[i] = config.Secrets.Redact(l)
	}
	return lines, ok
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	lines, ok := s.Ready(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	if s.Store == nil {
		http.Error(w, "no store", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	n, err := s.Store.WriteTo(r.Context(), w)
	if err != nil {
		s.log().Error("admin: backup", "err", err, "bytes", n)
		return // the client sees a short body; its Verify fails
	}
	s.log().Info("admin: backup sent", "bytes", n)
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	id := strings.ToUpper(strings.TrimSpace(r.PathValue("id")))
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		http.Error(w, "format: want json or csv", http.StatusBadRequest)
		return
	}
	var lastErr error = errors.New("no site configured")
	for site, eng := range s.Engines {
		ex, err := ops.Collect(r.Context(), eng, id, s.now())
		if err != nil {
			lastErr = err
			continue
		}
		if ex.Site != site && len(s.Engines) > 1 {
			continue
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		if err := ops.Write(w, ex, format); err != nil {
			s.log().Warn("admin: audit export", "rotation", id, "err", err)
		}
		return
	}
	http.Error(w, lastErr.Error(), http.StatusNotFound)
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Listen binds addr and serves h until ctx is done, then shuts down (waiting up to
// five seconds for requests in flight). It returns the bound address (useful with
// port 0) once listening; serving errors are logged.
func Listen(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (string, <-chan struct{}, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("admin listener %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr().String(), done, nil
}
