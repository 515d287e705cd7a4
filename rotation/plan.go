package rotation

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"sepmbot/textsafe"
)

// Path names the procedure a plan follows.
const (
	PathSingle = "single" // Broadcom steps 1-9: HTTP MSL copy, secure communication off, update, back on
	PathMulti  = "multi"  // Broadcom steps 10-13: one server at a time under failover/load balancing
)

// Step kinds.
const (
	KindAuto     = "auto"     // the bot acts through the SEPM API, then reads back
	KindManual   = "manual"   // an operator acts in the console and says done; the bot verifies
	KindWait     = "wait"     // a durable deadline plus observed client check-ins
	KindApproval = "approval" // the two-person rule
)

// Step actions: what the engine does for a step. A step's ID is unique within a plan.
const (
	ActHTTPCopy      = "http-msl-copy"  // manual: create the HTTP copy of each MSL in use
	ActAssignHTTP    = "assign-http"    // auto: assign the HTTP copies
	ActApproval      = "approval"       // approval before secure communication goes off
	ActDisableSecure = "disable-secure" // auto: secure communication off everywhere
	ActWait          = "wait"           // wait for every online client to take the current policy
	ActCert          = "cert"           // manual: update one server's certificate; bot verifies by TLS
	ActEnableSecure  = "enable-secure"  // auto: secure communication back on
	ActRestoreMSL    = "restore-msl"    // auto: re-assign the original MSLs
	ActStraggler     = "straggler"      // wait: keep the last server on the old certificate
	ActReport        = "report"         // auto: clients never seen since the change
)

// DefaultStraggler is how long the multi-server path keeps the last server on the old
// certificate so that away clients can come back (the seed's 90 days).
const DefaultStraggler = 90 * 24 * time.Hour

// MinUnapprovedStraggler is the shortest straggler window that needs no approval.
const MinUnapprovedStraggler = 30 * 24 * time.Hour

// StragglerReminder is when, inside the straggler window, the bot reminds the channel.
const StragglerReminder = 30 * 24 * time.Hour

// ServerRef is one management server of the site, as configured for the bot
// (--sepm-server NAME=HOST:PORT): its name and the address of its client port (443),
// where the bot verifies the certificate by a TLS handshake.
type ServerRef struct {
	Name       string `json:"name"`
	ClientAddr string `json:"client_addr,omitempty"`
}

// Inventory is what the planner needs to know about a site, read through the SEPM API.
type Inventory struct {
	Site           string            `json:"site"`
	ManagerVersion string            `json:"manager_version"`
	ServerCount    int               `json:"server_count"` // rows of admin/servers
	Servers        []ServerRef       `json:"servers"`      // configured servers (names, probe addresses)
	Groups         []GroupInfo       `json:"groups"`
	Targets        []Target          `json:"targets"` // every location of every non-inheriting group
	ClientsTotal   int               `json:"clients_total"`
	ClientsOnline  int               `json:"clients_online"`
	Clients142     int               `json:"clients_14_2"`
	ClientVersions map[string]int    `json:"client_versions"`
	ServersSeen    map[string]int    `json:"servers_seen"` // lastServerName -> clients
	Replicated     bool              `json:"replicated"`
	Extra          map[string]string `json:"extra,omitempty"`
}

// GroupInfo is one client group.
type GroupInfo struct {
	ID       string `json:"id"`
	Path     string `json:"full_path"`
	Inherits bool   `json:"inherits"`
	Serial   string `json:"policy_serial"`
}

// Target is one group/location whose settings the rotation changes, with the original
// values recorded when the rotation started (the snapshot the abort and the last steps
// restore).
type Target struct {
	GroupID    string `json:"group_id"`
	LocationID string `json:"location_id"`
	Path       string `json:"full_path"`
	Location   string `json:"location"`
	MSL        string `json:"msl"`
	Secure     bool   `json:"secure_communications"`
	// SecureUnknown: SEPM's settings carried no secure_communications field, so Secure
	// says nothing (it is not "off"). The planner refuses such a target.
	SecureUnknown    bool   `json:"secure_unknown,omitempty"`
	HeartbeatSeconds int    `json:"heartbeat_seconds"`
	Mode             string `json:"mode"`
}

