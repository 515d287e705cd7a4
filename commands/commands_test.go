package commands

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fpA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// fpAColons is fpA upper case with colons between byte pairs.
var fpAColons = func() string {
	var parts []string
	for i := 0; i < len(fpA); i += 2 {
		parts = append(parts, strings.ToUpper(fpA[i:i+2]))
	}
	return strings.Join(parts, ":")
}()

const fpB = "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"

var (
	oneSite  = []string{"prod"}
	twoSites = []string{"prod", "Lab-2"}
)

// TestParseValid checks the Command each accepted input produces, for every subcommand.
func TestParseValid(t *testing.T) {
	tests := []struct {
		in    string
		sites []string
		want  Command
	}{
		// help
		{"", oneSite, Command{Name: "help"}},
		{"/sepm", oneSite, Command{Name: "help"}},
		{"/SEPM   ", oneSite, Command{Name: "help"}},
		{"/sepm help", oneSite, Command{Name: "help"}},
		{"help", nil, Command{Name: "help"}},
		{"/sepm help rotate", oneSite, Command{Name: "help", Topic: "rotate"}},
		{"help ROTATE", oneSite, Command{Name: "help", Topic: "rotate"}},
		{"help help", oneSite, Command{Name: "help", Topic: "help"}},
		{"/sepm --help", oneSite, Command{Name: "help"}},
		{"/sepm -h plan", oneSite, Command{Name: "help", Topic: "plan"}},
		{"/sepm rotate --help", oneSite, Command{Name: "help", Topic: "rotate"}},
		{"/sepm rotate prod --mode single -h", oneSite, Command{Name: "help", Topic: "rotate"}},
		{"done R7 --help", oneSite, Command{Name: "help", Topic: "done"}},
		// plan
		{"/sepm plan", oneSite, Command{Name: "plan", Site: "prod"}},
		{"plan prod", oneSite, Command{Name: "plan", Site: "prod"}},
		{"Plan PROD", oneSite, Command{Name: "plan", Site: "prod"}},
		{"plan lab-2", twoSites, Command{Name: "plan", Site: "Lab-2"}},
		{"plan --mode auto", oneSite, Command{Name: "plan", Site: "prod"}},
		{"plan --mode=Single prod", oneSite, Command{Name: "plan", Site: "prod", Mode: "single"}},
		{"plan prod --mode multi --min-wait 10m", oneSite, Command{Name: "plan", Site: "prod", Mode: "multi", MinWait: 10 * time.Minute, MinWaitSet: true}},
		{"plan --min-wait=0s", oneSite, Command{Name: "plan", Site: "prod", MinWait: 0, MinWaitSet: true}},
		{"plan \u2014mode single \u2013min-wait 1h", oneSite, Command{Name: "plan", Site: "prod", Mode: "single", MinWait: time.Hour, MinWaitSet: true}},
		{"plan\tprod\n--MODE\u00a0multi", oneSite, Command{Name: "plan", Site: "prod", Mode: "multi"}},
		// rotate
		{"rotate", oneSite, Command{Name: "rotate", Site: "prod"}},
		{"/sepm rotate prod --new-cert-sha256 " + fpA, oneSite, Command{Name: "rotate", Site: "prod", NewCerts: []CertPin{{SHA256: fpA}}}},
		{"rotate --new-cert-sha256=" + fpAColons, oneSite, Command{Name: "rotate", Site: "prod", NewCerts: []CertPin{{SHA256: fpA}}}},
		{"rotate Lab-2 --straggler 60d --min-wait 1h30m --mode multi --new-cert-sha256 sepm-01=" + fpAColons + " --new-cert-sha256=sepm-02=" + strings.ToUpper(fpB), twoSites,
			Command{Name: "rotate", Site: "Lab-2", Mode: "multi", MinWait: 90 * time.Minute, MinWaitSet: true, Straggler: 60 * Day, StragglerSet: true,
				NewCerts: []CertPin{{Server: "sepm-01", SHA256: fpA}, {Server: "sepm-02", SHA256: fpB}}}},
		{"rotate --damaged-but-valid", oneSite, Command{Name: "rotate", Site: "prod", Damaged: true}},
		{"plan prod —damaged-but-valid --mode single", oneSite, Command{Name: "plan", Site: "prod", Mode: "single", Damaged: true}},
		{"rotate --straggler 0s", oneSite, Command{Name: "rotate", Site: "prod", Straggler: 0, StragglerSet: true}},
		{"rotate --new-cert-sha256 " + fpA + " --new-cert-sha256 sepm-02=" + fpA, oneSite, Command{Name: "rotate", Site: "prod", NewCerts: []CertPin{{SHA256: fpA}, {Server: "sepm-02", SHA256: fpA}}}},
		// status, list
		{"status", nil, Command{Name: "status"}},
		{"status r7", nil, Command{Name: "status", ID: "R7"}},
		{"/sepm STATUS R007", nil, Command{Name: "status", ID: "R7"}},
		{"status R0", nil, Command{Name: "status", ID: "R0"}},
		{"list", nil, Command{Name: "list"}},
		// approve, deny
		{"approve R12", nil, Command{Name: "approve", ID: "R12"}},
		{"deny R12", nil, Command{Name: "deny", ID: "R12"}},
		{"deny R12   not   during\tthe freeze ", nil, Command{Name: "deny", ID: "R12", Reason: "not during the freeze"}},
		{"deny R12 --force is not a flag here", nil, Command{Name: "deny", ID: "R12", Reason: "--force is not a flag here"}},
		{"deny R12 -h", nil, Command{Name: "deny", ID: "R12", Reason: "-h"}},
		// done, confirm
		{"done R7 http-msl", nil, Command{Name: "done", ID: "R7", Step: "http-msl"}},
		{"done r7 cert-sepm-01", nil, Command{Name: "done", ID: "R7", Step: "cert-sepm-01"}},
		{"confirm R7 cert-SEPM01.corp.example", nil, Command{Name: "confirm", ID: "R7", Step: "cert-SEPM01.corp.example"}},
		{"confirm R7 wait_1", nil, Command{Name: "confirm", ID: "R7", Step: "wait_1"}},
		// pause, resume, abort, audit
		{"pause R1", nil, Command{Name: "pause", ID: "R1"}},
		{"resume R1", nil, Command{Name: "resume", ID: "R1"}},
		{"abort R1", nil, Command{Name: "abort", ID: "R1"}},
		{"abort R1 clients on 12.1 still offline", nil, Command{Name: "abort", ID: "R1", Reason: "clients on 12.1 still offline"}},
		{"audit R1", nil, Command{Name: "audit", ID: "R1"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, tt.sites)
		if err != nil {
			t.Errorf("Parse(%q) error: %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
		// The canonical text reads back to the same command.
		again, err := Parse(got.String(), tt.sites)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("Parse(%q.String() = %q) = %+v, %v; want %+v", tt.in, got.String(), again, err, got)
		}
	}
}

// TestParseInvalid checks that bad input is rejected with a *UsageError whose message
// says what is wrong (wantMsg is a substring) and whose usage line is the right one.
func TestParseInvalid(t *testing.T) {
	tests := []struct {
		in        string
		sites     []string
		wantMsg   string
		wantUsage string // "" = the general usage
	}{
		// unknown words
		{"rotat", oneSite, `unknown subcommand "rotat"; did you mean rotate?`, ""},
		{"/sepm aprove R7", oneSite, "did you mean approve?", ""},
		{"stauts", oneSite, "did you mean status?", ""},
		{"frobnicate", oneSite, `unknown subcommand "frobnicate"; try help`, ""},
		{"R7", oneSite, "did you mean status R7?", ""},
		{"prod", oneSite, "did you mean plan prod?", ""},
		{"/sepm /sepm plan", oneSite, `unknown subcommand "/sepm"`, ""},
		{"help rotat", oneSite, `no subcommand "rotat" to explain; did you mean rotate?`, "help"},
		{"help plan rotate", oneSite, `help takes at most one subcommand, but "rotate" was left over`, "help"},
		{"help --mode", oneSite, `help takes no flags`, "help"},
		// site
		{"plan prd", twoSites, `unknown site "prd"; did you mean prod? (known sites: prod, Lab-2)`, "plan"},
		{"plan staging", twoSites, `unknown site "staging"; known sites: prod, Lab-2`, "plan"},
		{"plan", twoSites, "which site? 2 sites are configured, name one of: prod, Lab-2", "plan"},
		{"rotate --mode single", twoSites, "which site?", "rotate"},
		{"plan", nil, "no site is configured", "plan"},
		{"plan prod", nil, `unknown site "prod": no site is configured`, "plan"},
		{"plan prod lab-2", twoSites, `plan takes at most one site, but "lab-2" was left over`, "plan"},
		// flags
		{"plan --mode", oneSite, "--mode needs a value", "plan"},
		{"plan --mode --min-wait 1h", oneSite, "--mode needs a value", "plan"},
		{"plan --mode=", oneSite, "--mode needs a value", "plan"},
		{"plan --mode sngle", oneSite, `--mode must be auto, single or multi, not "sngle"; did you mean single?`, "plan"},
		{"plan --mode single --mode multi", oneSite, "--mode was given twice", "plan"},
		{"plan --min-wait 1h --min-wait=2h", oneSite, "--min-wait was given twice", "plan"},
		{"plan --straggler 90d", oneSite, "plan does not take --straggler (rotate does)", "plan"},
		{"plan --new-cert-sha256 " + fpA, oneSite, "plan does not take --new-cert-sha256 (rotate does)", "plan"},
		{"rotate --min-wiat 1h", oneSite, `rotate has no flag "--min-wiat"; did you mean --min-wait?`, "rotate"},
		{"rotate --force", oneSite, `rotate has no flag "--force"; its flags are --mode, --min-wait, --straggler, --new-cert-sha256`, "rotate"},
		{"rotate -m single", oneSite, `"-m" is not a flag rotate takes`, "rotate"},
		{"rotate --straggler 90d --straggler 30d", oneSite, "--straggler was given twice", "rotate"},
		{"rotate --damaged-but-valid=yes", oneSite, "--damaged-but-valid takes no value", "rotate"},
		{"plan --damaged-but-valid --damaged-but-valid", oneSite, "--damaged-but-valid was given twice", "plan"},
		// durations
		{"plan --min-wait 90", oneSite, `--min-wait: "90" has no unit after 90`, "plan"},
		{"plan --min-wait 5x", oneSite, `unknown unit "x"`, "plan"},
		{"plan --min-wait 5ms", oneSite, `unknown unit "ms"`, "plan"},
		{"plan --min-wait -5m", oneSite, "negative", "plan"},
		{"plan --min-wait 1.5h", oneSite, "fraction", "plan"},
		{"rotate --straggler 30m1h", oneSite, "largest first", "rotate"},
		{"rotate --straggler 99999999999999999999d", oneSite, "too long", "rotate"},
		// fingerprints
		{"rotate --new-cert-sha256 abcd", oneSite, `--new-cert-sha256: "abcd" is not a SHA-256 fingerprint: it needs 64 hex digits, not 4`, "rotate"},
		{"rotate --new-cert-sha256 " + fpA + "00", oneSite, "needs 64 hex digits, not 66", "rotate"},
		{"rotate --new-cert-sha256 " + strings.Replace(fpA, "9", "g", 1), oneSite, "only hex digits and colons", "rotate"},
		{"rotate --new-cert-sha256 =" + fpA, oneSite, `"" is not a server name`, "rotate"},
		{"rotate --new-cert-sha256 se/pm=" + fpA, oneSite, `"se/pm" is not a server name`, "rotate"},
		{"rotate --new-cert-sha256 sepm-01=", oneSite, `"" is not a SHA-256 fingerprint`, "rotate"},
		{"rotate --new-cert-sha256 " + fpA + " --new-cert-sha256 " + fpB, oneSite, "given twice without a server name", "rotate"},
		{"rotate --new-cert-sha256 a=" + fpA + " --new-cert-sha256 a=" + fpB, oneSite, `given twice for server "a"`, "rotate"},
		{"rotate --new-cert-sha256", oneSite, "--new-cert-sha256 needs a value", "rotate"},
		// ids and steps
		{"status 7", nil, `"7" is not a rotation id; rotation ids look like R7`, "status"},
		{"status R", nil, "not a rotation id", "status"},
		{"status R7x", nil, "not a rotation id", "status"},
		{"status R1234567890123456789", nil, "not a rotation id", "status"},
		{"status R7 R8", nil, `status takes at most one id, but "R8" was left over`, "status"},
		{"list all", nil, `list takes no arguments, but "all" was left over`, "list"},
		{"list --all", nil, `list takes no flags, but got "--all"`, "list"},
		{"approve", nil, `approve needs a rotation id, such as "approve R7"`, "approve"},
		{"approve R7 R8", nil, "left over", "approve"},
		{"approve S7", nil, "not a rotation id", "approve"},
		{"deny", nil, "deny needs a rotation id", "deny"},
		{"deny because", nil, `"because" is not a rotation id`, "deny"},
		{"done R7", nil, `done needs a step id after the rotation id, such as "done R7 cert-sepm-01"`, "done"},
		{"done http-msl R7", nil, `"http-msl" is not a rotation id`, "done"},
		{"done R7 http-msl now", nil, `done takes <id> <step>, but "now" was left over`, "done"},
		{"done R7 cert/1", nil, `"cert/1" is not a step id`, "done"},
		{"confirm R7 -x", nil, `confirm takes no flags`, "confirm"},
		{"confirm R7 .hidden", nil, "not a step id", "confirm"},
		{"confirm R7 " + strings.Repeat("a", 65), nil, "not a step id", "confirm"},
		{"pause", nil, "pause needs a rotation id", "pause"},
		{"resume R7 now", nil, "left over", "resume"},
		{"abort", nil, "abort needs a rotation id", "abort"},
		{"abort R7 " + strings.Repeat("x", MaxReason+1), nil, "the reason is too long (1001 characters; at most 1000)", "abort"},
		{"audit", nil, "audit needs a rotation id", "audit"},
		{"audit R7 --json", nil, "audit takes no flags", "audit"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, tt.sites)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%.80q) = %+v, %v; want a *UsageError", tt.in, got, err)
			continue
		}
		if !reflect.DeepEqual(got, Command{}) {
			t.Errorf("Parse(%.80q) returned %+v with its error; want the zero Command", tt.in, got)
		}
		if !strings.Contains(ue.Msg, tt.wantMsg) {
			t.Errorf("Parse(%.80q) message\n got %q\nwant it to contain %q", tt.in, ue.Msg, tt.wantMsg)
		}
		if ue.Error() != ue.Msg || strings.ContainsAny(ue.Msg, "\r\n") {
			t.Errorf("Parse(%.80q): Error() = %q, want the one-line Msg", tt.in, ue.Error())
		}
		if want := Usage(tt.wantUsage); ue.Usage != want {
			t.Errorf("Parse(%.80q) usage = %q, want %q", tt.in, ue.Usage, want)
		}
	}
}

