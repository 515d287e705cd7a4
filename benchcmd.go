package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"sepmbot/internal/bench"
	"sepmbot/internal/ctxsleep"
	"sepmbot/rotation"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
)

// BenchCmd measures the bot at scale against a simulated SEPM (issue "Scale"). The
// simulator runs as a child process (this binary's `sim` command), so the figures of
// the two sides stay apart: bot_rss_bytes is this process's peak resident set
// (VmHWM) while the bot's own work runs (the rotation engine and the router; the
// peak is reset after the sweep and floor measurements), and
// sim_cpu_cores and sim_rss_bytes are the child's, from /proc. An in-process
// simulator would fold its 500,000 clients into the bot's memory.
type BenchCmd struct {
	Clients        int           `default:"100000" help:"Number of simulated clients."`
	Heartbeat      time.Duration `default:"300s" help:"The simulated clients' heartbeat (SEPM's default is 300s; it sets the sim's steady load, how long --changed takes to come true, and the rotation's wait of 3 heartbeats: use 5s for a quick run)."`
	Changed        float64       `default:"0.10" help:"Share of the fleet that has checked in within each timed incremental poll's window (the bench sizes the window on the simulator's own count of check-ins: about that share of a heartbeat)."`
	MinWait        time.Duration `name:"min-wait" default:"0s" help:"The rotation's --min-wait (each wait is max(3 x heartbeat, min-wait))."`
	PollInterval   time.Duration `name:"poll-interval" default:"30s" help:"The rotation engine's poll interval (the bot's --poll-interval)."`
	Roaming        int           `default:"10" help:"Percent of simulated clients that roam (drop offline for a few heartbeats; sim --roaming). 0 with --policy-fetch 1 gives clients that make a wait's condition hold at its deadline."`
	PolicyFetch    float64       `name:"policy-fetch" default:"0.7" help:"Chance a simulated check-in downloads a newer policy (sim --policy-fetch)."`
	SkipRotation   bool          `name:"skip-rotation" help:"Do not drive a rotation through its first wait (wait_end_latency_seconds is then 0)."`
	SimWindow      time.Duration `name:"sim-window" default:"10s" help:"Steady window over which the simulator's CPU is measured, with the bench idle."`
	Repeat         int           `default:"3" help:"Full sweeps and floor sweeps to take (interleaved), and the wait's polls and full sweeps (each after a poll's idle); the medians are reported."`
	RouterUsers    int           `name:"router-users" default:"8" help:"Concurrent users sending events through the router."`
	RouterDuration time.Duration `name:"router-duration" default:"3s" help:"How long the users send events."`
	Data           string        `type:"path" help:"Folder for the bench's bbolt files (default: a temporary folder; its disk's fsync is part of router_events_per_second)."`
	JSON           bool          `help:"Print one JSON object instead of the table."`
	Timeout        time.Duration `default:"60m" help:"Give up after this long."`

	simEnv []string // extra environment of the simulator child (the tests run main() through TestMain)
}

// Help is the longer help of `sepmbot bench --help`.
func (c *BenchCmd) Help() string {
	return `Starts a simulated SEPM (this binary's sim command) at --clients clients as a child
process and measures: a full computers sweep through the bot's client and its raw floor
(same pages over one connection, json.Unmarshal into the slim page), the connections a
sweep opens, the wait's own incremental polls (each once --changed of the fleet has
checked in) and its full sweeps (each after the same idle), a real rotation's first
wait (deadline to next step), the router's events per second (8 users, bbolt dedupe),
the bot's peak RSS and the simulator's CPU and RSS.

The simulator is a separate process so the figures stay apart: bot_rss_bytes is this
process's VmHWM while the rotation engine and the router run (reset after the sweep and
floor measurements; bench_rss_bytes is the whole run's peak), sim_cpu_cores and
sim_rss_bytes are read from the child's /proc entries. At --heartbeat 300s the rotation
waits 15 minutes (3 heartbeats); --heartbeat 5s or --skip-rotation for a quick run.`
}

