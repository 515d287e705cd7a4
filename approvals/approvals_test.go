package approvals

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const ttl = 30 * time.Minute

var action = Action{
	Rotation: "R1",
	Targets:  []Target{{"G1", "L1"}, {"G2", "L2"}},
	Settings: map[string]string{"secureCommunication": "false"},
}

var hash = HashAction(action)

// pending returns a posted request by alice needing two approvers.
func pending() Request {
	r := New("n1", "R1", "console:alice", hash, 2, ttl, t0)
	r.MessageRef = "m1"
	return r
}

// ballot returns a valid approve by user, cast on the request's message a
// minute after it was created.
func ballot(user string) Ballot {
	return Ballot{User: user, IsApprover: true, Kind: Approve, RequestID: "n1", MessageRef: "m1", ActionHash: hash, At: t0.Add(time.Minute)}
}

// must casts and fails the test on a refusal.
func must(t *testing.T, r Request, b Ballot) Outcome {
	t.Helper()
	out, err := Cast(r, b)
	if err != nil {
		t.Fatalf("Cast(%s %s): %v", b.User, b.Kind, err)
	}
	return out
}

// cloneReq deep-copies r so a test can check Cast left its input alone.
func cloneReq(r Request) Request {
	r.Votes = slices.Clone(r.Votes)
	return r
}