// TestMessagesQuoteAndShorten checks that user input echoed in a message is quoted,
// shortened and cannot break the message onto several lines.
func TestMessagesQuoteAndShorten(t *testing.T) {
	long := strings.Repeat("z", 500)
	_, err := Parse("status R7"+long, nil)
	if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "…") {
		t.Errorf("long input: error %q, want a short message with an ellipsis", err)
	}
	_, err = Parse("frob\u2028nicate\x00", nil)
	if err == nil || strings.ContainsAny(err.Error(), "\n\r\u2028\x00") {
		t.Errorf("control characters: error %q, want them escaped", err)
	}
	// Configured site names are trusted but still cannot break a message.
	_, err = Parse("plan x", []string{"a\nb", "c"})
	if err == nil || strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("site with newline: error %q, want one line", err)
	}
}

// TestParseIgnoresEmptySites checks that blank configured site names do not count.
func TestParseIgnoresEmptySites(t *testing.T) {
	got, err := Parse("plan", []string{"", " prod ", "  "})
	if err != nil || got.Site != "prod" {
		t.Fatalf("Parse(plan) with one real site = %+v, %v; want site prod", got, err)
	}
}

// TestRole checks the role every subcommand needs and the permission model.
func TestRole(t *testing.T) {
	want := map[string]Role{
		"help": Viewer, "status": Viewer, "list": Viewer, "audit": Viewer,
		"approve": Approver, "deny": Approver,
		"plan": Operator, "rotate": Operator, "done": Operator, "confirm": Operator,
		"pause": Operator, "resume": Operator, "abort": Operator,
	}
	if len(want) != len(table) {
		t.Fatalf("test knows %d subcommands, table has %d", len(want), len(table))
	}
	for name, role := range want {
		c := Command{Name: name}
		if got := c.Role(); got != role {
			t.Errorf("Command{Name: %q}.Role() = %v, want %v", name, got, role)
		}
	}
	if got := (Command{Name: "nonsense"}).Role(); got != Operator {
		t.Errorf("unknown command needs %v, want operator", got)
	}
	if got := (Command{}).Role(); Viewer == got {
		t.Errorf("the zero Command needs %v; viewers must not run it", got)
	}

	cases := []struct {
		need Role
		held []Role
		ok   bool
	}{
		{Viewer, []Role{Viewer}, true},
		{Viewer, []Role{Operator}, true},
		{Viewer, []Role{Approver}, true},
		{Viewer, nil, false},
		{Viewer, []Role{0}, false},
		{Operator, []Role{Operator}, true},
		{Operator, []Role{Approver}, false},
		{Operator, []Role{Viewer}, false},
		{Operator, []Role{Viewer, Approver, Operator}, true},
		{Approver, []Role{Approver}, true},
		{Approver, []Role{Operator}, false},
		{Approver, []Role{Viewer}, false},
		{Approver, []Role{Operator, Approver}, true},
		{0, []Role{Viewer, Approver, Operator}, false},
		{Role(9), []Role{Role(9)}, false},
	}
	for _, tc := range cases {
		if got := tc.need.SatisfiedBy(tc.held...); got != tc.ok {
			t.Errorf("%v.SatisfiedBy(%v) = %v, want %v", tc.need, tc.held, got, tc.ok)
		}
	}
	for r, s := range map[Role]string{Viewer: "viewer", Approver: "approver", Operator: "operator", 0: "Role(0)"} {
		if r.String() != s {
			t.Errorf("Role(%d).String() = %q, want %q", int(r), r.String(), s)
		}
	}
}

