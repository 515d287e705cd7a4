package approvals

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultRequired is the number of distinct approvers a request needs when
// none (or fewer than one) is given.
const DefaultRequired = 2

// DefaultTTL is how long a request stays open when New is given ttl <= 0.
const DefaultTTL = 30 * time.Minute

// Target is one group location whose settings the action changes.
type Target struct {
	GroupID    string `json:"groupId"`
	LocationID string `json:"locationId"`
}

// Action is what approval is asked for: the settings a rotation is about to
// apply to its targets (for sepmbot, turning secure communication off).
type Action struct {
	Rotation string            `json:"rotation"`
	Targets  []Target          `json:"targets"`
	Settings map[string]string `json:"settings"`
}

// HashAction returns the lowercase hex SHA-256 of a canonical encoding of a.
// The order of the targets (duplicates count once) and of the settings does
// not matter; a nil and an empty map or slice hash the same; any change of
// rotation, a target, a setting's key or value changes the hash.
func HashAction(a Action) string {
	targets := slices.Clone(a.Targets)
	slices.SortFunc(targets, func(x, y Target) int {
		return cmp.Or(strings.Compare(x.GroupID, y.GroupID), strings.Compare(x.LocationID, y.LocationID))
	})
	targets = slices.Compact(targets)
	keys := make([]string, 0, len(a.Settings))
	for k := range a.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	// strconv.Quote is reversible, so quoted fields cannot run into each other.
	var sb strings.Builder
	sb.WriteString("sepmbot/approvals action v1\n")
	sb.WriteString("rotation " + strconv.Quote(a.Rotation) + "\n")
	for _, t := range targets {
		sb.WriteString("target " + strconv.Quote(t.GroupID) + " " + strconv.Quote(t.LocationID) + "\n")
	}
	for _, k := range keys {
		sb.WriteString("setting " + strconv.Quote(k) + " " + strconv.Quote(a.Settings[k]) + "\n")
	}
	sum := sha256.Sum256([]byte(sb.String()))
	return hex.EncodeToString(sum[:])
}

// State is where a request stands.
type State string

// Request states. Cast moves a pending request to approved or rejected; the
// caller sets expired (after Expires passes) and void (when the plan changed
// or the rotation was cancelled).
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateRejected State = "rejected"
	StateExpired  State = "expired"
	StateVoid     State = "void"
)

// Vote is one counted approval.
type Vote struct {
	User string    `json:"user"`
	At   time.Time `json:"at"`
}

// Request asks for approval of one action of one rotation.
type Request struct {
	ID         string `json:"id"`         // nonce (caller supplies random hex)
	Rotation   string `json:"rotation"`   // rotation id
	ActionHash string `json:"actionHash"` // HashAction of the action asked for
	Requester  string `json:"requester"`  // platform-qualified user id, e.g. "console:alice", "slack:U024BE7LH"
	MessageRef string `json:"messageRef"` // chat message approvers react to; "" = not yet posted
	// MessageRefs are every other message that carries the same request (posted in
	// several places, or posted again after a restart); a vote on any of them counts.
	MessageRefs []string  `json:"messageRefs,omitempty"`
	Required    int       `json:"required"` // distinct approvers needed
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	Votes       []Vote    `json:"votes,omitempty"`
	State       State     `json:"state"`
	DeniedBy    string    `json:"deniedBy,omitempty"`
	DenyReason  string    `json:"denyReason,omitempty"`
	DecidedAt   time.Time `json:"decidedAt,omitzero"`
}

