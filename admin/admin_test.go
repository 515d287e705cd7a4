package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sepmbot/bot"
	"sepmbot/internal/testkit"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"sepmbot/rotation"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
	"sepmbot/store"
)

func readyz(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzFollowsSEPM: /readyz fails while SEPM is unreachable and recovers after,
// the store and the chat platform being fine.
func TestReadyzFollowsSEPM(t *testing.T) {
	site, err := sim.Start(context.Background(), sim.Options{Clients: 10, Servers: 1, Groups: 2, Heartbeat: time.Second, User: "admin", Password: "pw-ready-1", Seed: 3, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	px := testkit.NewProxy(t, strings.TrimPrefix(site.URL(), "https://"))
	client, err := sepm.New(sepm.Config{URL: "https://" + px.Addr, Username: "admin", Password: "pw-ready-1", Fingerprints: []string{site.APIFingerprint()}, MaxRetries: -1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.TempDir() + "/sepmbot.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := NewMetrics(nil)
	inst := m.InstrumentSEPM("site-a", client)
	srv := httptest.NewServer((&Server{Metrics: m, Store: db, Chats: []Chat{fakeChat{}}, SEPM: []*SEPM{inst}}).Handler())
	defer srv.Close()
	ctx := context.Background()

	if code, body := readyz(t, srv.URL); code != 503 || !strings.Contains(body, "sepm site-a: unreachable: no call to SEPM yet") {
		t.Errorf("before any call: %d %q", code, body)
	}
	if _, err := inst.Version(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(t, srv.URL); code != 200 || !strings.Contains(body, "sepm site-a: ok") || !strings.Contains(body, "store: ok") {
		t.Errorf("reachable: %d %q", code, body)
	}
	px.Cut()
	if _, err := inst.Version(ctx); err == nil {
		t.Fatal("a call through the cut proxy succeeded")
	}
	if code, body := readyz(t, srv.URL); code != 503 || !strings.Contains(body, "sepm site-a: unreachable") {
		t.Errorf("cut: %d %q", code, body)
	}
	px.Restore(t)
	if _, err := inst.Version(ctx); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	if code, body := readyz(t, srv.URL); code != 200 {
		t.Errorf("restored: %d %q", code, body)
	}
	// The outcomes are counted.
	if got := counter(t, m, "sepmbot_sepm_api_calls_total", map[string]string{"op": "version", "outcome": "unreachable"}); got != 1 {
		t.Errorf("unreachable calls = %v", got)
	}
	if got := counter(t, m, "sepmbot_sepm_api_calls_total", map[string]string{"op": "version", "outcome": "ok"}); got < 2 {
		t.Errorf("ok calls = %v", got)
	}
}

type fakeChat struct{ down bool }

func (fakeChat) Name() string      { return "console" }
func (c fakeChat) Connected() bool { return !c.down }

// TestReadyzChatAndStaleness: a disconnected chat or an old last answer fails.
func TestReadyzChatAndStaleness(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := NewMetrics(nil)
	inst := m.InstrumentSEPM("a", &fakeSEPM{})
	inst.now = func() time.Time { return now }
	_, _ = inst.Version(context.Background())
	s := &Server{SEPM: []*SEPM{inst}, Chats: []Chat{fakeChat{down: true}}, Now: func() time.Time { return now.Add(time.Minute) }}
	lines, ok := s.Ready(context.Background())
	if ok || !strings.Contains(strings.Join(lines, "\n"), "chat console: not connected") {
		t.Errorf("%v %v", ok, lines)
	}
	s.Chats = nil
	if _, ok := s.Ready(context.Background()); !ok {
		t.Error("fresh answer not ready")
	}
	s.Now = func() time.Time { return now.Add(3 * time.Minute) }
	if lines, ok := s.Ready(context.Background()); ok || !strings.Contains(lines[0], "no answer for 3m0s") {
		t.Errorf("stale: %v %v", ok, lines)
	}
}

// fakeSEPM answers Version and fails Groups with an API error.
type fakeSEPM struct{ rotation.SEPM }

func (*fakeSEPM) Version(context.Context) (sepm.Version, error) { return sepm.Version{}, nil }
func (*fakeSEPM) Groups(context.Context) ([]sepm.Group, error) {
	return nil, &sepm.APIError{Method: "GET", Path: "groups", Status: 403, Message: "forbidden"}
}

// TestAPIErrorIsReachable: SEPM answering with an error is reachable, and counted
// as an error.
func TestAPIErrorIsReachable(t *testing.T) {
	m := NewMetrics(nil)
	inst := m.InstrumentSEPM("a", &fakeSEPM{})
	if _, err := inst.Groups(context.Background()); err == nil {
		t.Fatal("no error")
	}
	if ok, _, err := inst.Reachable(); !ok {
		t.Errorf("an API error counts as unreachable: %v", err)
	}
	if got := counter(t, m, "sepmbot_sepm_api_errors_total", map[string]string{"op": "groups"}); got != 1 {
		t.Errorf("errors = %v", got)
	}
}

// markSEPM serves two pages of marks, then ends with fail.
type markSEPM struct {
	rotation.SEPM
	fail error
}

func (f *markSEPM) EachComputerMarkPage(_ context.Context, _ sepm.ComputerQuery, fn func([]sepm.ComputerMark) error) error {
	for range 2 {
		if err := fn([]sepm.ComputerMark{{}, {}}); err != nil {
			return fmt.Errorf("sepm: computers: %w", err)
		}
	}
	return f.fail
}

// TestMarkReadsAreObserved: a wait's computers read (marks) reaches the inner
// client's pages, and counts as one computers call: ok when it ends or when the
// caller stops it, an error when SEPM fails it.
func TestMarkReadsAreObserved(t *testing.T) {
	m := NewMetrics(nil)
	ctx := context.Background()
	n := 0
	if err := m.InstrumentSEPM("a", &markSEPM{}).EachComputerMarkPage(ctx, sepm.ComputerQuery{}, func(p []sepm.ComputerMark) error { n += len(p); return nil }); err != nil || n != 4 {
		t.Fatalf("read %d marks, err %v", n, err)
	}
	stop := errors.New("enough")
	if err := m.InstrumentSEPM("a", &markSEPM{}).EachComputerMarkPage(ctx, sepm.ComputerQuery{}, func([]sepm.ComputerMark) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("stopped read: %v", err)
	}
	down := &sepm.APIError{Method: "GET", Path: "computers", Status: 500, Message: "down"}
	if err := m.InstrumentSEPM("a", &markSEPM{fail: down}).EachComputerMarkPage(ctx, sepm.ComputerQuery{}, func([]sepm.ComputerMark) error { return nil }); !errors.Is(err, down) {
		t.Fatalf("failed read: %v", err)
	}
	if got := counter(t, m, "sepmbot_sepm_api_calls_total", map[string]string{"op": "computers", "outcome": "ok"}); got != 2 {
		t.Errorf("ok computers calls = %v, want 2", got)
	}
	if got := counter(t, m, "sepmbot_sepm_api_errors_total", map[string]string{"op": "computers"}); got != 1 {
		t.Errorf("computers errors = %v, want 1", got)
	}
}

func counter(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	for _, mf := range gather(t, m)[name] {
		if matchLabels(mf, labels) {
			if mf.Counter != nil {
				return mf.Counter.GetValue()
			}
			return mf.Gauge.GetValue()
		}
	}
	return 0
}

func gather(t *testing.T, m *Metrics) map[string][]*dto.Metric {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*dto.Metric{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.Metric
	}
	return out
}

func matchLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.Label {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// fakeRotations serves fixed rotations and audit records.
type fakeRotations struct {
	rots  []rotation.Rotation
	views map[string]rotation.View
	audit map[string][]store.AuditRecord
}

func (f *fakeRotations) List(context.Context) ([]rotation.Rotation, error) { return f.rots, nil }
func (f *fakeRotations) Get(_ context.Context, id string) (rotation.View, error) {
	if v, ok := f.views[id]; ok {
		return v, nil
	}
	return rotation.View{}, errors.New("not found")
}
func (f *fakeRotations) Audit(_ context.Context, id string) ([]store.AuditRecord, error) {
	return f.audit[id], nil
}

// TestRotationGauges: states, the current step, step durations, progress after a
// certificate step, secure communication off since the disable step, votes by
// outcome; another site's rotation is not counted.
func TestRotationGauges(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	now := t0.Add(10 * time.Minute)
	r := rotation.Rotation{ID: "R2", Site: "a", Status: rotation.StatusRunning, Created: t0, Updated: now, Cursor: 3,
		Plan: rotation.Plan{Steps: []rotation.PlanStep{
			{ID: "disable-secure", Action: rotation.ActDisableSecure}, {ID: "cert-s1", Action: rotation.ActCert},
			{ID: "x", Action: rotation.ActWait}, {ID: "wait-cert", Action: rotation.ActWait}, {ID: "enable-secure", Action: rotation.ActEnableSecure},
		}},
		Steps: []rotation.StepState{
			{Status: rotation.StepDone, Started: t0, Finished: t0.Add(time.Minute)},
			{Status: rotation.StepDone, Started: t0.Add(time.Minute), Finished: t0.Add(3 * time.Minute)},
			{Status: rotation.StepDone, Started: t0.Add(3 * time.Minute), Finished: t0.Add(4 * time.Minute)},
			{Status: rotation.StepActive, Started: t0.Add(4 * time.Minute)},
			{Status: rotation.StepPending},
		}}
	other := rotation.Rotation{ID: "R1", Site: "b", Status: rotation.StatusCompleted, Created: t0, Updated: now}
	f := &fakeRotations{rots: []rotation.Rotation{other, r},
		views: map[string]rotation.View{"R2": {Rotation: r, Progress: &rotation.Progress{Step: "wait-cert", OnNewPolicy: 40, Online: 50, Offline: 7}}},
		audit: map[string][]store.AuditRecord{"R2": {{Kind: "approval-requested"}, {Kind: "vote-approved"}, {Kind: "vote-approved"}, {Kind: "vote-refused"}, {Kind: "step-done"}}}}
	m := NewMetrics(nil)
	m.now = func() time.Time { return now }
	m.AddSite("a", f)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sepmbot_rotations", map[string]string{"site": "a", "state": "running"}, 1},
		{"sepmbot_rotations", map[string]string{"site": "a", "state": "completed"}, 0},
		{"sepmbot_rotation_current_step", map[string]string{"rotation": "R2", "step": "wait-cert"}, 1},
		{"sepmbot_rotation_step_duration_seconds", map[string]string{"step": "cert-s1"}, 120},
		{"sepmbot_rotation_step_duration_seconds", map[string]string{"step": "wait-cert"}, 360},
		{"sepmbot_rotation_clients_on_new_certificate", map[string]string{"rotation": "R2"}, 40},
		{"sepmbot_rotation_clients_lagging", map[string]string{"rotation": "R2"}, 10},
		{"sepmbot_rotation_steps_done", map[string]string{"rotation": "R2"}, 3},
		{"sepmbot_secure_communication_off_seconds", map[string]string{"site": "a"}, 540},
		{"sepmbot_approval_votes_total", map[string]string{"outcome": "approved"}, 2},
		{"sepmbot_approval_votes_total", map[string]string{"outcome": "refused"}, 1},
		{"sepmbot_approval_requests_total", map[string]string{"event": "requested"}, 1},
	} {
		if got := counter(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Re-enabled: the span stops growing.
	r.Steps[4] = rotation.StepState{Status: rotation.StepDone, Started: t0.Add(8 * time.Minute), Finished: t0.Add(9 * time.Minute)}
	r.Cursor = 5
	f.rots[1] = r
	if got := counter(t, m, "sepmbot_secure_communication_off_seconds", map[string]string{"site": "a"}); got != 480 {
		t.Errorf("after enable: %v, want 480", got)
	}
}

// pacedChat is a platform with rate limits (only Pacing is called).
type pacedChat struct{ bot.Platform }

func (pacedChat) Pacing() bot.Pacing {
	return bot.Pacing{EditBudget: 50, EditWindow: time.Minute, PostInterval: time.Second}
}

// TestInstrumentedPlatformKeepsPacing: the metrics wrapper passes the platform's
// rate limits through (bot.Paced), so the notifier still paces Slack and Discord by
// them; a platform without limits gives none.
func TestInstrumentedPlatformKeepsPacing(t *testing.T) {
	m := NewMetrics(nil)
	w := m.InstrumentPlatform(pacedChat{}, nil)
	if got := w.Pacing(); got.EditBudget != 50 || got.PostInterval != time.Second {
		t.Errorf("pacing through the wrapper: %+v", got)
	}
	if got := m.InstrumentPlatform(struct{ bot.Platform }{}, nil).Pacing(); got != (bot.Pacing{}) {
		t.Errorf("a platform without limits got %+v", got)
	}
}