func TestCastRules(t *testing.T) {
	oneVote := func() Request { return must(t, pending(), ballot("console:bob")).Request }
	approved := func() Request { return must(t, oneVote(), ballot("console:carol")).Request }
	with := func(r Request, f func(*Request)) Request { f(&r); return r }
	b := func(user string, f func(*Ballot)) Ballot { x := ballot(user); f(&x); return x }

	tests := []struct {
		name      string
		req       Request
		ballot    Ballot
		wantCode  string // refusal code, or "" for an accepted ballot
		wantKind  string
		wantState State
		wantVotes []string
		wantMsg   string // substring of Outcome.Message or Refusal.Reason
	}{
		// accepted
		{name: "first approval counts", req: pending(), ballot: ballot("console:bob"),
			wantKind: OutcomeVoted, wantState: StatePending, wantVotes: []string{"console:bob"}, wantMsg: "console:bob approved (1 of 2); 1 more approval needed."},
		{name: "approval by reaction (no nonce)", req: pending(), ballot: b("slack:U2", func(b *Ballot) { b.RequestID = "" }),
			wantKind: OutcomeVoted, wantState: StatePending, wantVotes: []string{"slack:U2"}},
		{name: "approval by command (no message)", req: pending(), ballot: b("slack:U2", func(b *Ballot) { b.MessageRef = "" }),
			wantKind: OutcomeVoted, wantState: StatePending, wantVotes: []string{"slack:U2"}},
		{name: "command on a request not yet posted", req: with(pending(), func(r *Request) { r.MessageRef = "" }), ballot: b("console:bob", func(b *Ballot) { b.MessageRef = "" }),
			wantKind: OutcomeVoted, wantState: StatePending, wantVotes: []string{"console:bob"}},
		{name: "vote one nanosecond before expiry", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.At = t0.Add(ttl - 1) }),
			wantKind: OutcomeVoted, wantState: StatePending, wantVotes: []string{"console:bob"}},
		{name: "second distinct approver approves", req: oneVote(), ballot: ballot("console:carol"),
			wantKind: OutcomeApproved, wantState: StateApproved, wantVotes: []string{"console:bob", "console:carol"}, wantMsg: "console:carol approved (2 of 2); the request is approved by console:bob and console:carol."},
		{name: "three required: two is not enough", req: with(oneVote(), func(r *Request) { r.Required = 3 }), ballot: ballot("console:carol"),
			wantKind: OutcomeVoted, wantState: StatePending, wantVotes: []string{"console:bob", "console:carol"}, wantMsg: "(2 of 3); 1 more approval needed"},
		{name: "required 0 means the default 2", req: with(pending(), func(r *Request) { r.Required = 0 }), ballot: ballot("console:bob"),
			wantKind: OutcomeVoted, wantState: StatePending, wantVotes: []string{"console:bob"}, wantMsg: "(1 of 2)"},
		{name: "retraction before quorum", req: oneVote(), ballot: b("console:bob", func(b *Ballot) { b.Kind = Retract; b.RequestID = "" }),
			wantKind: OutcomeRetracted, wantState: StatePending, wantVotes: nil, wantMsg: "console:bob withdrew their approval (0 of 2); 2 more approvals needed."},
		{name: "retraction by someone no longer an approver", req: oneVote(), ballot: b("console:bob", func(b *Ballot) { b.Kind = Retract; b.IsApprover = false }),
			wantKind: OutcomeRetracted, wantState: StatePending, wantVotes: nil},
		{name: "deny rejects", req: pending(), ballot: b("console:dave", func(b *Ballot) { b.Kind = Deny; b.Reason = "  not during month end " }),
			wantKind: OutcomeRejected, wantState: StateRejected, wantMsg: "console:dave rejected the request: not during month end."},
		{name: "deny after one approval rejects", req: oneVote(), ballot: b("console:carol", func(b *Ballot) { b.Kind = Deny }),
			wantKind: OutcomeRejected, wantState: StateRejected, wantVotes: []string{"console:bob"}, wantMsg: "console:carol rejected the request."},
		{name: "an approver may change their mind and deny", req: oneVote(), ballot: b("console:bob", func(b *Ballot) { b.Kind = Deny }),
			wantKind: OutcomeRejected, wantState: StateRejected, wantVotes: []string{"console:bob"}},

		// refused
		{name: "requester cannot approve", req: pending(), ballot: ballot("console:alice"),
			wantCode: CodeRequester, wantMsg: "console:alice requested this change and cannot vote on it; it needs 2 approvals from other approvers."},
		{name: "requester cannot deny", req: pending(), ballot: b("console:alice", func(b *Ballot) { b.Kind = Deny }),
			wantCode: CodeRequester},
		{name: "non-approver", req: pending(), ballot: b("console:mallory", func(b *Ballot) { b.IsApprover = false }),
			wantCode: CodeNotApprover, wantMsg: "console:mallory is not an approver"},
		{name: "non-approver cannot deny", req: pending(), ballot: b("console:mallory", func(b *Ballot) { b.IsApprover = false; b.Kind = Deny }),
			wantCode: CodeNotApprover},
		{name: "double vote", req: oneVote(), ballot: b("console:bob", func(b *Ballot) { b.RequestID = ""; b.At = t0.Add(2 * time.Minute) }),
			wantCode: CodeAlreadyVoted, wantMsg: "console:bob already approved (1 of 2); 1 more approval needed."},
		{name: "vote exactly at expiry", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.At = t0.Add(ttl) }),
			wantCode: CodeExpired, wantMsg: "expired at 2025-03-01 12:30:00 UTC"},
		{name: "vote after ttl", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.At = t0.Add(time.Hour) }),
			wantCode: CodeExpired},
		{name: "deny after ttl", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.Kind = Deny; b.At = t0.Add(time.Hour) }),
			wantCode: CodeExpired},
		{name: "retract after ttl", req: oneVote(), ballot: b("console:bob", func(b *Ballot) { b.Kind = Retract; b.At = t0.Add(time.Hour) }),
			wantCode: CodeExpired},
		{name: "vote on a request marked expired", req: with(pending(), func(r *Request) { r.State = StateExpired }), ballot: ballot("console:bob"),
			wantCode: CodeExpired},
		{name: "vote on another message", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.RequestID = ""; b.MessageRef = "m2" }),
			wantCode: CodeWrongMessage},
		{name: "reaction before the request is posted", req: with(pending(), func(r *Request) { r.MessageRef = "" }), ballot: b("console:bob", func(b *Ballot) { b.RequestID = "" }),
			wantCode: CodeWrongMessage},
		{name: "button of another request", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.RequestID = "n0" }),
			wantCode: CodeWrongRequest},
		{name: "vote after the plan changed", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.ActionHash = HashAction(Action{Rotation: "R1"}) }),
			wantCode: CodePlanChanged, wantMsg: "approval must be asked again"},
		{name: "deny after the plan changed", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.Kind = Deny; b.ActionHash = "x" }),
			wantCode: CodePlanChanged},
		{name: "ballot without an action hash", req: pending(), ballot: b("console:bob", func(b *Ballot) { b.ActionHash = "" }),
			wantCode: CodePlanChanged},
		{name: "request without an action hash binds nothing", req: with(pending(), func(r *Request) { r.ActionHash = "" }), ballot: b("console:bob", func(b *Ballot) { b.ActionHash = "" }),
			wantCode: CodePlanChanged},
		{name: "retract after the plan changed", req: oneVote(), ballot: b("console:bob", func(b *Ballot) { b.Kind = Retract; b.ActionHash = "x" }),
			wantCode: CodePlanChanged},
		{name: "retract without a vote", req: oneVote(), ballot: b("console:carol", func(b *Ballot) { b.Kind = Retract }),
			wantCode: CodeNotVoted, wantMsg: "console:carol has no approval on this request to withdraw."},
		{name: "retraction after quorum is final", req: approved(), ballot: b("console:bob", func(b *Ballot) { b.Kind = Retract }),
			wantCode: CodeFinal, wantMsg: "cannot be withdrawn"},
		{name: "third approval after quorum", req: approved(), ballot: ballot("console:dave"),
			wantCode: CodeDecided, wantMsg: "already approved by console:bob and console:carol"},
		{name: "deny after quorum", req: approved(), ballot: b("console:dave", func(b *Ballot) { b.Kind = Deny }),
			wantCode: CodeDecided},
		{name: "vote on a rejected request", req: must(t, pending(), b("console:dave", func(b *Ballot) { b.Kind = Deny })).Request, ballot: ballot("console:bob"),
			wantCode: CodeDecided, wantMsg: "already rejected by console:dave"},
		{name: "vote on a void request", req: with(pending(), func(r *Request) { r.State = StateVoid }), ballot: ballot("console:bob"),
			wantCode: CodeDecided},
		{name: "vote on an unknown state", req: with(pending(), func(r *Request) { r.State = "weird" }), ballot: ballot("console:bob"),
			wantCode: CodeDecided},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := cloneReq(tc.req)
			out, err := Cast(tc.req, tc.ballot)
			if !reflect.DeepEqual(tc.req, before) {
				t.Fatalf("Cast modified its input:\n got %+v\nwant %+v", tc.req, before)
			}
			if tc.wantCode != "" {
				var ref *Refusal
				if !errors.As(err, &ref) {
					t.Fatalf("Cast = %+v, %v; want refusal %q", out, err, tc.wantCode)
				}
				if ref.Code != tc.wantCode {
					t.Errorf("code %q (%s), want %q", ref.Code, ref.Reason, tc.wantCode)
				}
				if !strings.Contains(ref.Reason, tc.wantMsg) {
					t.Errorf("reason %q does not contain %q", ref.Reason, tc.wantMsg)
				}
				if !strings.Contains(err.Error(), ref.Code) {
					t.Errorf("Error() %q lacks the code", err)
				}
				if !reflect.DeepEqual(out, Outcome{}) {
					t.Errorf("refusal came with an outcome %+v", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("Cast: %v", err)
			}
			if out.Kind != tc.wantKind || out.Request.State != tc.wantState {
				t.Errorf("outcome %q state %q, want %q %q", out.Kind, out.Request.State, tc.wantKind, tc.wantState)
			}
			if got := out.Request.Approvers(); !slices.Equal(got, tc.wantVotes) {
				t.Errorf("approvers %v, want %v", got, tc.wantVotes)
			}
			if !strings.Contains(out.Message, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", out.Message, tc.wantMsg)
			}
			switch tc.wantState {
			case StateApproved, StateRejected:
				if !out.Request.DecidedAt.Equal(tc.ballot.At) {
					t.Errorf("DecidedAt %v, want %v", out.Request.DecidedAt, tc.ballot.At)
				}
			default:
				if !out.Request.DecidedAt.IsZero() {
					t.Errorf("DecidedAt set on a pending request")
				}
			}
			if tc.wantState == StateRejected {
				if out.Request.DeniedBy != tc.ballot.User || out.Request.DenyReason != strings.TrimSpace(tc.ballot.Reason) {
					t.Errorf("DeniedBy %q DenyReason %q", out.Request.DeniedBy, out.Request.DenyReason)
				}
			}
		})
	}
}

