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
}

// TestCrashRecovery runs the engine in a child process and SIGKILLs it at 20 random
// points of a rotation, restarting it each time on the same bbolt file. The rotation
// must complete with nobody orphaned and no SEPM change applied twice.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs a rotation across 20 process kills")
	}
	site := startSim(t, sim.Options{Clients: 500, Servers: 1, Groups: 6, OfflinePercent: 5, Seed: 31, Heartbeat: 3 * time.Second})
	cfg := crashConfig{DB: filepath.Join(t.TempDir(), "sepmbot.db"), URL: site.URL(), APIFP: site.APIFingerprint(), Servers: serverRefs(site), NewFPs: map[string]string{}}
	for _, s := range site.Servers() {
		cfg.NewFPs[s.Name] = s.NextFingerprint
	}
	raw, _ := json.Marshal(cfg)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("kill schedule seed %d", seed)

	start := func() (*exec.Cmd, <-chan string, <-chan error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw))
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

	kills, finished := 0, false
	var transcript, killedAt []string
	for kills < 20 && !finished {
		cmd, lines, exited := start()
		// Kill either right after the k-th announcement plus a short random delay (a
		// point just after a transition) or at a random time after the start (a point
		// in the middle of a step, a wait, or the start-up itself).
		// Kill points are counted from the moment the child's engine is up (READY):
		// after a random 0-1.2 s (inside steps and waits), or, for half the runs,
		// sooner when the k-th announcement comes: up to 40 ms after it (just after a
		// transition, while the next step acts).
		wantLines := 1 + rng.IntN(3)
		delay := time.Duration(rng.IntN(40)) * time.Millisecond
		byTime := rng.IntN(2) == 0
		ready := false
		step := "start-up"
		var timer <-chan time.Time
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case l := <-lines:
				transcript = append(transcript, l)
				if f := strings.Fields(l); len(f) >= 4 && f[0] == "UPDATE" {
					step = f[3]
				}
				switch {
				case l == "READY":
					ready = true
					timer = time.After(time.Duration(rng.IntN(1200)) * time.Millisecond)
				case ready && !byTime && strings.HasPrefix(l, "EVENT "):
					wantLines--
					if wantLines == 0 {
						timer = time.After(delay)
					}
				}
			case <-timer:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				kills++
				killedAt = append(killedAt, step)
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
	if kills < 20 {
		t.Fatalf("the rotation finished after only %d kills; the test must kill it 20 times", kills)
	}
	// Let it run to the end.
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
	db, err := store.Open(cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var r Rotation
	if err := db.View(context.Background(), func(tx *store.Tx) error {
		var err error
		r, err = loadTx(tx, "R1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusCompleted {
		t.Fatalf("status %s: %s", r.Status, r.LastError)
	}
	changes := auditChanges(t, db, "R1")
	for k, n := range changes {
		if n != 1 {
			t.Errorf("SEPM change %s applied %d times", k, n)
		}
	}
	client := clientFor(t, site)
	if f := fleet(t, client); f.Orphaned != 0 {
		t.Errorf("orphaned = %d after %d kills", f.Orphaned, kills)
	}
	assertRestored(t, client, r)
	t.Logf("rotation completed across %d SIGKILLs (during: %s); %d SEPM changes, none twice", kills, strings.Join(killedAt, " "), len(changes))
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
	eng, err := NewEngine(Config{
		Store: db, SEPM: client, Notifier: notifier, Site: "site-a", APIAddr: strings.TrimPrefix(cfg.URL, "https://"),
		Servers: cfg.Servers, IsApprover: func(u string) bool { return approvers[u] }, PollInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); eng.Wait() }()
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
			if r.Status != StatusCompleted {
				t.Fatalf("rotation ended %s: %s", r.Status, r.LastError)
			}
			fmt.Println("FINISHED", r.Status)
			return
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