// Key identifies the target as "group/location".
func (t Target) Key() string { return t.GroupID + "/" + t.LocationID }

// PlanOptions are the operator's choices for a plan.
type PlanOptions struct {
	Mode            string            `json:"mode"`     // "", "auto", "single" or "multi"
	MinWait         time.Duration     `json:"min_wait"` // floor of every heartbeat wait
	Straggler       time.Duration     `json:"straggler"`
	StragglerSet    bool              `json:"straggler_set"`
	NewCerts        map[string]string `json:"new_certs,omitempty"` // server name ("" = any) -> expected SHA-256
	DamagedButValid bool              `json:"damaged_but_valid"`
	HTTPPort        int               `json:"http_port"` // port of the HTTP MSL copy, default 8014
	// SingleApprover records that the bot runs with --approvals 1
	// --allow-single-approver: one person other than the requester can approve turning
	// secure communication off. The chat layer sets it and the card says so; the
	// planner ignores it.
	SingleApprover bool `json:"single_approver,omitempty"`
}

// PlanStep is one step of a plan.
type PlanStep struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Kind     string `json:"kind"`
	SeedStep string `json:"seed_step"`
	Action   string `json:"action"`
	Server   string `json:"server,omitempty"`
	// WaitSeconds is the floor of a wait step (heartbeat waits: max(3 x heartbeat, min-wait)).
	WaitSeconds int64 `json:"wait_seconds,omitempty"`
}

// Plan is the planner's output: the path, why, and every step.
type Plan struct {
	Site             string     `json:"site"`
	Path             string     `json:"path"`
	Reason           string     `json:"reason"`
	ManagerVersion   string     `json:"manager_version"`
	Servers          []string   `json:"servers"`
	GroupsToChange   []Target   `json:"groups_to_change"`
	ClientsTotal     int        `json:"clients_total"`
	Clients142       int        `json:"clients_14_2"`
	HeartbeatSeconds int        `json:"heartbeat_seconds"`
	WaitSeconds      int64      `json:"wait_seconds"`
	StragglerSeconds int64      `json:"straggler_seconds,omitempty"`
	HTTPPort         int        `json:"http_port"`
	Steps            []PlanStep `json:"steps"`
	Notes            []string   `json:"notes"`
}

// ErrDisasterRecovery is returned for a damaged-but-valid certificate: the seed says
// disaster recovery may be the better practice, so the planner stops there.
var ErrDisasterRecovery = errors.New("the certificate is damaged but still valid: disaster recovery is the better practice (restore the server from its recovery file) rather than a rotation; sepmbot stops here")

// MajorVersion returns the major number of a version string such as "14.3.25029.9000",
// or 0 when it has none.
func MajorVersion(v string) int {
	head, _, _ := strings.Cut(strings.TrimSpace(v), ".")
	n, err := strconv.Atoi(head)
	if err != nil {
		return 0
	}
	return n
}

// ErrUnknownManagerVersion is returned by MakePlan when the manager's version cannot be
// read as a SEPM version sepmbot knows: the path (12.x starts at step 6, 14.x at step 1)
// depends on it, so the planner does not guess.
var ErrUnknownManagerVersion = errors.New("plan refused: the manager version")

// ParseManagerVersion reads a SEPM manager version such as "14.3.25029.9000" or
// "12.1.7454.7000" (at least major.minor, every part a number) and returns its major
// number. Only the majors whose procedure sepmbot knows (12 and 14) are accepted.
func ParseManagerVersion(v string) (int, error) {
	v = strings.TrimSpace(v)
	parts := strings.Split(v, ".")
	bad := len(parts) < 2
	for _, p := range parts {
		if p == "" || len(p) > 9 || strings.Trim(p, "0123456789") != "" {
			bad = true
		}
	}
	if bad {
		return 0, fmt.Errorf("%w %q cannot be parsed (want a SEPM version such as 14.3.25029.9000); check GET /sepm/api/v1/version and the SEPM URL", ErrUnknownManagerVersion, v)
	}
	major, _ := strconv.Atoi(parts[0])
	if major != 12 && major != 14 {
		return 0, fmt.Errorf("%w %s is not one sepmbot knows the procedure for (SEPM 12.1 or 14.x)", ErrUnknownManagerVersion, v)
	}
	return major, nil
}