// TestSuggest checks the did-you-mean choices.
func TestSuggest(t *testing.T) {
	cands := names()
	for in, want := range map[string]string{
		"rotat": "rotate", "roatte": "rotate", "stauts": "status", "lsit": "list", "LIST": "list",
		"aprove": "approve", "confirn": "confirm", "xyz": "", "": "", "dne": "done",
		"pa": "pause", "re": "resume", "res": "resume", "abrot": "abort", "audti": "audit",
	} {
		if got := suggest(in, cands); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNormalizeFingerprint checks fingerprint normalisation.
func TestNormalizeFingerprint(t *testing.T) {
	for _, in := range []string{fpA, strings.ToUpper(fpA), fpAColons, strings.ToLower(fpAColons)} {
		if got, err := NormalizeFingerprint(in); err != nil || got != fpA {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v; want %q", in, got, err, fpA)
		}
	}
	for _, in := range []string{"", "abc", fpA + "a", fpA[:63] + "z", " " + fpA, "sha256:" + fpA} {
		if got, err := NormalizeFingerprint(in); err == nil {
			t.Errorf("NormalizeFingerprint(%q) = %q, want an error", in, got)
		}
	}
}

func TestDoneAcceptOrphans(t *testing.T) {
	c, err := Parse("done R7 enable-secure --accept-orphans 3", []string{"site-a"})
	if err != nil || !c.AcceptOrphansSet || c.AcceptOrphans != 3 || c.Step != "enable-secure" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{"done R7 enable-secure --accept-orphans -1", "done R7 enable-secure --accept-orphans x", "done R7 enable-secure --accept-orphans"} {
		if _, err := Parse(bad, []string{"site-a"}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
