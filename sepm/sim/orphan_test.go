package sim

import (
	"strings"
	"testing"
)

func TestNaiveOrderOrphansEveryOnlineClient(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 300, OfflinePercent: 10})
	tm.heartbeats(2)
	tm.updateCert("sepm-01")
	tm.heartbeats(2)
	f := tm.fleet()
	if f.Orphaned != 270 || f.Offline != 30 || f.OK != 0 {
		t.Fatalf("naive order: %+v orphaned, %d offline, %d ok; want 270/30/0", f.Orphaned, f.Offline, f.OK)
	}
	if len(f.OrphanedClients) != 270 {
		t.Fatalf("orphaned list has %d entries", len(f.OrphanedClients))
	}
	// Orphaned clients never check in again.
	before := tm.clients[0].lastUpdate
	tm.heartbeats(3)
	if tm.clients[0].orphaned && tm.clients[0].lastUpdate != before {
		t.Fatal("an orphaned client checked in")
	}
}

// singleServerOrder runs the seed's single-server procedure on the model.
func singleServerOrder(tm *testModel) {
	httpMSL, err := tm.copyMSLAsHTTP(defaultMSLName, 0)
	if err != nil {
		tm.t.Fatal(err)
	}
	if err := tm.assignMSL(httpMSL, nil); err != nil {
		tm.t.Fatal(err)
	}
	tm.patchAll(secureCfg(false))
	tm.settle()
	tm.heartbeats(3)
	for _, s := range tm.servers {
		tm.updateCert(s.name)
	}
	tm.settle()
	tm.heartbeats(3)
	tm.patchAll(secureCfg(true))
	tm.settle()
	tm.heartbeats(3)
	if n, err := tm.replaceMSL(defaultMSLName, httpMSL); err != nil || n == 0 {
		tm.t.Fatalf("re-assign: %d, %v", n, err)
	}
	tm.settle()
	tm.heartbeats(3)
}

func TestSingleServerOrderOrphansNobody(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 300, Versions: "14.3=50,14.2=20,14.x=10,12.1=20"})
	singleServerOrder(tm)
	f := tm.fleet()
	if f.Orphaned != 0 || f.OK != 300 {
		t.Fatalf("single-server order: %+v", f)
	}
	if bs := f.ByServer["sepm-01"]; bs.ClientsStale != 0 || bs.ClientsCurrent != 300 {
		t.Fatalf("by server: %+v", bs)
	}
}

func TestMultiServerOrderOrphansOnly142(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 400, Servers: 2, Versions: "14.3=70,14.2=10,14.x=10,12.1=10"})
	for _, s := range tm.servers {
		tm.updateCert(s.name)
		tm.settle()
		tm.heartbeats(3)
	}
	f := tm.fleet()
	if f.Orphaned != 40 {
		t.Fatalf("multi-server order: %d orphaned, want the 40 14.2 clients", f.Orphaned)
	}
	for _, o := range f.OrphanedClients {
		if !strings.HasPrefix(o.AgentVersion, "14.2.") {
			t.Fatalf("orphaned %s runs %s", o.ComputerName, o.AgentVersion)
		}
	}
}

func TestFailoverOrderOrphansNobody(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 200, Servers: 3, Failover: FailoverPriority, Versions: "14.3=100"})
	for _, s := range tm.servers {
		tm.updateCert(s.name)
		tm.settle()
		tm.heartbeats(3)
	}
	if f := tm.fleet(); f.Orphaned != 0 {
		t.Fatalf("failover order: %+v", f)
	}
}

func TestOrphaningRuleHTTPSAnd12x(t *testing.T) {
	// Secure communication off but the MSL still HTTPS: 14.x clients check the
	// certificate anyway (and are orphaned), 12.1 clients do not.
	tm := newTestModel(t, Options{Clients: 200, Versions: "14.3=50,12.1=50"})
	tm.patchAll(secureCfg(false))
	tm.settle()
	tm.updateCert("sepm-01")
	tm.heartbeats(3)
	f := tm.fleet()
	if f.Orphaned != 100 || f.OK != 100 {
		t.Fatalf("%+v", f)
	}
	for _, o := range f.OrphanedClients {
		if !strings.HasPrefix(o.AgentVersion, "14.") {
			t.Fatalf("orphaned %s", o.AgentVersion)
		}
	}
	// HTTP but secure communication on: the first rule orphans everyone.
	tm2 := newTestModel(t, Options{Clients: 100, Versions: "14.3=50,12.1=50"})
	name, _ := tm2.copyMSLAsHTTP(defaultMSLName, 0)
	if err := tm2.assignMSL(name, nil); err != nil {
		t.Fatal(err)
	}
	tm2.settle()
	tm2.updateCert("sepm-01")
	tm2.heartbeats(3)
	if f := tm2.fleet(); f.Orphaned != 100 {
		t.Fatalf("HTTP with secure on: %+v", f)
	}
}

func Test142KeepsCertificatesUnlessSecureOff(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 50, Servers: 2, Versions: "14.2=100"})
	tm.updateCert("sepm-01")
	tm.settle()
	// 14.2 clients took the new policy (via sepm-02) but kept their old certificates.
	for i := range tm.clients {
		c := &tm.clients[i]
		if c.orphaned || c.certs[0] == tm.certs[0] {
			t.Fatalf("client %s: orphaned=%v current cert for sepm-01=%v", c.name, c.orphaned, c.certs[0] == tm.certs[0])
		}
	}
	if bs := tm.fleet().ByServer["sepm-01"]; bs.ClientsStale != 50 {
		t.Fatalf("sepm-01: %+v", bs)
	}
}