func TestInvalidBallot(t *testing.T) {
	for _, b := range []Ballot{
		func() Ballot { b := ballot(""); return b }(),
		func() Ballot { b := ballot("console:bob"); b.Kind = "abstain"; return b }(),
		func() Ballot { b := ballot("console:bob"); b.Kind = ""; return b }(),
	} {
		_, err := Cast(pending(), b)
		var ref *Refusal
		if !errors.Is(err, ErrInvalidBallot) || errors.As(err, &ref) {
			t.Errorf("Cast(%+v) = %v, want ErrInvalidBallot and no Refusal", b, err)
		}
	}
}

func TestTwoValidVotesApproveExactlyOnce(t *testing.T) {
	r := pending()
	approvals := 0
	var refusals []string
	for i, user := range []string{"console:bob", "console:bob", "console:carol", "console:dave", "console:carol", "console:erin"} {
		b := ballot(user)
		b.At = t0.Add(time.Duration(i+1) * time.Minute)
		out, err := Cast(r, b)
		if err != nil {
			var ref *Refusal
			if !errors.As(err, &ref) {
				t.Fatal(err)
			}
			refusals = append(refusals, ref.Code)
			continue
		}
		r = out.Request
		if out.Kind == OutcomeApproved {
			approvals++
		}
	}
	if approvals != 1 {
		t.Errorf("approved %d times, want exactly once", approvals)
	}
	if want := []string{CodeAlreadyVoted, CodeDecided, CodeDecided, CodeDecided}; !slices.Equal(refusals, want) {
		t.Errorf("refusals %v, want %v", refusals, want)
	}
	if r.State != StateApproved || !slices.Equal(r.Approvers(), []string{"console:bob", "console:carol"}) {
		t.Errorf("final request %+v", r)
	}
	if !r.DecidedAt.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("DecidedAt %v, want the second approver's vote time", r.DecidedAt)
	}
	if r.Remaining() != 0 {
		t.Errorf("Remaining = %d after approval", r.Remaining())
	}
}

