package rotation

import (
	"strings"
	"testing"
	"time"

	"sepmbot/sepm/sim"
)

// abortAt runs a rotation to step at, aborts it there and runs the revert to its
// first wait, then lets tamper change SEPM and returns the rotation once it paused.
func abortAt(t *testing.T, g *rig, opts PlanOptions, at string, tamper func(r Rotation)) View {
	t.Helper()
	r := g.rotate(opts)
	if _, err := (&operator{g: g, id: r.ID, stop: stopAt(at)}).run(g.ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.eng.Abort(g.ctx, "console:alice", r.ID, "test"); err != nil {
		t.Fatal(err)
	}
	return tamperUntilPaused(t, g, r.ID, "revert-wait-1", tamper)
}

// TestRevertStopsOnUnexpectedCertificate: during an abort's revert, a server's
// certificate changes to one nobody announced; the revert stops before it
// re-enables secure communication, names the server, says `resume` (not `abort`),
// and `resume` checks again.
func TestRevertStopsOnUnexpectedCertificate(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 100, Servers: 2, Groups: 4, Seed: 91}})
	v := abortAt(t, g, PlanOptions{Mode: PathSingle}, "wait-disable", func(Rotation) {
		if _, err := g.site.InstallUnexpectedCertificate("sepm-02"); err != nil {
			t.Fatal(err)
		}
	})
	s, _, _ := v.Rotation.Current()
	if v.Rotation.Status != StatusPaused || s.ID != "revert-enable-secure" || !strings.Contains(v.Rotation.LastError, "server sepm-02 presents certificate") {
		t.Fatalf("%s at %s: %q (want a stop before revert-enable-secure naming sepm-02)", v.Rotation.Status, s.ID, v.Rotation.LastError)
	}
	if g.posted("The revert is paused; `resume "+v.Rotation.ID+"` checks again.") != 1 {
		t.Errorf("the stop does not say how to go on from a revert")
	}
	for k, n := range auditChanges(t, g.db, v.Rotation.ID) {
		if strings.HasPrefix(k, "revert-enable-secure ") && n > 0 {
			t.Fatalf("secure communication re-enabled (%s) while a server presents an unknown certificate", k)
		}
	}
	if err := g.eng.Resume(g.ctx, "console:alice", v.Rotation.ID); err != nil {
		t.Fatal(err)
	}
	v = g.waitFor(v.Rotation.ID, 30*time.Second, "paused again on resume", func(v View) bool { return v.Rotation.Status == StatusPaused })
	if !strings.Contains(v.Rotation.LastError, "server sepm-02 presents certificate") {
		t.Errorf("resume did not check again: %q", v.Rotation.LastError)
	}
}

// TestRevertChecksWhatItRestores: during the revert, a colleague puts secure
// communication back on in one location (the original value: the revert takes it as
// done) and assigns a third management server list in another (neither what the
// bot left nor the original): the revert stops before re-enabling and names that
// location; put back, `resume` finishes the revert with the colleague's change
// audited as already so.
func TestRevertChecksWhatItRestores(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 100, Servers: 1, Groups: 4, Seed: 92}})
	var restored, moved Target
	third := ""
	v := abortAt(t, g, PlanOptions{}, "wait-disable", func(r Rotation) {
		for _, tg := range r.Plan.GroupsToChange {
			switch {
			case tg.Secure && restored.GroupID == "":
				restored = tg
			case tg.MSL != "" && moved.GroupID == "" && tg.GroupID != restored.GroupID:
				moved = tg
			}
		}
		if restored.GroupID == "" || moved.GroupID == "" {
			t.Fatalf("the plan lacks two groups to tamper with: %+v", r.Plan.GroupsToChange)
		}
		on := true
		if err := g.site.ChangeInConsole(sim.ConsoleChange{GroupID: restored.GroupID, LocationID: restored.LocationID, SecureCommunications: &on}); err != nil {
			t.Fatal(err)
		}
		var err error
		if third, err = g.site.CopyMSLAsHTTP(moved.MSL, 8015); err != nil {
			t.Fatal(err)
		}
		if err := g.site.ChangeInConsole(sim.ConsoleChange{GroupID: moved.GroupID, LocationID: moved.LocationID, MSL: &third}); err != nil {
			t.Fatal(err)
		}
	})
	s, _, _ := v.Rotation.Current()
	if v.Rotation.Status != StatusPaused || s.ID != "revert-enable-secure" || !strings.Contains(v.Rotation.LastError, targetLabel(moved)) || !strings.Contains(v.Rotation.LastError, third) {
		t.Fatalf("%s at %s: %q (want a stop before revert-enable-secure naming %s and %q)", v.Rotation.Status, s.ID, v.Rotation.LastError, targetLabel(moved), third)
	}
	if strings.Contains(v.Rotation.LastError, targetLabel(restored)+":") {
		t.Errorf("the colleague's restore of the original value was taken for drift: %q", v.Rotation.LastError)
	}
	if n := auditChanges(t, g.db, v.Rotation.ID); len(keysWithPrefix(n, "revert-")) != 0 {
		t.Fatalf("the revert changed SEPM before the stop: %v", n)
	}
	if err := g.site.ChangeInConsole(sim.ConsoleChange{GroupID: moved.GroupID, LocationID: moved.LocationID, MSL: &moved.MSL}); err != nil {
		t.Fatal(err)
	}
	if err := g.eng.Resume(g.ctx, "console:alice", v.Rotation.ID); err != nil {
		t.Fatal(err)
	}
	v, err := (&operator{g: g, id: v.Rotation.ID}).run(g.ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusAborted {
		t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	recs, err := g.db.Audit(g.ctx, v.Rotation.ID)
	if err != nil {
		t.Fatal(err)
	}
	already := false
	for _, a := range recs {
		if a.Kind == "sepm-already" && a.Step == "revert-enable-secure" && a.Data["group"] == restored.GroupID && a.Data["location"] == restored.LocationID {
			already = true
		}
	}
	if !already {
		t.Errorf("the colleague's restore of %s is not audited as already so", targetLabel(restored))
	}
	if f := fleet(t, g.client); f.Orphaned != 0 {
		t.Errorf("orphaned = %d", f.Orphaned)
	}
}

func keysWithPrefix(m map[string]int, p string) []string {
	var out []string
	for k, n := range m {
		if strings.HasPrefix(k, p) && n > 0 {
			out = append(out, k)
		}
	}
	return out
}

// TestRevertAcceptsTheCertificateOfTheInterruptedStep: aborted at the certificate
// step, the operator updates the certificate anyway (the abort says that is fine:
// clients take it during the first revert wait). The revert accepts either
// certificate on that server and finishes with nobody orphaned.
func TestRevertAcceptsTheCertificateOfTheInterruptedStep(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 100, Servers: 1, Groups: 4, Seed: 93}})
	v := abortAt(t, g, PlanOptions{}, "cert-sepm-01", func(Rotation) {
		if _, err := g.site.UpdateCertificate("sepm-01"); err != nil {
			t.Fatal(err)
		}
	})
	if v.Rotation.Status != StatusAborted {
		t.Fatalf("%s: %q (want the revert to finish)", v.Rotation.Status, v.Rotation.LastError)
	}
	if g.posted("presents certificate") != 0 {
		t.Errorf("the revert stopped on the certificate the abort said was fine")
	}
	if f := fleet(t, g.client); f.Orphaned != 0 {
		t.Errorf("orphaned = %d", f.Orphaned)
	}
}
