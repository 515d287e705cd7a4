package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"sepmbot/bot"
	"sepmbot/bot/console"
	"sepmbot/config"
	"sepmbot/logs"
	"sepmbot/rotation"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
	"sepmbot/store"
)

// DemoCmd runs the simulator, the bot and a console channel in one process.
type DemoCmd struct {
	SimFlags     `embed:""`
	SimListen    string        `name:"sim-listen" default:"127.0.0.1:0" help:"Simulator API address (default: a free loopback port)."`
	SimState     string        `name:"sim-state" type:"path" help:"Keep the simulated site in this file across runs (with --data, the demo stops and resumes as a whole)."`
	Data         string        `type:"path" help:"Folder for the bbolt file (default: a temporary folder)."`
	Auto         bool          `help:"Play a scripted conversation and print a JSON result line; exit 0 only if completed with nobody orphaned."`
	Straggler    time.Duration `default:"5s" help:"Straggler window of the multi-server path in the demo."`
	CardInterval time.Duration `name:"card-interval" default:"2s" help:"Least time between two edits of a run card."`
	Timeout      time.Duration `default:"3m" help:"--auto gives up after this long."`
	AdminListen  string        `name:"admin-listen" help:"Admin listener (/healthz, /readyz, /metrics), e.g. 127.0.0.1:9090; none by default."`
	LogFile      string        `name:"log-file" type:"path" help:"Write the logs (info level) to this file; without it only warnings and errors go to stderr, so the chat stays readable."`
}

// logger is the demo's own: warnings and errors on stderr (or the level asked for
// with --log-level), or everything from info up (or the level asked for) in
// --log-file. Log lines never mix into the chat on stdout. Either way the lines go
// through the redacting handler.
func (c *DemoCmd) logger(g *Globals) (*slog.Logger, func(), error) {
	if c.LogFile == "" {
		if g.LogLevelSet || g.Log == nil {
			return g.Log, func() {}, nil
		}
		return slog.New(logs.AtLeast(g.Log.Handler(), slog.LevelWarn)), func() {}, nil
	}
	f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("--log-file: %w", err)
	}
	level := slog.LevelInfo
	if g.LogLevelSet {
		level = g.LogLevel
	}
	log, err := logs.New(f, logs.Options{Format: g.LogFormat, Level: level, Redact: config.Secrets, Steps: g.Steps})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return log, func() { f.Close() }, nil
}

const demoPassword = "demo-password"

// Run starts everything and hands the terminal to the console channel.
func (c *DemoCmd) Run(g *Globals) error {
	ctx, cancel := context.WithCancel(g.Ctx)
	defer cancel()
	log, closeLog, err := c.logger(g)
	if err != nil {
		return err
	}
	defer closeLog()
	gd := *g // the demo's own logger for everything it starts
	gd.Log = log
	g = &gd
	opts := c.options(c.SimListen, "admin", demoPassword)
	opts.Logger = log
	opts.StateFile = c.SimState
	site, err := sim.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting the simulator: %w", err)
	}
	defer site.Close()

	dir := c.Data
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sepmbot-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	db, err := store.Open(filepath.Join(dir, "sepmbot.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	client, err := sepm.New(sepm.Config{URL: site.URL(), Username: "admin", Password: demoPassword, Fingerprints: []string{site.APIFingerprint()}, Logger: log})
	if err != nil {
		return err
	}
	var servers []rotation.ServerRef
	for _, s := range site.Servers() {
		servers = append(servers, rotation.ServerRef{Name: s.Name, ClientAddr: s.ClientAddr})
	}
	flags := BotFlags{
		SiteName: "site-a", Operators: []string{"console:alice"}, Approvers: []string{"console:bob,console:carol"}, Viewers: []string{"*"},
		Approvals: 2, ApprovalTTL: time.Hour, PollInterval: max(c.Heartbeat/2, 500*time.Millisecond), CardInterval: c.CardInterval,
	}
	roles, err := flags.roles()
	if err != nil {
		return err
	}

	in, out := g.In, g.Out
	var script *io.PipeWriter
	if c.Auto {
		pr, pw := io.Pipe()
		in, script = pr, pw
	}
	lw := &lockedWriter{w: out, keep: c.Auto}
	out = lw
	// The demo alone lets one terminal speak as several users (@bob, @carol): a
	// rehearsal of the two-person rule, never one (the guide says so).
	con := console.New(in, out, console.Options{As: "alice", MultiUser: true, Hook: simHook(site), SeqFile: filepath.Join(dir, "console.seq")})
	spec := siteSpec{Name: flags.SiteName, Client: client, APIAddr: hostOf(site.URL()), Servers: servers}
	w, err := startSites(ctx, g, flags, roles, []siteSpec{spec}, db, []chatOutlet{{Platform: con}}, c.AdminListen)
	if err != nil {
		return err
	}
	defer w.notifier.Close()
	w.router.HelpExtra = console.Help + "\n" + simHelp
	c.guide(out, site)
	if w.adminURL != "" {
		fmt.Fprintf(out, "  admin     %s/metrics  %s/readyz\n", w.adminURL, w.adminURL)
	}
	served := make(chan struct{})
	go func() { w.router.Serve(ctx, w.platform); close(served) }()

	if !c.Auto {
		select {
		case <-served:
		case <-g.Ctx.Done():
		}
		cancel()
		<-served // no handler still uses the engine or the store after this
		w.wait()
		return nil
	}
	start := time.Now()
	res, err := c.autoplay(ctx, script, lw, w.first(), site)
	cancel()
	<-served
	w.wait()
	w.notifier.Close() // flush the last card edit before the result line
	f := site.Fleet()
	res.Clients, res.Orphaned, res.Offline = f.Total, f.Orphaned, f.Offline
	res.Elapsed = time.Since(start).Seconds()
	line, _ := json.Marshal(res)
	fmt.Fprintln(out, string(line))
	if err != nil {
		return err
	}
	if res.Result != rotation.StatusCompleted || res.Orphaned != 0 {
		return fmt.Errorf("demo did not complete cleanly: %s, %d orphaned", res.Result, res.Orphaned)
	}
	return nil
}

type lockedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	keep bool            // keep a copy, for the autoplay to read what the bot said
	text strings.Builder // the copy
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keep {
		l.text.Write(p)
	}
	return l.w.Write(p)
}