func TestCastNeverAliasesTheCallersVotes(t *testing.T) {
	r := pending()
	r.Votes = make([]Vote, 1, 8) // spare capacity an append would reuse
	r.Votes[0] = Vote{User: "console:bob", At: t0}
	r.Required = 3
	out := must(t, r, ballot("console:carol"))
	r.Votes = append(r.Votes, Vote{User: "console:zed"}) // the caller keeps using its copy
	if got := out.Request.Approvers(); !slices.Equal(got, []string{"console:bob", "console:carol"}) {
		t.Errorf("outcome approvers %v changed by the caller's append", got)
	}
	r.Votes = r.Votes[:1]
	b := ballot("console:bob")
	b.Kind = Retract
	out = must(t, r, b)
	if len(out.Request.Votes) != 0 || r.Votes[0].User != "console:bob" {
		t.Errorf("retract touched the input: input %v, output %v", r.Votes, out.Request.Votes)
	}
}

func TestNewDefaults(t *testing.T) {
	r := New("abc", "R7", "slack:U1", hash, 0, 0, t0)
	want := Request{ID: "abc", Rotation: "R7", ActionHash: hash, Requester: "slack:U1", Required: DefaultRequired,
		Created: t0, Expires: t0.Add(DefaultTTL), State: StatePending}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("New = %+v\nwant %+v", r, want)
	}
	r = New("abc", "R7", "slack:U1", hash, 3, time.Hour, t0)
	if r.Required != 3 || !r.Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("New(3, 1h) = %+v", r)
	}
	if r.Remaining() != 3 {
		t.Errorf("Remaining = %d, want 3", r.Remaining())
	}
}