// benchResult is the JSON object `bench --json` prints.
type benchResult struct {
	Clients                 int     `json:"clients"`
	HeartbeatSeconds        float64 `json:"heartbeat_seconds"`
	SweepSeconds            float64 `json:"sweep_seconds"`
	SweepBytes              int64   `json:"sweep_bytes"`
	SweepComputers          int     `json:"sweep_computers"`
	SweepFloorSeconds       float64 `json:"sweep_floor_seconds"`
	SweepFloorBytes         int64   `json:"sweep_floor_bytes"`
	SweepOverFloor          float64 `json:"sweep_over_floor"`
	HandshakesPerSweep      int64   `json:"handshakes_per_sweep"`
	IncrementalPollSeconds  float64 `json:"incremental_poll_seconds"`
	IncrementalPollBytes    int64   `json:"incremental_poll_bytes"`
	IncrementalComputers    int     `json:"incremental_poll_computers"`
	WaitFullSweepSeconds    float64 `json:"wait_full_sweep_seconds"`
	WaitFullSweepBytes      int64   `json:"wait_full_sweep_bytes"`
	IncrementalTimeShare    float64 `json:"incremental_poll_time_share"`
	IncrementalBytesShare   float64 `json:"incremental_poll_bytes_share"`
	WaitEndLatencySeconds   float64 `json:"wait_end_latency_seconds"`
	WaitCoveredBeforeDeadln bool    `json:"wait_covered_before_deadline"`
	WaitPendingAtDeadline   int     `json:"wait_pending_at_deadline"`
	WaitSeconds             float64 `json:"wait_seconds"`
	WaitStep                string  `json:"wait_step,omitempty"`
	WaitNextStep            string  `json:"wait_next_step,omitempty"`
	BotRSSBytes             int64   `json:"bot_rss_bytes"`
	BenchRSSBytes           int64   `json:"bench_rss_bytes"`
	SimRSSBytes             int64   `json:"sim_rss_bytes"`
	SimCPUCores             float64 `json:"sim_cpu_cores"`
	SimStartSeconds         float64 `json:"sim_start_seconds"`
	RouterEventsPerSecond   float64 `json:"router_events_per_second"`
	RouterEvents            int64   `json:"router_events"`
}

const benchPassword = "bench-password"

