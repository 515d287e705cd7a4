package rotation

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sepmbot/sepm"
	"sepmbot/sepm/sim"
	"sepmbot/store"
)

const crashChildEnv = "SEPMBOT_CRASH_CHILD"

// crashConfig is what the parent hands the child process.
type crashConfig struct {
	DB      string            `json:"db"`
	URL     string            `json:"url"`
	APIFP   string            `json:"api_fp"`
	Servers []ServerRef       `json:"servers"`
	NewFPs  map[string]string `json:"new_fps"`
	// AbortAt, when set, has the operator abort when that step is active.
	AbortAt string `json:"abort_at,omitempty"`
}

// TestCrashRecovery runs the engine in a child process and SIGKILLs it, restarting it
// each time on the same bbolt file: once in every SEPM-changing step of the forward
// path, and, in a second run aborted after the certificate change, in every revert
// step, plus kills at random points, plus, in one step of each run, a kill between
// a PATCH that SEPM accepted and the commit of its result in the journal (the child
// holds still after that PATCH until it is killed). The schedule is asserted: each of
// those steps took a kill while it was changing SEPM, and each held PATCH was
// confirmed after the restart by reading SEPM, not sent again. The rotation must end (completed, or
// aborted) with nobody orphaned, every target as it must be, and no PATCH sent
// twice: the simulator's own count of PATCHes per target and field equals the
// changes the journal applied.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs rotations across process kills")
	}
	t.Run("forward", func(t *testing.T) {
		t.Parallel()
		crashRun(t, "", []string{"assign-http", "disable-secure", "enable-secure", "restore-msl"}, []string{"assign-http", "enable-secure"}, StatusCompleted)
	})
	t.Run("abort", func(t *testing.T) {
		t.Parallel()
		crashRun(t, "wait-cert", []string{"disable-secure", "revert-enable-secure", "revert-restore-msl"}, []string{"revert-enable-secure"}, StatusAborted)
	})
}

// crashHoldEnv names, for one start of the child, the steps in which it holds still
// after the first PATCH SEPM accepted (it prints "PATCHED step" and waits to be
// killed, so the kill lands before the journal records the result).
const crashHoldEnv = "SEPMBOT_CRASH_HOLD"

