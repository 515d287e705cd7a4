package sim

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options configure a simulated site. The zero value of every field selects its default.
type Options struct {
	// Listen is the API listener address (it stands for SEPM's port 8446); default
	// "127.0.0.1:0".
	Listen string
	// Clients is the fleet size (default 500), Servers the number of management
	// servers (default 1), Groups the number of groups including "My Company"
	// (default 8).
	Clients, Servers, Groups int
	// NonInheriting is the number of groups besides the root that do not inherit
	// their policy; default min(2, Groups-1), negative for none.
	NonInheriting int
	// Heartbeat is the initial heartbeat of every group/location, whole seconds
	// (at least 1 s); default 2 s.
	Heartbeat time.Duration
	// Versions is the share of agent versions, e.g. "14.3=80,14.2=10,12.1=10"
	// (percentages; keys 14.3, 14.2, 14.x (14.0/14.1) and 12.1). Default
	// "14.3=80,14.2=10,12.1=10", or "12.1=100" for a 12.x manager.
	Versions string
	// OfflinePercent is the share of clients offline at the start.
	OfflinePercent int
	// User and Password are the REST credentials; User defaults to "admin". A
	// password is required.
	User, Password string
	// Seed makes the fleet reproducible: the same seed gives the same fleet.
	Seed int64
	// ManagerVersion is the version the manager reports; default "14.3.25029.9000".
	// "12.1.7454.7000" simulates a 12.x manager.
	ManagerVersion string
	// Failover is how the default MSL lists the servers: "loadbalance" (every server
	// priority 1; the default), "failover" (server i priority i) or "none" (only the
	// first server).
	Failover string
	// RemoteLocationGroups is the number of non-inheriting groups that also have a
	// "Remote VPN" location with its own settings; default 1, negative for none.
	RemoteLocationGroups int
	// PolicyFetch is the probability that a check-in which finds a newer policy
	// downloads it (a busy manager or a flaky link fails the rest); a failed
	// download is retried at the next heartbeat. Default 1 (every download works);
	// `sepmbot sim` and the demo use 0.7.
	PolicyFetch float64
	// Jitter spreads each heartbeat over interval x [1-Jitter, 1+Jitter]; default
	// 0.1, at most 0.9; `sepmbot sim` and the demo use 0.5.
	Jitter float64
	// RoamingPercent is the share of clients (laptops, VPN) that drop offline at
	// random for one to two and a half of their heartbeats (see roamChance); default
	// 0; `sepmbot sim` and the demo use 10.
	RoamingPercent int
	// Steady starts the fleet as if it had run for days: each online client's last
	// and next check-in fall where a steady fleet's would (see steadyPhase), and
	// roamers are away in their steady share (two in three), so check-ins come at a
	// steady rate from the first second. Without it (the default) every online
	// client checked in within the last heartbeat and checks in within the next
	// one, and every roamer is present. `sepmbot sim` and the bench start steady;
	// the demo and the tests start fresh. A site restored from StateFile keeps its
	// own state.
	Steady bool
	// ServerListen are the addresses of the servers' client-port listeners (they
	// stand for port 443), by server; missing entries take "127.0.0.1:0". A site
	// restarted on the same addresses is reachable where the old one was.
	ServerListen []string
	// StateFile keeps the site across restarts (see state.go): a bbolt file made on
	// the first start and continued on the next; empty for a site that lives only in
	// memory. StateInterval is how often check-ins are written (default 1 s; changes
	// are written before they are answered).
	StateFile     string
	StateInterval time.Duration
	// TokenTTL is the lifetime of a REST token (tokenExpiration); default 1 h.
	TokenTTL time.Duration
	// Logger receives the sim's log; default slog.Default().
	Logger *slog.Logger
}

// Failover modes of Options.Failover.
const (
	FailoverLoadBalance = "loadbalance"
	FailoverPriority    = "failover"
	FailoverNone        = "none"
)

// DefaultManagerVersion is the manager version the sim reports by default.
const DefaultManagerVersion = "14.3.25029.9000"