// count is how often s was written so far (with keep).
func (l *lockedWriter) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.text.String(), s)
}

func hostOf(u string) string { return strings.TrimPrefix(u, "https://") }

func (c *DemoCmd) guide(out io.Writer, site *sim.Site) {
	fmt.Fprintf(out, `sepmbot demo: a simulated SEPM site "site-a" (%d clients, %d server(s), heartbeat %s) and the bot, on this terminal.
  SEPM API  %s/sepm/api/v1   user admin   password %s
  trust     --sepm-fingerprint %s
  users     alice (operator), bob and carol (approvers); lines without @user are alice's.
  DEMO ONLY: this terminal speaks as several users (@bob, @carol), so one person plays
            requester and both approvers. 'sepmbot run --chat console' is one person
            (--console-user) and refuses @user prefixes.
Try this:
  @alice /sepm plan
  @alice /sepm rotate site-a
  @bob react ✅ <approval message #>        @carol click approve <approval message #>
  !sim copy-msl "Default Management Server List"   then   @alice /sepm done R1 http-msl
  !sim servers    !sim cert sepm-01    then   @alice /sepm done R1 cert-sepm-01
  !sim fleet      @alice /sepm status R1      @alice /sepm audit R1      /sepm help
`, c.Clients, c.Servers, c.Heartbeat, site.URL(), demoPassword, site.APIFingerprint())
}

// demoResult is the last line of `demo --auto`.
type demoResult struct {
	Result   string  `json:"result"`
	Rotation string  `json:"rotation"`
	Path     string  `json:"path"`
	Clients  int     `json:"clients"`
	Orphaned int     `json:"orphaned"`
	Offline  int     `json:"offline"`
	Elapsed  float64 `json:"elapsed_seconds"`
}