func TestExpired(t *testing.T) {
	r := pending()
	cases := []struct {
		state State
		at    time.Time
		want  bool
	}{
		{StatePending, t0, false},
		{StatePending, t0.Add(ttl - 1), false},
		{StatePending, t0.Add(ttl), true},
		{StatePending, t0.Add(ttl + time.Hour), true},
		{StateExpired, t0, true},
		{StateApproved, t0.Add(time.Hour), false},
		{StateRejected, t0.Add(time.Hour), false},
		{StateVoid, t0.Add(time.Hour), false},
	}
	for _, c := range cases {
		r.State = c.state
		if got := r.Expired(c.at); got != c.want {
			t.Errorf("%s request Expired(+%v) = %v, want %v", c.state, c.at.Sub(t0), got, c.want)
		}
	}
	if !(Request{State: StatePending}).Expired(t0) {
		t.Error("a zero-valued pending request is not expired")
	}
}

func TestApproversDistinct(t *testing.T) {
	r := Request{Votes: []Vote{{User: "b"}, {User: "c"}, {User: "b"}}}
	if got := r.Approvers(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("Approvers = %v", got)
	}
	if got := (Request{}).Approvers(); len(got) != 0 {
		t.Errorf("Approvers of none = %v", got)
	}
}

func TestHashAction(t *testing.T) {
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hash) {
		t.Fatalf("hash %q is not 64 lowercase hex", hash)
	}
	// Golden: the encoding is persisted implicitly (pending requests carry
	// the hash), so changing it voids requests across an upgrade.
	if want := "a278801cff50b13e9f15f72fcab1902696bbf14fc16aec83b6b0d79f5ba707d9"; hash != want {
		t.Fatalf("HashAction(%+v) = %s, want the golden %s", action, hash, want)
	}
	same := []Action{
		{Rotation: "R1", Targets: []Target{{"G2", "L2"}, {"G1", "L1"}}, Settings: map[string]string{"secureCommunication": "false"}},
		{Rotation: "R1", Targets: []Target{{"G1", "L1"}, {"G2", "L2"}, {"G1", "L1"}}, Settings: map[string]string{"secureCommunication": "false"}},
	}
	for _, a := range same {
		if got := HashAction(a); got != hash {
			t.Errorf("HashAction(%+v) differs from the same action in another order", a)
		}
	}
	if HashAction(Action{Rotation: "R"}) != HashAction(Action{Rotation: "R", Targets: []Target{}, Settings: map[string]string{}}) {
		t.Error("nil and empty differ")
	}
	multi := map[string]string{"a": "1", "b": "2", "c": "3"}
	for range 20 { // map iteration order varies between runs
		if HashAction(Action{Settings: multi}) != HashAction(Action{Settings: map[string]string{"c": "3", "b": "2", "a": "1"}}) {
			t.Fatal("settings order matters")
		}
	}
	different := []Action{
		{Rotation: "R2", Targets: action.Targets, Settings: action.Settings},
		{Rotation: "R1", Targets: []Target{{"G1", "L1"}}, Settings: action.Settings},
		{Rotation: "R1", Targets: []Target{{"G1", "L1"}, {"G2", "L3"}}, Settings: action.Settings},
		{Rotation: "R1", Targets: []Target{{"L1", "G1"}, {"G2", "L2"}}, Settings: action.Settings},
		{Rotation: "R1", Targets: action.Targets, Settings: map[string]string{"secureCommunication": "true"}},
		{Rotation: "R1", Targets: action.Targets, Settings: map[string]string{"secureCommunication": "false", "x": ""}},
		{Rotation: "R1", Targets: action.Targets},
	}
	seen := map[string]int{hash: -1}
	for i, a := range different {
		h := HashAction(a)
		if j, dup := seen[h]; dup {
			t.Errorf("action %d hashes like %d", i, j)
		}
		seen[h] = i
	}
	// Field boundaries cannot be moved by clever values.
	pairs := [][2]Action{
		{{Targets: []Target{{"a b", "c"}}}, {Targets: []Target{{"a", "b c"}}}},
		{{Settings: map[string]string{"k": "v\nsetting \"x\" \"y\""}}, {Settings: map[string]string{"k": "v", "x": "y"}}},
		{{Rotation: "R1\ntarget \"G\" \"L\""}, {Rotation: "R1", Targets: []Target{{"G", "L"}}}},
	}
	for i, p := range pairs {
		if HashAction(p[0]) == HashAction(p[1]) {
			t.Errorf("pair %d collides", i)
		}
	}
}