// Run measures and prints.
func (c *BenchCmd) Run(g *Globals) error {
	if c.Clients <= 0 || c.Repeat <= 0 || c.RouterUsers <= 0 || c.Changed <= 0 || c.Changed > 1 {
		return errors.New("bench: --clients, --repeat and --router-users must be positive, --changed in (0, 1]")
	}
	if c.Heartbeat < time.Second {
		return errors.New("bench: --heartbeat must be at least 1s")
	}
	ctx, cancel := context.WithTimeout(g.Ctx, c.Timeout)
	defer cancel()
	log := g.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := c.Data
	if dir == "" {
		d, err := os.MkdirTemp("", "sepmbot-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	res := benchResult{Clients: c.Clients, HeartbeatSeconds: c.Heartbeat.Seconds(), WaitPendingAtDeadline: -1}
	progress := func(format string, args ...any) {
		if !c.JSON {
			fmt.Fprintf(g.Out, "… "+format+"\n", args...)
		}
	}

	progress("starting the simulator: %d clients, heartbeat %s", c.Clients, c.Heartbeat)
	t0 := time.Now()
	child, err := c.startSim(ctx, dir)
	if err != nil {
		return err
	}
	defer child.stop()
	res.SimStartSeconds = time.Since(t0).Seconds()

	proxy, err := bench.NewProxy(child.apiAddr)
	if err != nil {
		return err
	}
	defer proxy.Close()
	via := "https://" + proxy.Addr
	newClient := func() (*sepm.Client, error) {
		return sepm.New(sepm.Config{URL: via, Username: "admin", Password: benchPassword, Fingerprints: []string{child.fingerprint}, Logger: log})
	}
	admin, err := bench.NewAPI(via, child.fingerprint, "admin", benchPassword)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := admin.Login(ctx); err != nil {
		return fmt.Errorf("bench: logging in to the simulator: %w", err)
	}

	// The simulator's steady load, with the bench idle; its count of check-ins
	// starts here (the polls' windows are sized on the rate).
	checkins, err := newCheckinRate(ctx, admin)
	if err != nil {
		return err
	}
	progress("measuring the simulator's CPU over %s", c.SimWindow)
	if res.SimCPUCores, err = child.cpuOver(ctx, c.SimWindow); err != nil {
		return err
	}

	// Full sweeps through the bot's client, and the floor, interleaved.
	var sweeps, floors []float64
	for i := range c.Repeat {
		progress("full sweep %d/%d", i+1, c.Repeat)
		s, err := c.sweep(ctx, newClient, proxy)
		if err != nil {
			return err
		}
		sweeps = append(sweeps, s.seconds)
		res.SweepBytes, res.SweepComputers = s.bytes, s.computers
		res.HandshakesPerSweep = max(res.HandshakesPerSweep, s.handshakes)
		progress("floor sweep %d/%d", i+1, c.Repeat)
		f, fb, err := sweepFloor(ctx, newClient, proxy)
		if err != nil {
			return err
		}
		floors = append(floors, f.Duration.Seconds())
		res.SweepFloorBytes = fb
	}
	res.SweepSeconds, res.SweepFloorSeconds = median(sweeps), median(floors)
	if res.SweepFloorSeconds > 0 {
		res.SweepOverFloor = res.SweepSeconds / res.SweepFloorSeconds
	}

	// Incremental poll: let --changed of the fleet check in, then ask for what changed.
	client, err := newClient()
	if err != nil {
		return err
	}
	if err := client.Login(ctx); err != nil {
		return fmt.Errorf("bench: logging in: %w", err)
	}
	progress("the wait's reads: %d polls, each once %.0f%% of the fleet changed, and %d full sweeps, each after the same idle (about %s)",
		c.Repeat, c.Changed*100, c.Repeat, time.Duration(c.Changed*float64(c.Heartbeat)).Round(time.Second))
	inc, err := incrementalPoll(ctx, client, proxy, c.Repeat, c.Changed, checkins)
	if err != nil {
		return err
	}
	res.WaitFullSweepSeconds, res.WaitFullSweepBytes = inc.fullSeconds, inc.fullBytes
	res.IncrementalPollSeconds, res.IncrementalPollBytes, res.IncrementalComputers = inc.seconds, inc.bytes, inc.computers
	if inc.fullSeconds > 0 && inc.fullBytes > 0 {
		res.IncrementalTimeShare = inc.seconds / inc.fullSeconds
		res.IncrementalBytesShare = float64(inc.bytes) / float64(inc.fullBytes)
	}

	// The bot's memory is the peak of what the bot itself runs from here on (a
	// rotation's engine with its wait polls, and the router), not of the bench's
	// measuring above (its floor decodes whole pages with encoding/json): the peak
	// is reset after a collection. BenchRSSBytes keeps the whole run's peak.
	if m, err := bench.MemoryOf(0); err == nil {
		res.BenchRSSBytes = m.Peak
	}
	runtime.GC()
	debug.FreeOSMemory()
	if err := bench.ResetPeak(); err != nil {
		log.Warn("bench: bot_rss_bytes is the whole run's peak", "err", err)
	}

	// A real rotation through its first heartbeat wait.
	if !c.SkipRotation {
		w, err := c.rotationWait(ctx, dir, newClient, admin, child, log, progress)
		if err != nil {
			return err
		}
		res.WaitEndLatencySeconds = w.Latency().Seconds()
		res.WaitCoveredBeforeDeadln = w.CoveredBeforeDeadline()
		res.WaitPendingAtDeadline = w.PendingAtDeadline
		res.WaitSeconds = w.Deadline.Sub(w.Started).Seconds()
		res.WaitStep, res.WaitNextStep = w.Step, w.Next
	}

	// Events through the router.
	progress("router: %d users for %s", c.RouterUsers, c.RouterDuration)
	rsepm, err := newClient()
	if err != nil {
		return err
	}
	rr, err := bench.RunRouter(ctx, bench.RouterConfig{Dir: dir, SEPM: rsepm, Users: c.RouterUsers, Duration: c.RouterDuration, Logger: log})
	if err != nil {
		return err
	}
	res.RouterEventsPerSecond, res.RouterEvents = rr.PerSecond(), rr.Events

	if m, err := bench.MemoryOf(0); err == nil {
		res.BotRSSBytes = m.Peak
	} else {
		return err
	}
	if m, err := bench.MemoryOf(child.pid()); err == nil {
		res.SimRSSBytes = m.Peak
	} else {
		return err
	}
	if c.JSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(g.Out, string(b))
		return err
	}
	return writeBenchTable(g.Out, res)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type sweepFigures struct {
	seconds    float64
	bytes      int64 // reply bytes on the wire (TLS records), log-in excluded
	handshakes int64 // connections a fresh client opened for its log-in and the sweep
	computers  int
}

// sweep is one full computers sweep (pageSize 1000) through a fresh *sepm.Client:
// its log-in is not timed, but the connections it opens count (a client that reuses
// its connection opens one for both).
func (c *BenchCmd) sweep(ctx context.Context, newClient func() (*sepm.Client, error), proxy *bench.Proxy) (sweepFigures, error) {
	cl, err := newClient()
	if err != nil {
		return sweepFigures{}, err
	}
	before := proxy.Counts()
	if err := cl.Login(ctx); err != nil {
		return sweepFigures{}, fmt.Errorf("bench: logging in: %w", err)
	}
	mid := proxy.Counts()
	var f sweepFigures
	start := time.Now()
	err = cl.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		f.computers += len(page)
		return nil
	})
	f.seconds = time.Since(start).Seconds()
	if err != nil {
		return f, fmt.Errorf("bench: sweeping computers: %w", err)
	}
	after := proxy.Counts()
	f.bytes = after.Sub(mid).BytesDown
	f.handshakes = after.Sub(before).Accepts
	return f, nil
}