// autoplay types a scripted conversation into the console, reacting to what the bot
// shows: alice rotates, bob approves twice, alice tries to approve her own, carol
// approves, alice does the console steps with !sim and says done.
func (c *DemoCmd) autoplay(ctx context.Context, script *io.PipeWriter, out *lockedWriter, eng *rotation.Engine, site *sim.Site) (demoResult, error) {
	defer script.Close()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	say := func(line string) error {
		fmt.Fprintf(out, "> %s\n", line)
		_, err := io.WriteString(script, line+"\n")
		return err
	}
	var pins []string
	for _, s := range site.Servers() {
		pins = append(pins, "--new-cert-sha256 "+s.Name+"="+s.NextFingerprint)
	}
	if err := say("@alice /sepm plan"); err != nil {
		return demoResult{}, err
	}
	if err := say(fmt.Sprintf("@alice /sepm rotate site-a %s --straggler %ds", strings.Join(pins, " "), int(c.Straggler.Seconds()))); err != nil {
		return demoResult{}, err
	}
	done := map[string]bool{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var id string
	const bobRefused = "[→bob] vote refused"
	bobRefusals := 0
	for {
		select {
		case <-ctx.Done():
			return demoResult{Result: "timeout", Rotation: id}, fmt.Errorf("demo --auto: no result within %s", c.Timeout)
		case <-tick.C:
		}
		if id == "" {
			rots, err := eng.List(ctx)
			if err != nil || len(rots) == 0 {
				continue
			}
			id = rots[len(rots)-1].ID
		}
		v, err := eng.Get(ctx, id)
		if err != nil {
			continue
		}
		r := v.Rotation
		if !r.Active() {
			return demoResult{Result: r.Status, Rotation: id, Path: r.Plan.Path}, nil
		}
		step, st, ok := r.Current()
		if !ok || st.Status != rotation.StepActive || r.Status != rotation.StatusRunning {
			continue
		}
		var lines []string
		switch step.Action {
		case rotation.ActHTTPCopy:
			if st.DoneBy == "" && !done[step.ID] {
				for _, m := range r.Plan.Lists() {
					lines = append(lines, fmt.Sprintf("!sim copy-msl %q", m))
				}
				lines = append(lines, fmt.Sprintf("@alice /sepm done %s %s", id, step.ID))
			}
		case rotation.ActApproval:
			if v.Approval == nil || v.Approval.MessageRef == "" {
				break
			}
			// Carol votes only once bob's repeated vote was answered, so the
			// transcript shows that refusal whatever the timing.
			ref, req := v.Approval.MessageRef, v.Approval.ID
			if q, ok := bot.ParseRef(ref); ok {
				ref = q.ID // the console's message number
			}
			switch {
			case !done[req]:
				done[req] = true
				bobRefusals = out.count(bobRefused)
				lines = []string{"@bob react ✅ " + ref, "@bob react ✅ " + ref, "@alice react ✅ " + ref}
			case !done[req+"/carol"] && out.count(bobRefused) > bobRefusals:
				done[req+"/carol"] = true
				lines = []string{"@carol click approve " + ref}
			}
		case rotation.ActCert:
			if st.DoneBy == "" && !done[step.ID] {
				lines = []string{"!sim cert " + step.Server, fmt.Sprintf("@alice /sepm done %s %s", id, step.ID)}
			}
		}
		if len(lines) > 0 {
			done[step.ID] = true
		}
		for _, l := range lines {
			if err := say(l); err != nil {
				return demoResult{}, err
			}
		}
	}
}

// simHelp is what /sepm help adds in the demo.
const simHelp = `  !sim help                   the simulated SEPM console (demo only): !sim copy-msl "LIST",
                              !sim cert SERVER, !sim offline N, !sim fleet (the truth: orphaned clients)`

// simHook is the demo's simulated SEPM console: `!sim ...` lines.
func simHook(site *sim.Site) console.Hook {
	return func(_ context.Context, line string) (string, error) {
		args := splitQuoted(line)
		if len(args) == 0 || args[0] != "sim" {
			return "", errors.New("unknown ! line; try !sim help")
		}
		args = args[1:]
		if len(args) == 0 {
			args = []string{"help"}
		}
		switch args[0] {
		case "servers":
			var b strings.Builder
			for _, s := range site.Servers() {
				fmt.Fprintf(&b, "%s  client port %s  certificate %s  next %s\n", s.Name, s.ClientAddr, s.Fingerprint, s.NextFingerprint)
			}
			return strings.TrimRight(b.String(), "\n"), nil
		case "copy-msl":
			if len(args) < 2 {
				return "", errors.New("usage: !sim copy-msl \"LIST NAME\" [PORT]")
			}
			port := 0
			if len(args) > 2 {
				p, err := strconv.Atoi(args[2])
				if err != nil {
					return "", fmt.Errorf("port %q: %w", args[2], err)
				}
				port = p
			}
			name, err := site.CopyMSLAsHTTP(args[1], port)
			if err != nil {
				return "", err
			}
			return "created the HTTP copy " + strconv.Quote(name), nil
		case "cert":
			if len(args) != 2 {
				return "", errors.New("usage: !sim cert SERVER")
			}
			s, err := site.UpdateCertificate(args[1])
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s now presents certificate %s", s.Name, s.Fingerprint), nil
		case "offline", "online":
			if len(args) < 2 {
				return "", fmt.Errorf("usage: !sim %s N [SECONDS]", args[0])
			}
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return "", fmt.Errorf("count %q: %w", args[1], err)
			}
			var d time.Duration
			if len(args) > 2 {
				s, err := strconv.Atoi(args[2])
				if err != nil {
					return "", fmt.Errorf("seconds %q: %w", args[2], err)
				}
				d = time.Duration(s) * time.Second
			}
			ids, err := site.SetOnline(n, args[0] == "online", d)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d clients %s", len(ids), args[0]), nil
		case "fleet":
			f := site.Fleet()
			return fmt.Sprintf("clients %d: ok %d, orphaned %d, offline %d", f.Total, f.OK, f.Orphaned, f.Offline), nil
		case "help":
			return "!sim servers | copy-msl \"LIST\" [PORT] | cert SERVER | offline N [SECONDS] | online N | fleet", nil
		}
		return "", fmt.Errorf("unknown !sim command %q; try !sim help", args[0])
	}
}

// splitQuoted splits on spaces, keeping "double quoted" words together.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