// ErrSecureUnknown is returned by MakePlan when SEPM's settings of a target carry no
// secure_communications field: sepmbot cannot tell whether secure communication is on
// there, and must not read the silence as "off".
var ErrSecureUnknown = errors.New("plan refused: secure_communications missing")

// unknownSecureErr names the targets whose secure communication setting is unknown.
func unknownSecureErr(targets []Target) error {
	var names []string
	for _, t := range targets {
		if t.SecureUnknown {
			names = append(names, textsafe.Line(t.Path)+" / "+textsafe.Line(t.Location))
		}
	}
	if len(names) == 0 {
		return nil
	}
	n := len(names)
	more := ""
	if n > 10 {
		names, more = names[:10], fmt.Sprintf(" and %d more", n-10)
	}
	return fmt.Errorf("%w: SEPM's settings of %s%s carry no secure_communications field, so sepmbot cannot tell whether secure communication is on there; check that the SEPM account may read the communication settings (and the SEPM version), then plan again", ErrSecureUnknown, strings.Join(names, ", "), more)
}

// Is142 reports whether an agent version is 14.2.x, which must use the single-server
// procedure (every 14.2.x is treated as affected, the safe reading of the KB).
func Is142(v string) bool {
	return strings.HasPrefix(strings.TrimSpace(v), "14.2.") || strings.TrimSpace(v) == "14.2"
}