// sweepFloor is the floor of a sweep: the same pages over one connection, each body
// json.Unmarshal-ed into the slim page type (sepm.Client.SweepFloor, through a
// fresh client whose log-in is not timed). It returns the floor and its reply
// bytes on the wire.
func sweepFloor(ctx context.Context, newClient func() (*sepm.Client, error), proxy *bench.Proxy) (sepm.FloorResult, int64, error) {
	cl, err := newClient()
	if err != nil {
		return sepm.FloorResult{}, 0, err
	}
	defer cl.CloseIdleConnections()
	if err := cl.Login(ctx); err != nil {
		return sepm.FloorResult{}, 0, fmt.Errorf("bench: floor: logging in: %w", err)
	}
	before := proxy.Counts()
	f, err := cl.SweepFloor(ctx, sepm.ComputerQuery{PageSize: 1000})
	if err != nil {
		return f, 0, fmt.Errorf("bench: floor: %w", err)
	}
	return f, proxy.Counts().Sub(before).BytesDown, nil
}

type pollFigures struct {
	fullSeconds float64 // the wait's own full sweep (Tracker.Full, map merge included): median
	fullBytes   int64
	seconds     float64 // the median Incremental poll, with its bytes and computers
	bytes       int64
	computers   int // computers the median poll read
}

