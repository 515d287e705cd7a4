package admin

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sepmbot/rotation"
	"sepmbot/sepm"
)

// SEPM decorates a site's SEPM client: it counts calls, errors and latency per
// operation, and remembers whether the latest call reached SEPM (for /readyz).
// It implements rotation.SEPM.
type SEPM struct {
	inner rotation.SEPM
	site  string
	m     *Metrics
	now   func() time.Time

	mu      sync.Mutex
	lastAt  time.Time
	lastErr error // nil: the latest call got an answer from SEPM
}

// InstrumentSEPM wraps c for site.
func (m *Metrics) InstrumentSEPM(site string, c rotation.SEPM) *SEPM {
	return &SEPM{inner: c, site: site, m: m, now: time.Now}
}

// Site is the site's name.
func (s *SEPM) Site() string { return s.site }

// Reachable reports whether the latest call reached SEPM (an API error reply
// counts as reached: SEPM answered), and when it was. Before any call it is false.
func (s *SEPM) Reachable() (bool, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastAt.IsZero() {
		return false, time.Time{}, errors.New("no call to SEPM yet")
	}
	return s.lastErr == nil, s.lastAt, s.lastErr
}

func (s *SEPM) observe(op string, start time.Time, err error) {
	d := s.now().Sub(start)
	outcome := "ok"
	var reach error
	var apiErr *sepm.APIError
	switch {
	case err == nil:
	case errors.As(err, &apiErr):
		outcome = "api_error"
	case errors.Is(err, context.Canceled):
		outcome = "canceled"
	default:
		outcome = "unreachable"
		reach = err
	}
	s.m.sepmCalls.WithLabelValues(s.site, op, outcome).Inc()
	if err != nil && outcome != "canceled" {
		s.m.sepmErrors.WithLabelValues(s.site, op).Inc()
	}
	s.m.sepmLatency.WithLabelValues(s.site, op).Observe(d.Seconds())
	if outcome == "canceled" {
		return
	}
	s.mu.Lock()
	s.lastAt, s.lastErr = s.now(), reach
	s.mu.Unlock()
}

// Watch calls Version every interval when nothing else has called SEPM in that
// time, so /readyz knows whether SEPM is reachable while no rotation polls it.
// It returns when ctx is done.
func (s *SEPM) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 15 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.mu.Lock()
		stale := s.now().Sub(s.lastAt) >= interval
		s.mu.Unlock()
		if stale {
			cctx, cancel := context.WithTimeout(ctx, interval)
			_, _ = s.Version(cctx)
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Version implements rotation.SEPM.
func (s *SEPM) Version(ctx context.Context) (sepm.Version, error) {
	start := s.now()
	v, err := s.inner.Version(ctx)
	s.observe("version", start, err)
	return v, err
}

// AdminServers implements rotation.SEPM.
func (s *SEPM) AdminServers(ctx context.Context) ([]sepm.Server, error) {
	start := s.now()
	v, err := s.inner.AdminServers(ctx)
	s.observe("admin_servers", start, err)
	return v, err
}

// Groups implements rotation.SEPM.
func (s *SEPM) Groups(ctx context.Context) ([]sepm.Group, error) {
	start := s.now()
	v, err := s.inner.Groups(ctx)
	s.observe("groups", start, err)
	return v, err
}

// Locations implements rotation.SEPM.
func (s *SEPM) Locations(ctx context.Context, groupID string) ([]sepm.Location, error) {
	start := s.now()
	v, err := s.inner.Locations(ctx, groupID)
	s.observe("locations", start, err)
	return v, err
}

// LocationSettings implements rotation.SEPM.
func (s *SEPM) LocationSettings(ctx context.Context, groupID, locationID string) (sepm.Settings, error) {
	start := s.now()
	v, err := s.inner.LocationSettings(ctx, groupID, locationID)
	s.observe("location_settings", start, err)
	return v, err
}

// PatchLocationSettings implements rotation.SEPM.
func (s *SEPM) PatchLocationSettings(ctx context.Context, groupID, locationID string, patch sepm.Configuration) (sepm.Settings, error) {
	start := s.now()
	v, err := s.inner.PatchLocationSettings(ctx, groupID, locationID, patch)
	s.observe("patch_location_settings", start, err)
	return v, err
}

// EachComputerPage implements rotation.SEPM; it counts the whole sweep as one call.
func (s *SEPM) EachComputerPage(ctx context.Context, q sepm.ComputerQuery, fn func(page []sepm.Computer) error) error {
	return eachPageObserved(ctx, s, s.inner.EachComputerPage, q, fn)
}

// EachComputerMarkPage implements rotation.SEPM; it counts as EachComputerPage does.
func (s *SEPM) EachComputerMarkPage(ctx context.Context, q sepm.ComputerQuery, fn func(page []sepm.ComputerMark) error) error {
	return eachPageObserved(ctx, s, s.inner.EachComputerMarkPage, q, fn)
}

// eachPageObserved runs a paged computers read as one observed call: a read that
// fn stopped counts as answered.
func eachPageObserved[T any](ctx context.Context, s *SEPM, each func(context.Context, sepm.ComputerQuery, func([]T) error) error,
	q sepm.ComputerQuery, fn func([]T) error) error {
	start := s.now()
	var fnErr error
	err := each(ctx, q, func(p []T) error {
		fnErr = fn(p)
		return fnErr
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		s.observe("computers", start, nil) // the caller stopped it, SEPM answered
	} else {
		s.observe("computers", start, err)
	}
	return err
}

// ClientVersions implements rotation.SEPM.
func (s *SEPM) ClientVersions(ctx context.Context) (sepm.ClientVersionResponse, error) {
	start := s.now()
	v, err := s.inner.ClientVersions(ctx)
	s.observe("client_versions", start, err)
	return v, err
}

// OnlineStatus implements rotation.SEPM.
func (s *SEPM) OnlineStatus(ctx context.Context) (sepm.OnlineStatusResponse, error) {
	start := s.now()
	v, err := s.inner.OnlineStatus(ctx)
	s.observe("online_status", start, err)
	return v, err
}

// IsReplicated implements rotation.SEPM.
func (s *SEPM) IsReplicated(ctx context.Context) (bool, error) {
	start := s.now()
	v, err := s.inner.IsReplicated(ctx)
	s.observe("replication_status", start, err)
	return v, err
}

// Trust implements rotation.SEPM (no call to SEPM).
func (s *SEPM) Trust(fps ...string) error { return s.inner.Trust(fps...) }

var _ rotation.SEPM = (*SEPM)(nil)

// newSEPMMetrics are the SEPM call metrics.
func newSEPMMetrics() (*prometheus.CounterVec, *prometheus.CounterVec, *prometheus.HistogramVec) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sepmbot_sepm_api_calls_total",
		Help: "SEPM REST API calls by site, operation and outcome (ok, api_error: SEPM answered with an error, unreachable, canceled).",
	}, []string{"site", "op", "outcome"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sepmbot_sepm_api_errors_total",
		Help: "SEPM REST API calls that failed (an error reply or SEPM unreachable), by site and operation.",
	}, []string{"site", "op"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sepmbot_sepm_api_duration_seconds",
		Help:    "Latency of SEPM REST API calls (retries included; a computers sweep is one call), by site and operation.",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"site", "op"})
	return calls, errs, lat
}