func crashRun(t *testing.T, abortAt string, schedule, holdIn []string, want string) {
	site := startSim(t, sim.Options{Clients: 300, Servers: 1, Groups: 6, OfflinePercent: 5, Seed: 31, Heartbeat: time.Second})
	cfg := crashConfig{DB: filepath.Join(t.TempDir(), "sepmbot.db"), URL: site.URL(), APIFP: site.APIFingerprint(), Servers: serverRefs(site), NewFPs: map[string]string{}, AbortAt: abortAt}
	for _, s := range site.Servers() {
		cfg.NewFPs[s.Name] = s.NextFingerprint
	}
	raw, _ := json.Marshal(cfg)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("kill schedule seed %d", seed)

	holdPending := map[string]bool{} // steps still to take a kill after an accepted PATCH
	for _, s := range holdIn {
		holdPending[s] = true
	}
	start := func() (*exec.Cmd, <-chan string, <-chan error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw), crashHoldEnv+"="+strings.Join(keys(holdPending), ","))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		exited := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				default:
				}
			}
			exited <- cmd.Wait()
		}()
		return cmd, lines, exited
	}

	pending := map[string]bool{} // scheduled steps not yet killed in
	for _, s := range schedule {
		pending[s] = true
	}
	const randomKills = 6
	kills, random, finished := 0, 0, false
	var transcript, killedAt []string
	hit := map[string]int{}
	held := map[string]bool{}
	for (len(pending) > 0 || random < randomKills || len(holdPending) > 0) && !finished && kills < 40 {
		cmd, lines, exited := start()
		// A scheduled step is killed 5-35 ms after it became active (its PATCHes are
		// slowed to 25 ms each in the child, so the kill lands while it changes SEPM);
		// for half the starts, a random kill lands 0-2 s after the engine is up instead.
		ready := false
		step, status := "start-up", ""
		var timer <-chan time.Time
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case l := <-lines:
				transcript = append(transcript, l)
				if f := strings.Fields(l); len(f) == 2 && f[0] == "PATCHED" && holdPending[f[1]] {
					// The child holds still: the PATCH landed, its result is not recorded.
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-exited
					kills++
					killedAt = append(killedAt, f[1]+"/patched")
					delete(holdPending, f[1])
					held[f[1]] = true
					break wait
				}
				if f := strings.Fields(l); len(f) >= 5 && f[0] == "UPDATE" {
					step, status = f[3], f[4]
					if pending[step] && status == StepActive && ready {
						timer = time.After(time.Duration(5+rng.IntN(30)) * time.Millisecond)
					}
				}
				if l == "READY" {
					ready = true
					if len(pending) == 0 || rng.IntN(2) == 0 {
						timer = time.After(time.Duration(rng.IntN(2000)) * time.Millisecond)
					}
				}
			case <-timer:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				kills++
				at := step + "/" + status
				killedAt = append(killedAt, at)
				if pending[step] && status == StepActive {
					delete(pending, step)
					hit[step]++
				} else {
					random++
				}
				break wait
			case err := <-exited:
				if err != nil {
					t.Fatalf("child failed: %v\n%s", err, strings.Join(tail(transcript, 40), "\n"))
				}
				finished = true
				break wait
			case <-deadline:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				t.Fatalf("child made no progress in 60s\n%s", strings.Join(tail(transcript, 40), "\n"))
			}
		}
	}
	if len(pending) > 0 || len(holdPending) > 0 {
		t.Fatalf("the kills missed the SEPM-changing steps %v and the held PATCHes of %v (killed during: %s)", keys(pending), keys(holdPending), strings.Join(killedAt, " "))
	}
	// Let it run to the end.
	if !finished {
		_, lines, exited := start()
		deadline := time.After(120 * time.Second)
		for done := false; !done; {
			select {
			case l := <-lines:
				transcript = append(transcript, l)
			case err := <-exited:
				if err != nil {
					t.Fatalf("final child failed: %v\n%s", err, strings.Join(tail(transcript, 40), "\n"))
				}
				done = true
			case <-deadline:
				t.Fatalf("final child did not finish\n%s", strings.Join(tail(transcript, 40), "\n"))
			}
		}
	}
	db, err := store.Open(cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var r Rotation
	var recs []JournalRecord
	if err := db.View(context.Background(), func(tx *store.Tx) error {
		var err error
		if r, err = loadTx(tx, "R1"); err != nil {
			return err
		}
		recs, err = loadJournalTx(tx, "R1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r.Status != want {
		t.Fatalf("status %s, want %s: %s", r.Status, want, r.LastError)
	}
	// Each held PATCH was found after the restart: an open intent, SEPM showing the
	// new value, recorded as this rotation's change once (the PATCH counts below show
	// it was not sent again).
	audit, err := db.Audit(context.Background(), "R1")
	if err != nil {
		t.Fatal(err)
	}
	for step := range held {
		found := false
		for _, a := range audit {
			found = found || (a.Kind == "sepm-change" && a.Step == step && strings.Contains(a.Detail, "applied before a restart; confirmed by read-back"))
		}
		if !found {
			t.Errorf("%s: the PATCH killed before its result was not confirmed by read-back after the restart", step)
		}
	}
	changes := auditChanges(t, db, "R1")
	for k, n := range changes {
		if n != 1 {
			t.Errorf("SEPM change %s audited %d times", k, n)
		}
	}
	client := clientFor(t, site)
	f := fleet(t, client)
	if f.Orphaned != 0 {
		t.Errorf("orphaned = %d after %d kills", f.Orphaned, kills)
	}
	// SEPM's side: every PATCH the simulator accepted is one change the journal applied.
	applied := map[string]int{}
	for _, j := range recs {
		if j.State == JournalApplied {
			applied[j.TargetKey()]++
		}
	}
	sent := 0
	for _, p := range f.Patches {
		sent += p.Count
		if k := p.GroupID + "/" + p.LocationID; p.Count != applied[k] {
			t.Errorf("%s / %s: the simulator accepted %d PATCHes, the journal applied %d changes", p.Group, p.Location, p.Count, applied[k])
		}
	}
	if sent == 0 {
		t.Errorf("the simulator counted no PATCH at all")
	}
	assertRestored(t, client, r)
	t.Logf("rotation %s across %d SIGKILLs (during: %s); %d PATCHes, none twice", r.Status, kills, strings.Join(killedAt, " "), sent)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func tail(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// lineNotifier prints what the engine announces, one line each, for the parent.
type lineNotifier struct {
	refs    int
	changed chan struct{}
}

func (n *lineNotifier) poke() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

func (n *lineNotifier) Update(_ context.Context, v View) {
	s, st, _ := v.Rotation.Current()
	status := ""
	if st != nil {
		status = st.Status
	}
	fmt.Printf("UPDATE %s %s %s %s\n", v.Rotation.ID, v.Rotation.Status, s.ID, status)
	n.poke()
}

func (n *lineNotifier) Post(_ context.Context, id, text string) {
	fmt.Printf("EVENT %s %s\n", id, strings.ReplaceAll(text, "\n", " "))
	n.poke()
}

func (n *lineNotifier) RequestApproval(_ context.Context, v View) ([]string, error) {
	n.refs++
	ref := fmt.Sprintf("msg-%d-%d", os.Getpid(), n.refs)
	fmt.Printf("EVENT %s approval requested %s\n", v.Rotation.ID, ref)
	return []string{ref}, nil
}

// httpConsole is the simulator's console over its admin API.
type httpConsole struct{ c *sepm.Client }

func (h httpConsole) CopyMSLAsHTTP(source string, port int) (string, error) {
	var out struct {
		Name string `json:"name"`
	}
	err := h.c.Do(context.Background(), "POST", "/sim/v1/msls/copy", map[string]any{"source": source, "port": port}, &out)
	return out.Name, err
}

func (h httpConsole) UpdateCertificate(server string) (sim.ServerInfo, error) {
	var out sim.ServerInfo
	err := h.c.Do(context.Background(), "POST", "/sim/v1/servers/"+server+"/certificate", nil, &out)
	return out, err
}

func (h httpConsole) Servers() []sim.ServerInfo {
	var out []sim.ServerInfo
	if err := h.c.Do(context.Background(), "GET", "/sim/v1/servers", nil, &out); err != nil {
		return nil
	}
	return out
}

// TestCrashChild is the child process of TestCrashRecovery: engine plus operator.
func TestCrashChild(t *testing.T) {
	raw := os.Getenv(crashChildEnv)
	if raw == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	var cfg crashConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	client, err := sepm.New(sepm.Config{URL: cfg.URL, Username: "admin", Password: "sim-password-1", Fingerprints: []string{cfg.APIFP}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	approvers := map[string]bool{"console:bob": true, "console:carol": true}
	notifier := &lineNotifier{changed: make(chan struct{}, 1)}
	patches := &slowPatches{Client: client, hold: map[string]bool{}}
	for _, s := range strings.Split(os.Getenv(crashHoldEnv), ",") {
		if s != "" {
			patches.hold[s] = true
		}
	}
	eng, err := NewEngine(Config{
		Store: db, SEPM: patches, Notifier: notifier, Site: "site-a", APIAddr: strings.TrimPrefix(cfg.URL, "https://"),
		Servers: cfg.Servers, IsApprover: func(u string) bool { return approvers[u] }, PollInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); eng.Wait() }()
	patches.step = func() string {
		v, err := eng.Get(ctx, "R1")
		if err != nil {
			return ""
		}
		s, _, _ := v.Rotation.Current()
		return s.ID
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY")
	rots, err := eng.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rots) == 0 {
		if _, err := eng.Rotate(ctx, "console:alice", "", PlanOptions{NewCerts: cfg.NewFPs}); err != nil {
			t.Fatal(err)
		}
	}
	con := httpConsole{c: client}
	acted := map[string]bool{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(100 * time.Second)
	for time.Now().Before(deadline) {
		v, err := eng.Get(ctx, "R1")
		if err != nil {
			t.Fatal(err)
		}
		r := v.Rotation
		if !r.Active() {
			if want := map[bool]string{false: StatusCompleted, true: StatusAborted}[cfg.AbortAt != ""]; r.Status != want {
				t.Fatalf("rotation ended %s: %s", r.Status, r.LastError)
			}
			fmt.Println("FINISHED", r.Status)
			return
		}
		if step, st, ok := r.Current(); ok && cfg.AbortAt == step.ID && st.Status == StepActive && !r.Aborting {
			if err := eng.Abort(ctx, "console:alice", r.ID, "crash test"); err != nil {
				t.Logf("abort: %v", err)
			}
			continue
		}
		if step, st, ok := r.Current(); ok && st.Status == StepActive && r.Status == StatusRunning {
			if err := actAsOperator(ctx, eng, con, r, v, step, *st, acted); err != nil {
				t.Logf("operator: %v", err)
			}
		}
		select { // the operator looks again on every announcement, or after a short while
		case <-notifier.changed:
		case <-tick.C:
		}
	}
	t.Fatal("rotation did not finish in 100s")
}

// slowPatches makes each PATCH take 25 ms, as a real SEPM's does, so that a kill aimed
// at a settings step lands while it changes SEPM. In a step of hold, the first PATCH
// SEPM accepts is announced ("PATCHED step") and never returns: the parent kills the
// process before the engine can record the result.
type slowPatches struct {
	*sepm.Client
	hold map[string]bool
	step func() string // the rotation's current step (set once the engine exists)
}

func (s *slowPatches) PatchLocationSettings(ctx context.Context, g, l string, p sepm.Configuration) (sepm.Settings, error) {
	time.Sleep(25 * time.Millisecond)
	out, err := s.Client.PatchLocationSettings(ctx, g, l, p)
	if err == nil && s.step != nil && len(s.hold) > 0 {
		if step := s.step(); s.hold[step] {
			fmt.Printf("PATCHED %s\n", step)
			<-ctx.Done() // until killed (or the run ends)
			return out, ctx.Err()
		}
	}
	return out, err
}