// incrementalPoll measures the wait's own reads as a wait makes them: each after
// the idle between two polls. A rotation.Tracker builds its map with one full
// sweep (not timed: a wait's map is built once). Then, repeat times, the bench
// lets time pass until the next poll's window (from Tracker.NextSince, the cursor
// less the overlap, to now) holds changed of the fleet, at the check-in rate the
// simulator counted so far, and times one Incremental poll (groups, onlinestatus
// and the computers changed in that window); and, after the same idle, one Full
// (the map updated in place, as the wait's confirming sweep does). Timing the
// full sweeps back to back instead would time them on warm caches and the polls
// on cold ones. The medians are reported.
func incrementalPoll(ctx context.Context, cl *sepm.Client, proxy *bench.Proxy, repeat int, changed float64, checkins *checkinRate) (pollFigures, error) {
	var f pollFigures
	api := &countingSEPM{Client: cl}
	tr := rotation.NewTracker(api, time.Now(), nil)
	p, err := tr.Full(ctx)
	if err != nil {
		return f, fmt.Errorf("bench: incremental poll: building the map: %w", err)
	}
	n := p.Online + p.Offline
	if n == 0 {
		return f, errors.New("bench: incremental poll: the full sweep found no client")
	}
	idle := func() error {
		perSecond, err := checkins.rate(ctx)
		if err != nil {
			return err
		}
		window := time.Duration(changed * float64(n) / perSecond * float64(time.Second))
		return ctxsleep.Sleep(ctx, time.Until(tr.NextSince().Add(window)))
	}
	type poll struct {
		seconds   float64
		bytes     int64
		computers int
	}
	var got []poll
	var fulls, fullBytes []float64
	for range repeat {
		if err := idle(); err != nil {
			return f, err
		}
		api.rows = 0
		before, start := proxy.Counts(), time.Now()
		if _, err := tr.Incremental(ctx); err != nil {
			return f, fmt.Errorf("bench: incremental poll: %w", err)
		}
		got = append(got, poll{seconds: time.Since(start).Seconds(), bytes: proxy.Counts().Sub(before).BytesDown, computers: api.rows})

		if err := idle(); err != nil {
			return f, err
		}
		before, start = proxy.Counts(), time.Now()
		if _, err := tr.Full(ctx); err != nil {
			return f, fmt.Errorf("bench: incremental poll: a full sweep: %w", err)
		}
		fulls = append(fulls, time.Since(start).Seconds())
		fullBytes = append(fullBytes, float64(proxy.Counts().Sub(before).BytesDown))
	}
	f.fullSeconds, f.fullBytes = median(fulls), int64(median(fullBytes))
	slices.SortFunc(got, func(a, b poll) int { return cmp.Compare(a.seconds, b.seconds) })
	mid := got[len(got)/2] // the median poll (of an even count, the slower middle one)
	f.seconds, f.bytes, f.computers = mid.seconds, mid.bytes, mid.computers
	return f, nil
}

// checkinRate is the simulator's check-in rate since the bench started counting,
// from its own count (the admin API's fleet report; read only between the timed
// reads). Each check-in moves one client's lastUpdateTime, and a client checks in
// at most once in a window shorter than its shortest interval (half a heartbeat at
// the simulator's ±50% jitter; a failed policy download is retried sooner, but no
// policy changes before the polls), so the rate times a window is the computers a
// poll of that window reads. The fleet's online share would not tell it: a
// roamer's return is a check-in of a client shown offline.
type checkinRate struct {
	admin *bench.API
	at    time.Time
	n     uint64
}

func newCheckinRate(ctx context.Context, admin *bench.API) (*checkinRate, error) {
	c := &checkinRate{admin: admin}
	var err error
	c.n, c.at, err = c.count(ctx)
	return c, err
}

func (c *checkinRate) count(ctx context.Context) (uint64, time.Time, error) {
	var fleet struct {
		Checkins uint64 `json:"checkins"`
	}
	if err := c.admin.Do(ctx, http.MethodGet, sim.AdminAPI+"/fleet", nil, &fleet); err != nil {
		return 0, time.Time{}, fmt.Errorf("bench: counting the simulator's check-ins: %w", err)
	}
	return fleet.Checkins, time.Now(), nil
}

// rate is the check-ins per second since newCheckinRate.
func (c *checkinRate) rate(ctx context.Context) (float64, error) {
	n, at, err := c.count(ctx)
	if err != nil {
		return 0, err
	}
	if n <= c.n || !at.After(c.at) {
		return 0, errors.New("bench: the simulator counted no check-in since the bench started")
	}
	return float64(n-c.n) / at.Sub(c.at).Seconds(), nil
}

// countingSEPM is the bot's client, counting the computer records a wait's reads
// (Tracker: EachComputerMarkPage) bring.
type countingSEPM struct {
	*sepm.Client
	rows int
}

func (c *countingSEPM) EachComputerMarkPage(ctx context.Context, q sepm.ComputerQuery, fn func(page []sepm.ComputerMark) error) error {
	return c.Client.EachComputerMarkPage(ctx, q, func(page []sepm.ComputerMark) error {
		c.rows += len(page)
		return fn(page)
	})
}