// TestRandomBallotsNeverApproveWithoutQuorum drives random ballot sequences
// through Cast and checks every result against an independent model of the
// rules. In particular a request is approved only once Required distinct
// eligible approvers (approver, not the requester, bound to this request,
// message and action, before expiry, not since retracted) have approved, and
// at most once.
func TestRandomBallotsNeverApproveWithoutQuorum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{"console:alice", "console:bob", "console:carol", "console:dave", "console:erin", "slack:U1"}
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	approvedRuns := 0
	for run := range 3000 {
		required := rng.IntN(4) // 0 means the default
		r := New("n1", "R1", pick(users...), hash, required, ttl, t0)
		r.MessageRef = pick("m1", "")
		need := r.required()

		// the model
		eligible := map[string]bool{}
		state := StatePending
		approvedOutcomes := 0

		for step := range 12 {
			b := Ballot{
				User:       pick(users...),
				IsApprover: rng.IntN(4) != 0,
				Kind:       []BallotKind{Approve, Approve, Approve, Deny, Retract, "bogus"}[rng.IntN(6)],
				RequestID:  pick("", "n1", "n1", "n2"),
				MessageRef: pick("", "m1", "m1", "m2"),
				ActionHash: pick(hash, hash, hash, hash, "", "other"),
				At:         t0.Add(time.Duration(rng.IntN(int(ttl/time.Second)+300)-60) * time.Second),
			}
			before := cloneReq(r)
			out, err := Cast(r, b)

			bound := (b.RequestID == "" || b.RequestID == r.ID) &&
				(b.MessageRef == "" || b.MessageRef == r.MessageRef) &&
				b.At.Before(r.Expires) && b.ActionHash == r.ActionHash && state == StatePending
			voter := b.User != r.Requester && b.IsApprover
			var wantOK bool
			switch b.Kind {
			case Approve:
				wantOK = bound && voter && !eligible[b.User]
			case Deny:
				wantOK = bound && voter
			case Retract:
				wantOK = bound && eligible[b.User]
			}
			if (err == nil) != wantOK {
				t.Fatalf("run %d step %d: Cast(%+v) on %+v = %v; model says accepted=%v", run, step, b, before, err, wantOK)
			}
			if err != nil {
				var ref *Refusal
				if b.Kind != "bogus" && !errors.As(err, &ref) {
					t.Fatalf("run %d step %d: error %v is not a Refusal", run, step, err)
				}
				if !reflect.DeepEqual(r, before) {
					t.Fatalf("run %d step %d: refused ballot changed the request", run, step)
				}
				continue
			}
			switch b.Kind {
			case Approve:
				eligible[b.User] = true
				if len(eligible) >= need {
					state = StateApproved
				}
			case Deny:
				state = StateRejected
			case Retract:
				delete(eligible, b.User)
			}
			r = out.Request
			if r.State != state {
				t.Fatalf("run %d step %d: state %s, model %s", run, step, r.State, state)
			}
			if out.Kind == OutcomeApproved {
				approvedOutcomes++
				got := r.Approvers()
				if len(got) < need {
					t.Fatalf("run %d: approved with %d approvers, %d required", run, len(got), need)
				}
				for _, u := range got {
					if !eligible[u] || u == r.Requester {
						t.Fatalf("run %d: approver %s is not an eligible approver", run, u)
					}
				}
			}
		}
		if approvedOutcomes > 1 {
			t.Fatalf("run %d: approved %d times", run, approvedOutcomes)
		}
		approvedRuns += approvedOutcomes
	}
	if approvedRuns == 0 {
		t.Fatal("no run reached approval: the generator is too weak to test anything")
	}
	t.Logf("%d of 3000 random runs reached approval", approvedRuns)
}