func (o Options) withDefaults() (Options, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Clients == 0 {
		o.Clients = 500
	}
	if o.Servers == 0 {
		o.Servers = 1
	}
	if o.Groups == 0 {
		o.Groups = 8
	}
	if o.Clients < 0 || o.Servers < 0 || o.Groups < 0 {
		return o, fmt.Errorf("sim: clients, servers and groups must not be negative")
	}
	if o.Servers > 99 {
		return o, fmt.Errorf("sim: at most 99 servers")
	}
	if o.NonInheriting == 0 {
		o.NonInheriting = min(2, o.Groups-1)
	}
	if o.NonInheriting < 0 {
		o.NonInheriting = 0
	}
	if o.NonInheriting > o.Groups-1 {
		return o, fmt.Errorf("sim: %d non-inheriting groups do not fit in %d groups besides the root", o.NonInheriting, o.Groups-1)
	}
	if o.RemoteLocationGroups == 0 {
		o.RemoteLocationGroups = 1
	}
	if o.RemoteLocationGroups < 0 {
		o.RemoteLocationGroups = 0
	}
	if o.RemoteLocationGroups > o.NonInheriting+1 {
		o.RemoteLocationGroups = o.NonInheriting + 1
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 2 * time.Second
	}
	o.Heartbeat = o.Heartbeat.Round(time.Second)
	if o.Heartbeat < time.Second {
		return o, fmt.Errorf("sim: heartbeat must be at least 1s")
	}
	if o.ManagerVersion == "" {
		o.ManagerVersion = DefaultManagerVersion
	}
	if o.Versions == "" {
		o.Versions = "14.3=80,14.2=10,12.1=10"
		if strings.HasPrefix(o.ManagerVersion, "12.") {
			o.Versions = "12.1=100"
		}
	}
	if o.OfflinePercent < 0 || o.OfflinePercent > 100 {
		return o, fmt.Errorf("sim: offline percent %d is not in 0..100", o.OfflinePercent)
	}
	if o.User == "" {
		o.User = "admin"
	}
	if o.Password == "" {
		return o, fmt.Errorf("sim: a REST password is required")
	}
	switch o.Failover {
	case "":
		o.Failover = FailoverLoadBalance
	case FailoverLoadBalance, FailoverPriority, FailoverNone:
	default:
		return o, fmt.Errorf("sim: unknown failover mode %q (want loadbalance, failover or none)", o.Failover)
	}
	if o.PolicyFetch == 0 {
		o.PolicyFetch = 1
	}
	if !(o.PolicyFetch > 0 && o.PolicyFetch <= 1) {
		return o, fmt.Errorf("sim: policy fetch probability %v is not in (0, 1]", o.PolicyFetch)
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if !(o.Jitter > 0 && o.Jitter <= 0.9) {
		return o, fmt.Errorf("sim: heartbeat jitter %v is not in (0, 0.9]", o.Jitter)
	}
	if o.RoamingPercent < 0 || o.RoamingPercent > 100 {
		return o, fmt.Errorf("sim: roaming percent %d is not in 0..100", o.RoamingPercent)
	}
	if len(o.ServerListen) > o.Servers {
		return o, fmt.Errorf("sim: %d server listen addresses for %d servers", len(o.ServerListen), o.Servers)
	}
	if o.StateInterval == 0 {
		o.StateInterval = time.Second
	}
	if o.StateInterval < 10*time.Millisecond {
		return o, fmt.Errorf("sim: state interval must be at least 10ms")
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = time.Hour
	}
	if o.TokenTTL < time.Second {
		return o, fmt.Errorf("sim: token lifetime must be at least 1s")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// agentBuild is one agent version the fleet may run.
type agentBuild struct {
	version, formatted string
	major              int
	is142              bool
}

// versionKeys maps a key of Options.Versions to the builds it stands for.
var versionKeys = map[string][]agentBuild{
	"14.3": {
		{version: "14.3.9816.7000", formatted: "14.3 RU7", major: 14},
		{version: "14.3.10148.8000", formatted: "14.3 RU8", major: 14},
	},
	"14.2": {
		{version: "14.2.5569.2100", formatted: "14.2 RU2 MP1", major: 14, is142: true},
		{version: "14.2.1031.0100", formatted: "14.2 MP1", major: 14, is142: true},
	},
	"14.x": {
		{version: "14.0.3929.1200", formatted: "14.0 RU1 MP2", major: 14},
		{version: "14.1.3424.1000", formatted: "14.1 RU1", major: 14},
	},
	"12.1": {
		{version: "12.1.7454.7000", formatted: "12.1 RU6 MP10", major: 12},
	},
}

type versionShare struct {
	key    string
	weight int
}

// parseVersions parses "14.3=80,14.2=10,12.1=10" into shares, in a stable order.
func parseVersions(s string) ([]versionShare, error) {
	var out []versionShare
	seen := map[string]bool{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return nil, fmt.Errorf("sim: versions: %q is not KEY=PERCENT", part)
		}
		if _, known := versionKeys[k]; !known {
			return nil, fmt.Errorf("sim: versions: unknown key %q (want 14.3, 14.2, 14.x or 12.1)", k)
		}
		if seen[k] {
			return nil, fmt.Errorf("sim: versions: %q given twice", k)
		}
		seen[k] = true
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("sim: versions: %q is not a percentage", part)
		}
		total += n
		out = append(out, versionShare{key: k, weight: n})
	}
	if total == 0 {
		return nil, fmt.Errorf("sim: versions: %q gives no clients a version", s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].key > out[j].key })
	return out, nil
}

// apportion splits n into exact counts proportional to the weights (largest remainder).
func apportion(n int, weights []int) []int {
	total := 0
	for _, w := range weights {
		total += w
	}
	counts := make([]int, len(weights))
	if total == 0 {
		return counts
	}
	type rem struct{ i, r int }
	rems := make([]rem, len(weights))
	given := 0
	for i, w := range weights {
		counts[i] = n * w / total
		given += counts[i]
		rems[i] = rem{i, n * w % total}
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; given < n; k++ {
		counts[rems[k%len(rems)].i]++
		given++
	}
	return counts
}
