package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"sepmbot/rotation"
	"sepmbot/store"
)

// Rotations is what the metrics and the audit export read from an engine;
// *rotation.Engine implements it.
type Rotations interface {
	List(ctx context.Context) ([]rotation.Rotation, error)
	Get(ctx context.Context, id string) (rotation.View, error)
	Audit(ctx context.Context, id string) ([]store.AuditRecord, error)
}

// Metrics is the process's Prometheus registry: counters that the SEPM and chat
// wrappers increment, and gauges computed from the engines at scrape time.
type Metrics struct {
	Registry *prometheus.Registry

	sepmCalls   *prometheus.CounterVec
	sepmErrors  *prometheus.CounterVec
	sepmLatency *prometheus.HistogramVec
	chatCalls   *prometheus.CounterVec
	chatErrors  *prometheus.CounterVec
	chatLimited *prometheus.CounterVec

	mu    sync.Mutex
	sites []siteEngine
	now   func() time.Time
	log   *slog.Logger
}

type siteEngine struct {
	name string
	eng  Rotations
}

// NewMetrics returns a registry with the Go and process collectors and sepmbot's.
func NewMetrics(log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{Registry: prometheus.NewRegistry(), now: time.Now, log: log}
	m.sepmCalls, m.sepmErrors, m.sepmLatency = newSEPMMetrics()
	m.chatCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sepmbot_chat_api_calls_total", Help: "Calls to a chat platform's API by platform and method.",
	}, []string{"platform", "method"})
	m.chatErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sepmbot_chat_api_errors_total", Help: "Failed calls to a chat platform's API by platform and method.",
	}, []string{"platform", "method"})
	m.chatLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sepmbot_chat_api_rate_limited_total", Help: "Rate-limit (HTTP 429) answers of a chat platform by platform and method.",
	}, []string{"platform", "method"})
	m.Registry.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.sepmCalls, m.sepmErrors, m.sepmLatency, m.chatCalls, m.chatErrors, m.chatLimited,
		&rotationCollector{m: m},
	)
	return m
}

// AddSite makes the site's rotations part of the scrape.
func (m *Metrics) AddSite(site string, eng Rotations) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sites = append(m.sites, siteEngine{site, eng})
}

var (
	descRotations = prometheus.NewDesc("sepmbot_rotations",
		"Rotations in the store by site and state (running, paused, completed, aborted).", []string{"site", "state"}, nil)
	descCurrentStep = prometheus.NewDesc("sepmbot_rotation_current_step",
		"1 for the step an active rotation is at.", []string{"site", "rotation", "step", "action", "status"}, nil)
	descStepDuration = prometheus.NewDesc("sepmbot_rotation_step_duration_seconds",
		"How long each started step of a rotation took (until now for the active step); active rotations and those ended in the last 24h.",
		[]string{"site", "rotation", "step", "status"}, nil)
	descStepsDone = prometheus.NewDesc("sepmbot_rotation_steps_done",
		"Steps done of an active rotation.", []string{"site", "rotation"}, nil)
	descStepsTotal = prometheus.NewDesc("sepmbot_rotation_steps_total",
		"Steps in the plan of an active rotation.", []string{"site", "rotation"}, nil)
	descOnNew = prometheus.NewDesc("sepmbot_rotation_clients_on_new_policy",
		"Online clients that checked in since the latest SEPM change of an active rotation's current wait.", []string{"site", "rotation", "step"}, nil)
	descOnNewCert = prometheus.NewDesc("sepmbot_rotation_clients_on_new_certificate",
		"During a wait after a certificate update: online clients that checked in since the change, so hold the new certificate.", []string{"site", "rotation", "step"}, nil)
	descOnline = prometheus.NewDesc("sepmbot_rotation_clients_online",
		"Online clients the current wait of an active rotation watches.", []string{"site", "rotation", "step"}, nil)
	descOffline = prometheus.NewDesc("sepmbot_rotation_clients_offline",
		"Offline clients at the current wait's latest poll.", []string{"site", "rotation", "step"}, nil)
	descLagging = prometheus.NewDesc("sepmbot_rotation_clients_lagging",
		"Online clients not yet checked in since the latest change of the current wait (suspected orphaned if it persists after a certificate update).", []string{"site", "rotation", "step"}, nil)
	descNotSeen = prometheus.NewDesc("sepmbot_rotation_clients_not_seen",
		"Clients not seen since the change, from the rotation's closing report.", []string{"site", "rotation"}, nil)
	descSuspected = prometheus.NewDesc("sepmbot_rotation_clients_suspected_orphaned",
		"Clients suspected orphaned (online at a certificate change, silent since), from the rotation's report.", []string{"site", "rotation"}, nil)
	descSecureOff = prometheus.NewDesc("sepmbot_secure_communication_off_seconds",
		"Seconds secure communication has been off in the site's latest rotation (until it was re-enabled, or until now).", []string{"site", "rotation"}, nil)
	descVotes = prometheus.NewDesc("sepmbot_approval_votes_total",
		"Votes on approval requests by site and outcome, from the audit trail.", []string{"site", "outcome"}, nil)
	descRequests = prometheus.NewDesc("sepmbot_approval_requests_total",
		"Approval request events by site and what happened (requested, expired, stale, ...), from the audit trail.", []string{"site", "event"}, nil)
	descScrapeErr = prometheus.NewDesc("sepmbot_rotation_scrape_errors",
		"1 when the store could not be read for this scrape.", []string{"site"}, nil)
)

type rotationCollector struct{ m *Metrics }