// New returns a pending request created at now and open for ttl (DefaultTTL
// if ttl <= 0), needing required distinct approvers (DefaultRequired if
// required < 1). The caller sets MessageRef once the request is posted.
func New(id, rotation, requester, actionHash string, required int, ttl time.Duration, now time.Time) Request {
	if required < 1 {
		required = DefaultRequired
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return Request{
		ID:         id,
		Rotation:   rotation,
		ActionHash: actionHash,
		Requester:  requester,
		Required:   required,
		Created:    now,
		Expires:    now.Add(ttl),
		State:      StatePending,
	}
}

// Expired reports whether r can no longer be decided because its time ran
// out: its State is StateExpired, or it is StatePending and now is at or after Expires.
// A decided (approved, rejected, void) request is not expired.
func (r Request) Expired(now time.Time) bool {
	switch r.State {
	case StateExpired:
		return true
	case StatePending:
		return !now.Before(r.Expires)
	}
	return false
}

// Carries reports whether the chat message ref carries this request.
func (r Request) Carries(ref string) bool {
	return ref != "" && (ref == r.MessageRef || slices.Contains(r.MessageRefs, ref))
}

// Approvers returns the distinct users whose approval is counted, in the
// order they voted.
func (r Request) Approvers() []string {
	var out []string
	for _, v := range r.Votes {
		if !slices.Contains(out, v.User) {
			out = append(out, v.User)
		}
	}
	return out
}

// Remaining returns how many more approvals r needs (0 once approved).
func (r Request) Remaining() int {
	if r.State == StateApproved {
		return 0
	}
	return max(r.required()-len(r.Approvers()), 0)
}

// required is r.Required, or DefaultRequired if r.Required is below one (a
// zero-valued or corrupted request never needs fewer than the default).
func (r Request) required() int {
	if r.Required < 1 {
		return DefaultRequired
	}
	return r.Required
}

// BallotKind is what a ballot asks for.
type BallotKind string

// Ballot kinds.
const (
	Approve BallotKind = "approve" // count my approval
	Deny    BallotKind = "deny"    // reject the request
	Retract BallotKind = "retract" // withdraw my approval (e.g. reaction removed)
)

// Ballot is one person's vote as the chat adapter saw it.
type Ballot struct {
	User       string     // platform-qualified user id
	IsApprover bool       // the caller resolved the user's roles (groups etc.)
	Kind       BallotKind // Approve, Deny or Retract
	RequestID  string     // nonce from the button/command, or "" when cast by reaction
	MessageRef string     // message reacted to / clicked ("" when cast by command)
	ActionHash string     // HashAction of the CURRENT plan's action (the caller recomputes it)
	Reason     string     // why, for Deny
	At         time.Time  // when the vote was cast
}

// Outcome kinds.
const (
	OutcomeVoted     = "voted"     // approval counted, quorum not yet reached
	OutcomeRetracted = "retracted" // approval withdrawn
	OutcomeApproved  = "approved"  // quorum reached: the request is approved
	OutcomeRejected  = "rejected"  // an approver denied it
)

// Outcome is the effect of an accepted ballot.
type Outcome struct {
	Kind    string  // OutcomeVoted, OutcomeRetracted, OutcomeApproved or OutcomeRejected
	Request Request // the request after the ballot: persist it
	Message string  // a sentence for the channel, e.g. "bob approved (1 of 2); 1 more approval needed."
}

// Refusal codes.
const (
	CodeRequester    = "requester"     // the requester cannot vote on their own request
	CodeNotApprover  = "not-approver"  // the user is not an approver
	CodeAlreadyVoted = "already-voted" // a second approval by the same person
	CodeExpired      = "expired"       // the request's time ran out
	CodeWrongMessage = "wrong-message" // the vote was on another chat message
	CodeWrongRequest = "wrong-request" // the vote names another request's nonce
	CodePlanChanged  = "plan-changed"  // the action changed since approval was asked: void and ask again
	CodeFinal        = "final"         // an approval cannot be withdrawn once the request is approved
	CodeNotVoted     = "not-voted"     // nothing to withdraw
	CodeDecided      = "decided"       // the request is already approved, rejected or void
)

// Refusal is why a ballot changed nothing. Reason is a sentence for the
// channel.
type Refusal struct {
	Code   string
	Reason string
}

// Error implements error.
func (e *Refusal) Error() string {
	return "approvals: ballot refused (" + e.Code + "): " + e.Reason
}

// ErrInvalidBallot is returned (wrapped) by Cast for a ballot no adapter
// should produce: no user or an unknown kind. It is a caller bug, not a
// Refusal.
var ErrInvalidBallot = errors.New("approvals: invalid ballot")

func refuse(code, format string, args ...any) (Outcome, error) {
	return Outcome{}, &Refusal{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// tally is "(n of m)".
func tally(n, m int) string { return fmt.Sprintf("(%d of %d)", n, m) }

// approvalsNoun is "1 approval" or "N approvals".
func approvalsNoun(n int) string {
	if n == 1 {
		return "1 approval"
	}
	return fmt.Sprintf("%d approvals", n)
}

// more is "N more approval(s) needed".
func more(n int) string {
	if n <= 0 {
		return "no more approvals needed"
	}
	if n == 1 {
		return "1 more approval needed"
	}
	return fmt.Sprintf("%d more approvals needed", n)
}

// Cast applies ballot b to request r. It is pure: r is not modified (its
// Votes are copied before any change). On success the Outcome holds the new
// request for the caller to persist. Otherwise the error is a *Refusal (or
// wraps ErrInvalidBallot) and the caller persists nothing.
//
// Checks, in order: the ballot names this request (RequestID, when given)
// and its message (MessageRef, when given); the request is still pending
// (retracting after approval is "final") and unexpired at b.At. A retract
// then needs an existing vote and the same action hash. An approve or deny
// needs a voter who is not the requester, is an approver, and sees the same
// action hash; a deny then rejects the request, an approve is counted once
// per person and approves the request when Required distinct approvers have
// approved.
func Cast(r Request, b Ballot) (Outcome, error) {
	if b.User == "" {
		return Outcome{}, fmt.Errorf("%w: no user", ErrInvalidBallot)
	}
	switch b.Kind {
	case Approve, Deny, Retract:
	default:
		return Outcome{}, fmt.Errorf("%w: unknown kind %q", ErrInvalidBallot, b.Kind)
	}

	if b.RequestID != "" && b.RequestID != r.ID {
		return refuse(CodeWrongRequest, "That vote is for a different approval request; nothing changed.")
	}
	if b.MessageRef != "" && !r.Carries(b.MessageRef) {
		return refuse(CodeWrongMessage, "That vote was on a different message; vote on the approval request itself.")
	}

	need := r.required()
	switch r.State {
	case StatePending:
	case StateApproved:
		if b.Kind == Retract {
			return refuse(CodeFinal, "The request is already approved by %s; an approval cannot be withdrawn after that.", names(r.Approvers()))
		}
		return refuse(CodeDecided, "The request is already approved by %s; no more votes are needed.", names(r.Approvers()))
	case StateRejected:
		return refuse(CodeDecided, "The request was already rejected by %s; ask for approval again if needed.", r.DeniedBy)
	case StateExpired:
		return refuse(CodeExpired, "The approval request expired at %s; ask for approval again.", stamp(r.Expires))
	case StateVoid:
		return refuse(CodeDecided, "The approval request was withdrawn (the plan changed or the rotation stopped); vote on the new request.")
	default:
		return refuse(CodeDecided, "The approval request is %q and takes no more votes.", r.State)
	}
	if r.Expired(b.At) {
		return refuse(CodeExpired, "The approval request expired at %s; ask for approval again.", stamp(r.Expires))
	}

	approvers := r.Approvers()
	voted := slices.Contains(approvers, b.User)
	planChanged := r.ActionHash == "" || b.ActionHash != r.ActionHash

	if b.Kind == Retract {
		if !voted {
			return refuse(CodeNotVoted, "%s has no approval on this request to withdraw.", b.User)
		}
		if planChanged {
			return refusePlanChanged()
		}
		r.Votes = slices.DeleteFunc(slices.Clone(r.Votes), func(v Vote) bool { return v.User == b.User })
		n := len(approvers) - 1
		return Outcome{
			Kind:    OutcomeRetracted,
			Request: r,
			Message: fmt.Sprintf("%s withdrew their approval %s; %s.", b.User, tally(n, need), more(need-n)),
		}, nil
	}

	if b.User == r.Requester {
		return refuse(CodeRequester, "%s requested this change and cannot vote on it; it needs %s from other approvers.", b.User, approvalsNoun(need))
	}
	if !b.IsApprover {
		return refuse(CodeNotApprover, "%s is not an approver, so the vote was not counted.", b.User)
	}
	if planChanged {
		return refusePlanChanged()
	}

	if b.Kind == Deny {
		r.State = StateRejected
		r.DeniedBy = b.User
		r.DenyReason = strings.TrimSpace(b.Reason)
		r.DecidedAt = b.At
		msg := b.User + " rejected the request"
		if r.DenyReason != "" {
			msg += ": " + r.DenyReason
		}
		return Outcome{Kind: OutcomeRejected, Request: r, Message: msg + "."}, nil
	}

	if voted {
		return refuse(CodeAlreadyVoted, "%s already approved %s; %s.", b.User, tally(len(approvers), need), more(need-len(approvers)))
	}
	r.Votes = append(slices.Clone(r.Votes), Vote{User: b.User, At: b.At})
	n := len(approvers) + 1
	if n >= need {
		r.State = StateApproved
		r.DecidedAt = b.At
		return Outcome{
			Kind:    OutcomeApproved,
			Request: r,
			Message: fmt.Sprintf("%s approved %s; the request is approved by %s.", b.User, tally(n, need), names(r.Approvers())),
		}, nil
	}
	return Outcome{
		Kind:    OutcomeVoted,
		Request: r,
		Message: fmt.Sprintf("%s approved %s; %s.", b.User, tally(n, need), more(need-n)),
	}, nil
}

func refusePlanChanged() (Outcome, error) {
	return refuse(CodePlanChanged, "The plan changed since approval was asked for; this request no longer applies and approval must be asked again.")
}

// stamp formats t for a chat message.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// names joins users as "a", "a and b", "a, b and c".
func names(users []string) string {
	switch len(users) {
	case 0:
		return "nobody"
	case 1:
		return users[0]
	}
	return strings.Join(users[:len(users)-1], ", ") + " and " + users[len(users)-1]
}