// FuzzCast replays a fuzzed ballot sequence against a request and checks
// Cast never panics and never approves without quorum.
func FuzzCast(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, "console:alice", "n1", "m1", hash, int8(2), int64(60))
	f.Add([]byte{0x10, 0x21, 0x32, 0x43, 0x54, 0x65}, "", "", "", "", int8(0), int64(-5))
	f.Add([]byte{0xff, 0x00, 0x81, 0x7f}, "console:bob", "n2", "", "x", int8(-3), int64(1e12))
	f.Fuzz(func(t *testing.T, script []byte, requester, reqID, msgRef, actionHash string, required int8, offsetSec int64) {
		users := []string{requester, "console:bob", "console:carol", "console:dave", ""}
		r := New(reqID, "R1", requester, actionHash, int(required), ttl, t0)
		r.MessageRef = msgRef
		approved := 0
		for i, c := range script {
			b := Ballot{
				User:       users[int(c)%len(users)],
				IsApprover: c&0x08 == 0,
				Kind:       []BallotKind{Approve, Deny, Retract, "", Approve}[int(c>>4)%5],
				RequestID:  []string{"", reqID, "zz"}[int(c>>2)%3],
				MessageRef: []string{"", msgRef, "zz"}[int(c>>5)%3],
				ActionHash: []string{actionHash, "", "zz"}[int(c>>6)%3],
				Reason:     requester,
				At:         t0.Add(time.Duration(offsetSec%1e9)*time.Second + time.Duration(i)*time.Second),
			}
			before := cloneReq(r)
			out, err := Cast(r, b)
			if err != nil {
				if !reflect.DeepEqual(r, before) {
					t.Fatal("refused ballot changed the request")
				}
				var ref *Refusal
				if errors.As(err, &ref) && (ref.Code == "" || ref.Reason == "") {
					t.Fatalf("empty refusal %+v", ref)
				}
				continue
			}
			if out.Message == "" {
				t.Fatal("accepted ballot without a message")
			}
			r = out.Request
			if out.Kind == OutcomeApproved {
				approved++
				if len(r.Approvers()) < r.required() || slices.Contains(r.Approvers(), r.Requester) {
					t.Fatalf("approved with %v, required %d, requester %q", r.Approvers(), r.required(), r.Requester)
				}
			}
		}
		if approved > 1 {
			t.Fatalf("approved %d times", approved)
		}
		_ = HashAction(Action{Rotation: requester, Targets: []Target{{reqID, msgRef}}, Settings: map[string]string{actionHash: msgRef}})
	})
}

// TestVoteOnEveryMessageOfTheRequest: a request posted again (after a restart, or in
// a second place) takes votes on each of its messages, and on no other.
func TestVoteOnEveryMessageOfTheRequest(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	r := New("n1", "R1", "alice", "h", 2, time.Hour, now)
	r.MessageRef, r.MessageRefs = "m1", []string{"m2"}
	o, err := Cast(r, Ballot{User: "bob", IsApprover: true, Kind: Approve, MessageRef: "m1", ActionHash: "h", At: now})
	if err != nil {
		t.Fatalf("vote on the first message: %v", err)
	}
	o, err = Cast(o.Request, Ballot{User: "carol", IsApprover: true, Kind: Approve, MessageRef: "m2", ActionHash: "h", At: now})
	if err != nil || o.Kind != OutcomeApproved {
		t.Fatalf("vote on the re-posted message: %v %v", o.Kind, err)
	}
	var ref *Refusal
	if _, err := Cast(r, Ballot{User: "dave", IsApprover: true, Kind: Approve, MessageRef: "m3", ActionHash: "h", At: now}); !errors.As(err, &ref) || ref.Code != CodeWrongMessage {
		t.Fatalf("vote on another message: %v, want wrong-message", err)
	}
}