// rotationWait drives a real rotation (engine, bbolt store) through its first wait.
func (c *BenchCmd) rotationWait(ctx context.Context, dir string, newClient func() (*sepm.Client, error), admin *bench.API,
	child *simChild, log *slog.Logger, progress func(string, ...any)) (bench.WaitResult, error) {
	var infos []struct {
		Name       string `json:"name"`
		ClientAddr string `json:"clientAddr"`
	}
	if err := admin.Do(ctx, "GET", "/sim/v1/servers", nil, &infos); err != nil {
		return bench.WaitResult{}, fmt.Errorf("bench: reading the servers: %w", err)
	}
	var servers []rotation.ServerRef
	for _, s := range infos {
		servers = append(servers, rotation.ServerRef{Name: s.Name, ClientAddr: s.ClientAddr})
	}
	cl, err := newClient()
	if err != nil {
		return bench.WaitResult{}, err
	}
	wait := max(3*c.Heartbeat, c.MinWait)
	progress("rotation: through its first wait (at least %s)", wait)
	w, err := bench.RunWait(ctx, bench.WaitConfig{
		Dir: dir, SEPM: cl, Admin: admin, Site: "bench", APIAddr: child.apiAddr, Servers: servers,
		MinWait: c.MinWait, PollInterval: c.PollInterval, Timeout: 2*wait + 10*time.Minute, Logger: log,
	})
	if err != nil {
		return w, fmt.Errorf("bench: rotation: %w", err)
	}
	return w, nil
}

func writeBenchTable(out io.Writer, r benchResult) error {
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	wait := fmt.Sprintf("%.3f s after the deadline (%s -> %s, wait %.0f s, online clients not yet on the policy at the deadline: %d)", r.WaitEndLatencySeconds, r.WaitStep, r.WaitNextStep, r.WaitSeconds, r.WaitPendingAtDeadline)
	if r.WaitStep == "" {
		wait = "not measured (--skip-rotation)"
	}
	rows := [][2]string{
		{"clients", strconv.Itoa(r.Clients)},
		{"sim heartbeat", (time.Duration(r.HeartbeatSeconds * float64(time.Second))).String()},
		{"full sweep", fmt.Sprintf("%.3f s, %s on the wire, %d computers", r.SweepSeconds, mb(r.SweepBytes), r.SweepComputers)},
		{"sweep floor (raw + Unmarshal)", fmt.Sprintf("%.3f s, %s (sweep = %.2f x floor)", r.SweepFloorSeconds, mb(r.SweepFloorBytes), r.SweepOverFloor)},
		{"handshakes per sweep", strconv.FormatInt(r.HandshakesPerSweep, 10)},
		{"wait's full sweep", fmt.Sprintf("%.3f s, %s (the wait's map: groups, onlinestatus, every computer merged; after a poll's idle)", r.WaitFullSweepSeconds, mb(r.WaitFullSweepBytes))},
		{"incremental poll", fmt.Sprintf("%.3f s, %s, %d computers changed (%.1f%% of the fleet): %.1f%% of the wait's full sweep's time, %.1f%% of its bytes",
			r.IncrementalPollSeconds, mb(r.IncrementalPollBytes), r.IncrementalComputers, 100*float64(r.IncrementalComputers)/float64(max(r.Clients, 1)),
			100*r.IncrementalTimeShare, 100*r.IncrementalBytesShare)},
		{"wait-end latency", wait},
		{"bot RSS (peak)", mb(r.BotRSSBytes) + " (rotation and router; the bench's own peak: " + mb(r.BenchRSSBytes) + ")"},
		{"sim RSS (peak)", mb(r.SimRSSBytes)},
		{"sim CPU", fmt.Sprintf("%.3f cores", r.SimCPUCores)},
		{"sim start", fmt.Sprintf("%.1f s", r.SimStartSeconds)},
		{"router", fmt.Sprintf("%.0f events/s (%d events)", r.RouterEventsPerSecond, r.RouterEvents)},
	}
	var b strings.Builder
	for _, row := range rows {
		fmt.Fprintf(&b, "%-30s %s\n", row[0], row[1])
	}
	_, err := io.WriteString(out, b.String())
	return err
}