// MakePlan turns an inventory into a plan. It is pure.
func MakePlan(inv Inventory, opts PlanOptions) (Plan, error) {
	if opts.DamagedButValid {
		return Plan{}, ErrDisasterRecovery
	}
	if len(inv.Targets) == 0 {
		return Plan{}, errors.New("plan: the site has no group/location settings to read; check the SEPM account's rights")
	}
	major, err := ParseManagerVersion(inv.ManagerVersion)
	if err != nil {
		return Plan{}, err
	}
	if err := unknownSecureErr(inv.Targets); err != nil {
		return Plan{}, err
	}
	mode := opts.Mode
	if mode == "" {
		mode = "auto"
	}
	if mode != "auto" && mode != PathSingle && mode != PathMulti {
		return Plan{}, fmt.Errorf("plan: unknown mode %q (auto, single or multi)", mode)
	}
	httpPort := opts.HTTPPort
	if httpPort == 0 {
		httpPort = 8014
	}
	servers := make([]string, 0, len(inv.Servers))
	for _, s := range inv.Servers {
		servers = append(servers, s.Name)
	}
	serverCount := max(inv.ServerCount, len(servers))

	p := Plan{
		Site:           inv.Site,
		ManagerVersion: inv.ManagerVersion,
		Servers:        servers,
		GroupsToChange: append([]Target(nil), inv.Targets...),
		ClientsTotal:   inv.ClientsTotal,
		Clients142:     inv.Clients142,
		HTTPPort:       httpPort,
	}
	sort.Slice(p.GroupsToChange, func(i, j int) bool {
		a, b := p.GroupsToChange[i], p.GroupsToChange[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Location < b.Location
	})
	for _, t := range inv.Targets {
		p.HeartbeatSeconds = max(p.HeartbeatSeconds, t.HeartbeatSeconds)
	}
	if p.HeartbeatSeconds <= 0 {
		p.HeartbeatSeconds = 300 // SEPM's default heartbeat
	}
	wait := 3 * time.Duration(p.HeartbeatSeconds) * time.Second
	if opts.MinWait > wait {
		wait = opts.MinWait
	}
	p.WaitSeconds = int64(wait / time.Second)

	// Path choice.
	distinctSeen := 0
	for name, n := range inv.ServersSeen {
		if name != "" && n > 0 {
			distinctSeen++
		}
	}
	switch {
	case serverCount <= 1:
		p.Path = PathSingle
		p.Reason = "the site has one management server"
		if mode == PathMulti {
			p.Reason += "; the multi-server path needs at least two servers with failover or load balancing, so it is refused"
		}
	case inv.Clients142 > 0:
		p.Path = PathSingle
		p.Reason = fmt.Sprintf("%d clients run 14.2.x, which cannot take a new certificate through the multi-server method (Broadcom step 10 and the KB)", inv.Clients142)
		if mode == PathMulti {
			p.Reason += "; --mode multi is refused"
		}
	case len(servers) < serverCount:
		p.Path = PathSingle
		p.Reason = fmt.Sprintf("SEPM reports %d servers but only %d are configured with --sepm-server; the multi-server path must verify every server", serverCount, len(servers))
	case mode == PathSingle:
		p.Path = PathSingle
		p.Reason = "the single-server procedure was asked for (--mode single)"
	case mode == PathMulti:
		p.Path = PathMulti
		p.Reason = fmt.Sprintf("%d servers, no 14.2.x clients, and the operator states that failover or load balancing is in place (--mode multi)", serverCount)
	case distinctSeen >= 2:
		p.Path = PathMulti
		p.Reason = fmt.Sprintf("%d servers, no 14.2.x clients, and clients check in to %d different servers, so load balancing or failover is in place", serverCount, distinctSeen)
	default:
		p.Path = PathSingle
		p.Reason = fmt.Sprintf("%d servers, but clients check in to only one of them, so failover or load balancing is not evident; pass --mode multi if every MSL lists every server", serverCount)
	}

	v14 := major >= 14
	hb := p.WaitSeconds
	if p.Path == PathSingle {
		if v14 {
			p.Steps = append(p.Steps,
				PlanStep{ID: "http-msl", Title: fmt.Sprintf("Create the HTTP copy (port %d) of every management server list in use", httpPort), Kind: KindManual, SeedStep: "1-4", Action: ActHTTPCopy},
				PlanStep{ID: "assign-http", Title: "Assign the HTTP copies to every group and location", Kind: KindAuto, SeedStep: "5", Action: ActAssignHTTP},
			)
		}
		p.Steps = append(p.Steps,
			PlanStep{ID: "approval", Title: "Two-person approval to disable secure communication", Kind: KindApproval, SeedStep: "6-7", Action: ActApproval},
			PlanStep{ID: "disable-secure", Title: "Disable secure communication in every group and location, non-inheriting ones included", Kind: KindAuto, SeedStep: "6-7", Action: ActDisableSecure},
			PlanStep{ID: "wait-disable", Title: "Wait at least three heartbeats in all groups", Kind: KindWait, SeedStep: "8", Action: ActWait, WaitSeconds: hb},
		)
		for _, s := range servers {
			p.Steps = append(p.Steps, PlanStep{ID: "cert-" + s, Title: "Update the server certificate on " + s, Kind: KindManual, SeedStep: "9", Action: ActCert, Server: s})
		}
		if len(servers) == 0 {
			p.Steps = append(p.Steps, PlanStep{ID: "cert", Title: "Update the server certificate", Kind: KindManual, SeedStep: "9", Action: ActCert})
		}
		p.Steps = append(p.Steps,
			PlanStep{ID: "wait-cert", Title: "Wait for clients to fetch the new certificate", Kind: KindWait, SeedStep: "after 9", Action: ActWait, WaitSeconds: hb},
			PlanStep{ID: "enable-secure", Title: "Re-enable secure communication", Kind: KindAuto, SeedStep: "after 9", Action: ActEnableSecure},
			PlanStep{ID: "wait-enable", Title: "Wait at least three heartbeats", Kind: KindWait, SeedStep: "after 9", Action: ActWait, WaitSeconds: hb},
		)
		if v14 {
			p.Steps = append(p.Steps,
				PlanStep{ID: "restore-msl", Title: "Re-assign the original management server lists", Kind: KindAuto, SeedStep: "after 9", Action: ActRestoreMSL},
				PlanStep{ID: "wait-restore", Title: "Wait for clients to take the original lists", Kind: KindWait, SeedStep: "after 9", Action: ActWait, WaitSeconds: hb},
			)
		}
	} else {
		straggler := opts.Straggler
		if !opts.StragglerSet {
			straggler = DefaultStraggler
		}
		p.StragglerSeconds = int64(straggler / time.Second)
		if straggler < MinUnapprovedStraggler {
			// A short window removes the protection of away clients: approvers approve
			// it (it is part of the approved action) before the first certificate update.
			p.Steps = append(p.Steps, PlanStep{ID: "approval", Title: fmt.Sprintf("Two-person approval for a straggler window of %s (under %s)", humanDuration(straggler), humanDuration(MinUnapprovedStraggler)), Kind: KindApproval, SeedStep: "offline clients", Action: ActApproval})
			p.Notes = append(p.Notes, fmt.Sprintf("The straggler window (%s) is shorter than %s: clients away longer may be orphaned, so two approvers must approve it before the first certificate update.", humanDuration(straggler), humanDuration(MinUnapprovedStraggler)))
		}
		for i, s := range servers {
			last := i == len(servers)-1
			if last {
				p.Steps = append(p.Steps, PlanStep{ID: "straggler", Title: fmt.Sprintf("Keep %s on the old certificate for %s so away clients can come back", s, humanDuration(straggler)), Kind: KindWait, SeedStep: "offline clients", Action: ActStraggler, Server: s, WaitSeconds: p.StragglerSeconds})
			}
			p.Steps = append(p.Steps,
				PlanStep{ID: "cert-" + s, Title: "Update the server certificate on " + s, Kind: KindManual, SeedStep: step11or13(i), Action: ActCert, Server: s},
				PlanStep{ID: "wait-" + s, Title: "Wait at least three heartbeats after " + s, Kind: KindWait, SeedStep: "12", Action: ActWait, Server: s, WaitSeconds: hb},
			)
		}
	}
	p.Steps = append(p.Steps, PlanStep{ID: "report", Title: "Report clients not seen since the change", Kind: KindAuto, SeedStep: "offline clients", Action: ActReport})

	p.Notes = append(p.Notes, fmt.Sprintf("Each wait is max(3 x the longest heartbeat (%ds), --min-wait) = %s. Broadcom's KB recommends at least 24h (up to a week) in production: use --min-wait 24h.", p.HeartbeatSeconds, humanDuration(wait)))
	if !v14 {
		p.Notes = append(p.Notes, "The manager is 12.x: steps 1-5 (HTTP copy of the MSL) do not apply; the procedure starts at step 6.")
	}
	if p.Path == PathSingle {
		p.Notes = append(p.Notes, "Secure communication goes off only after two approvers say yes; the plan lists every group/location it changes, non-inheriting ones included.")
	}
	if inv.Replicated {
		p.Notes = append(p.Notes, "The site replicates with another site: break replication in the console before the certificate update (no API does it); the bot asks for it at the certificate step.")
	}
	p.Notes = append(p.Notes, "After each certificate update SEPM writes a new disaster-recovery file (Server Private Key Backup\\recovery_*.zip): archive it.")
	return p, nil
}

func step11or13(i int) string {
	if i == 0 {
		return "11"
	}
	return "12-13"
}

// Lists are the management server lists the plan's targets use, each once, sorted:
// the lists whose HTTP copy Broadcom step 2 makes.
func (p Plan) Lists() []string {
	var out []string
	for _, t := range p.GroupsToChange {
		if t.MSL != "" && !slices.Contains(out, t.MSL) {
			out = append(out, t.MSL)
		}
	}
	slices.Sort(out)
	return out
}

// StepIndex returns the index of the step with the given id, or -1.
func (p Plan) StepIndex(id string) int {
	for i, s := range p.Steps {
		if s.ID == id {
			return i
		}
	}
	return -1
}

// humanDuration prints d compactly ("90d", "1h30m", "15s").
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	s := d / time.Second
	for _, part := range []struct {
		n    time.Duration
		unit string
	}{{days, "d"}, {h, "h"}, {m, "m"}, {s, "s"}} {
		if part.n > 0 {
			fmt.Fprintf(&b, "%d%s", part.n, part.unit)
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