// Describe sends nothing: the collector is unchecked (its series come and go with
// rotations).
func (c *rotationCollector) Describe(chan<- *prometheus.Desc) {}

func (c *rotationCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	sites := append([]siteEngine(nil), c.m.sites...)
	c.m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := c.m.now()
	for _, s := range sites {
		if err := collectSite(ctx, ch, s, now); err != nil {
			c.m.log.Warn("metrics: reading rotations", "site", s.name, "err", err)
			ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.GaugeValue, 1, s.name)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.GaugeValue, 0, s.name)
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func collectSite(ctx context.Context, ch chan<- prometheus.Metric, s siteEngine, now time.Time) error {
	rots, err := s.eng.List(ctx)
	if err != nil {
		return err
	}
	states := map[string]int{rotation.StatusRunning: 0, rotation.StatusPaused: 0, rotation.StatusCompleted: 0, rotation.StatusAborted: 0}
	votes, requests := map[string]int{}, map[string]int{}
	var latest *rotation.Rotation
	for i := range rots {
		r := &rots[i]
		if r.Site != s.name {
			continue // another site's engine owns it
		}
		states[r.Status]++
		if latest == nil || r.Created.After(latest.Created) {
			latest = r
		}
		recs, err := s.eng.Audit(ctx, r.ID)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if o, ok := strings.CutPrefix(rec.Kind, "vote-"); ok {
				votes[o]++
			}
			if o, ok := strings.CutPrefix(rec.Kind, "approval-"); ok {
				requests[o]++
			}
		}
		if !r.Active() && now.Sub(r.Updated) > 24*time.Hour {
			continue
		}
		collectRotation(ctx, ch, s, r, now)
	}
	for st, n := range states {
		gauge(ch, descRotations, float64(n), s.name, st)
	}
	for o, n := range votes {
		ch <- prometheus.MustNewConstMetric(descVotes, prometheus.CounterValue, float64(n), s.name, o)
	}
	for o, n := range requests {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), s.name, o)
	}
	if latest != nil {
		if off, ok := secureOff(latest, now); ok {
			gauge(ch, descSecureOff, off.Seconds(), s.name, latest.ID)
		}
	}
	return nil
}

func collectRotation(ctx context.Context, ch chan<- prometheus.Metric, s siteEngine, r *rotation.Rotation, now time.Time) {
	done := 0
	certDone := false
	for i, st := range r.Steps {
		if i >= len(r.Plan.Steps) {
			break
		}
		ps := r.Plan.Steps[i]
		if st.Status == rotation.StepDone {
			done++
			if ps.Action == rotation.ActCert {
				certDone = true
			}
		}
		if st.Started.IsZero() {
			continue
		}
		end := st.Finished
		if end.IsZero() {
			if !r.Active() {
				continue
			}
			end = now
		}
		gauge(ch, descStepDuration, end.Sub(st.Started).Seconds(), s.name, r.ID, ps.ID, st.Status)
	}
	if r.Report != nil {
		gauge(ch, descNotSeen, float64(r.Report.NotSeen), s.name, r.ID)
		if n, ok := reportCount(r.Report, "suspected_orphaned"); ok {
			gauge(ch, descSuspected, n, s.name, r.ID)
		}
	}
	if !r.Active() {
		return
	}
	gauge(ch, descStepsDone, float64(done), s.name, r.ID)
	gauge(ch, descStepsTotal, float64(len(r.Plan.Steps)), s.name, r.ID)
	if step, st, ok := r.Current(); ok {
		gauge(ch, descCurrentStep, 1, s.name, r.ID, step.ID, step.Action, r.Status+"/"+st.Status)
	}
	v, err := s.eng.Get(ctx, r.ID)
	if err != nil || v.Progress == nil {
		return
	}
	p := v.Progress
	gauge(ch, descOnNew, float64(p.OnNewPolicy), s.name, r.ID, p.Step)
	gauge(ch, descOnline, float64(p.Online), s.name, r.ID, p.Step)
	gauge(ch, descOffline, float64(p.Offline), s.name, r.ID, p.Step)
	gauge(ch, descLagging, float64(max(p.Online-p.OnNewPolicy, 0)), s.name, r.ID, p.Step)
	if certDone {
		gauge(ch, descOnNewCert, float64(p.OnNewPolicy), s.name, r.ID, p.Step)
	}
}

// secureOff is how long secure communication has been (or was) off in r: from the
// end of its disable step to the end of its enable step, or now.
func secureOff(r *rotation.Rotation, now time.Time) (time.Duration, bool) {
	var off, on time.Time
	for i, ps := range r.Plan.Steps {
		if i >= len(r.Steps) {
			break
		}
		st := r.Steps[i]
		switch ps.Action {
		case rotation.ActDisableSecure:
			if st.Status == rotation.StepDone {
				off = st.Finished
			}
		case rotation.ActEnableSecure:
			if st.Status == rotation.StepDone {
				on = st.Finished
			}
		}
	}
	if off.IsZero() {
		return 0, false
	}
	if on.IsZero() || on.Before(off) {
		if !r.Active() {
			// Ended (an abort reverts) without the enable step: the abort's revert
			// turned it back on; report the span until the rotation ended.
			return r.Updated.Sub(off), true
		}
		return now.Sub(off), true
	}
	return on.Sub(off), true
}

// reportCount reads a count from the report by its JSON name, so counts the engine
// adds to its report (suspected orphans) are exported without a change here.
func reportCount(rep *rotation.Report, key string) (float64, bool) {
	raw, err := json.Marshal(rep)
	if err != nil {
		return 0, false
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return 0, false
	}
	v, ok := m[key].(float64)
	return v, ok
}
