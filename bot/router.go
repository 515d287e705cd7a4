package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"sepmbot/approvals"
	"sepmbot/commands"
	"sepmbot/rotation"
	"sepmbot/store"
)

// Engine is what the router needs from the runbook; *rotation.Engine implements it.
type Engine interface {
	Plan(ctx context.Context, opts rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error)
	Rotate(ctx context.Context, user, home string, opts rotation.PlanOptions) (rotation.Rotation, error)
	Get(ctx context.Context, id string) (rotation.View, error)
	List(ctx context.Context) ([]rotation.Rotation, error)
	Vote(ctx context.Context, b rotation.Ballot) (approvals.Outcome, error)
	Done(ctx context.Context, user, id, step string) (string, error)
	Confirm(ctx context.Context, user, id, step string) (string, error)
	Pause(ctx context.Context, user, id string) error
	Resume(ctx context.Context, user, id string) error
	Abort(ctx context.Context, user, id, reason string) error
	Audit(ctx context.Context, id string) ([]store.AuditRecord, error)
}

// ApprovalMessages tells whether a message carries an approval request and where its
// rotation lives; *Notifier implements it. The router uses it to answer an emoji that
// does not vote, and to count a vote only from the rotation's home platform.
type ApprovalMessages interface {
	ApprovalHome(ctx context.Context, ref string) (Home, bool)
}

// Emoji that vote on an approval request.
const (
	EmojiApprove = "✅"
	EmojiDeny    = "❌"
)

// Router turns verified chat events into engine calls: drop a delivery already seen,
// check the channel and the user's role, parse, then acknowledge at once and answer
// when the engine is done. Refusals (bad syntax, wrong channel, missing role) are
// decided before anything is written, so they change nothing, and they are shown to
// the user only.
type Router struct {
	Engine     Engine
	Deliveries Deliveries
	Roles      Roles
	// Approvals is how many distinct approvers must say yes (--approvals; 0 means
	// approvals.DefaultRequired). rotate refuses when fewer approvers than that are
	// configured besides the requester; below 2 the rotation records SingleApprover
	// so its card says so.
	Approvals int
	Sites     []string
	// Channels restricts where /sepm is accepted (nil: anywhere).
	Channels Channels
	// Links maps accounts on several platforms to one person (--link): such a
	// person's votes count from any platform, once.
	Links Links
	// Messages recognises approval requests (optional: without it, an emoji that
	// does not vote is ignored silently).
	Messages ApprovalMessages
	// HelpExtra is appended to /sepm help: what this platform adds (the console's
	// react and click lines, the demo's !sim).
	HelpExtra string
	// DedupeTTL is how long a delivery id is remembered (at least 10 minutes).
	DedupeTTL time.Duration
	Log       *slog.Logger
	Now       func() time.Time
}

func (r *Router) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Router) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Serve handles the platform's events until ctx is done and every event read has
// been handled. Events of different users are handled concurrently, so a slow SEPM
// call never stalls the event stream; the events of one user are handled in the
// order they arrived (a reaction and its removal, `done` then `abort`). An event that
// must wait for its user's earlier one is acknowledged when it arrives (a placeholder
// through its Reply), so it never misses the platform's answer deadline.
func (r *Router) Serve(ctx context.Context, p Platform) {
	type queued struct {
		ev    Event
		acked bool
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		queues = map[string][]queued{} // user key -> events waiting for its worker
	)
	for ev := range p.Events(ctx) {
		key := ev.UserKey()
		mu.Lock()
		q, busy := queues[key]
		acked := false
		if busy && ev.Reply != nil {
			if err := ev.Reply.Ack(ctx, working); err != nil {
				r.log().Warn("acknowledging", "platform", p.Name(), "err", err)
			}
			acked = true
		}
		queues[key] = append(q, queued{ev, acked})
		mu.Unlock()
		if busy {
			continue // that user's worker takes it in turn
		}
		wg.Go(func() {
			for {
				mu.Lock()
				q := queues[key]
				if len(q) == 0 {
					delete(queues, key)
					mu.Unlock()
					return
				}
				it := q[0]
				queues[key] = q[1:]
				mu.Unlock()
				r.serveOne(ctx, p, it.ev, it.acked)
			}
		})
	}
	wg.Wait()
}

// platformReply answers through Platform.Respond, for events without a Reply: the
// platform has no ack deadline, so placeholders are dropped.
type platformReply struct {
	p  Platform
	ev Event
}

// Ack shows m unless it is a placeholder.
func (pr platformReply) Ack(ctx context.Context, m Message) error {
	if m.Placeholder {
		return nil
	}
	return pr.p.Respond(ctx, pr.ev, m)
}

// Answer shows m.
func (pr platformReply) Answer(ctx context.Context, m Message) error {
	return pr.p.Respond(ctx, pr.ev, m)
}

// working is the acknowledgement of a command whose answer follows.
var working = Message{Text: "⏳ working on it…", Visibility: VisibleUser, Placeholder: true}

func empty(m Message) bool {
	return m.Text == "" && m.Title == "" && m.Status == "" && len(m.Steps) == 0 && len(m.Context) == 0 && len(m.List) == 0
}

// serveOne handles one event: the fast checks and the acknowledgement at once, the
// engine's work after, its answer through the event's reply handle. acked says the
// event was acknowledged already (it waited behind its user's earlier event).
func (r *Router) serveOne(ctx context.Context, p Platform, ev Event, acked bool) {
	reply := ev.Reply
	if reply == nil {
		reply = platformReply{p: p, ev: ev}
	}
	now, later := r.decide(ctx, ev)
	if later == nil {
		if empty(now) {
			return
		}
		send := reply.Ack
		if acked {
			send = reply.Answer
		}
		if err := send(ctx, now); err != nil {
			r.log().Warn("answering", "platform", p.Name(), "err", err)
		}
		return
	}
	if !acked {
		if err := reply.Ack(ctx, working); err != nil {
			r.log().Warn("acknowledging", "platform", p.Name(), "err", err)
		}
	}
	msg := later(ctx)
	if empty(msg) {
		return
	}
	if err := reply.Answer(ctx, msg); err != nil {
		r.log().Warn("answering", "platform", p.Name(), "err", err)
	}
}

// Handle processes one event and returns the answer for its user (empty: none),
// doing the engine's work before it returns.
func (r *Router) Handle(ctx context.Context, ev Event) Message {
	now, later := r.decide(ctx, ev)
	if later == nil {
		return now
	}
	return later(ctx)
}

// job is the engine's part of handling an event: it may take seconds.
type job func(ctx context.Context) Message

// toUser marks an answer as the user's only.
func toUser(text string) Message { return Message{Text: text, Visibility: VisibleUser} }

// decide makes the fast decisions about ev (refusals, duplicates, help) and returns
// either the answer now, or the job that computes it.
//
// The delivery id is recorded (durably, Deliveries) before the answer or the job.
// For an event the platform has Recorded, the platform's own record already keeps
// redeliveries out: an answer that changes nothing (help, usage, a refusal) goes at
// once, and the delivery id is recorded only at the start of the job (after the
// placeholder ack), so the engine acts at most once even when the platform hands the
// event out again after a restart.
func (r *Router) decide(ctx context.Context, ev Event) (Message, job) {
	now, later := r.decideOnce(ctx, ev)
	if later == nil || !ev.Recorded {
		return now, later
	}
	return now, func(ctx context.Context) Message {
		ok, err := r.record(ctx, ev)
		switch {
		case err != nil:
			return toUser("not done: sepmbot could not record this request just now; nothing changed, try again")
		case !ok:
			return Message{} // handled before a restart: not again
		}
		return later(ctx)
	}
}

func (r *Router) decideOnce(ctx context.Context, ev Event) (Message, job) {
	switch ev.Kind {
	case EventCommand:
		return r.command(ctx, ev)
	case EventReactionAdded, EventReactionRemoved:
		kind, ok := reactionBallot(ev)
		if !ok {
			if _, isRequest := r.approvalHome(ctx, ev); isRequest && ev.Kind == EventReactionAdded {
				return toUser(fmt.Sprintf("%s does not vote: react ✅ to approve or ❌ to deny (a 👍 is not a vote)", ev.Reaction)), nil
			}
			return Message{}, nil // people react with other emoji too
		}
		return r.vote(ctx, ev, rotation.Ballot{MessageRef: ev.Ref().String(), Kind: kind})
	case EventButton:
		var kind approvals.BallotKind
		switch strings.ToLower(ev.ActionID) {
		case "approve":
			kind = approvals.Approve
		case "deny":
			kind = approvals.Deny
		default:
			return toUser(fmt.Sprintf("unknown button %q", ev.ActionID)), nil
		}
		return r.vote(ctx, ev, rotation.Ballot{RequestID: ev.Value, MessageRef: ev.Ref().String(), Kind: kind, Reason: ev.Text}) // Text: a deny form's reason (Discord)
	}
	return toUser("unsupported event"), nil
}

// Reaction names that vote, with or without the variation selector and colons:
// ✅ ✔️ :white_check_mark: :heavy_check_mark: approve; ❌ ✖️ :x:
// :heavy_multiplication_x: deny. A thumbs-up does not: a casual 👍 must not open the
// window.
var (
	approveEmoji = []string{"✅", "✔", "white_check_mark", "heavy_check_mark"}
	denyEmoji    = []string{"❌", "✖", "x", "heavy_multiplication_x"}
)

// EmojiVote says what a reaction means: approve, deny, or nothing (ok false).
func EmojiVote(emoji string) (approve, ok bool) {
	e := strings.TrimSuffix(strings.Trim(strings.TrimSpace(emoji), ":"), "\ufe0f")
	for _, a := range approveEmoji {
		if e == a {
			return true, true
		}
	}
	for _, d := range denyEmoji {
		if e == d {
			return false, true
		}
	}
	return false, false
}

func reactionBallot(ev Event) (approvals.BallotKind, bool) {
	approve, ok := EmojiVote(ev.Reaction)
	switch {
	case !ok:
		return "", false
	case approve && ev.Kind == EventReactionRemoved:
		return approvals.Retract, true
	case approve:
		return approvals.Approve, true
	case ev.Kind == EventReactionAdded:
		return approvals.Deny, true
	}
	return "", false // removing a ❌ takes nothing back: a deny is final
}

func usage(err error) Message {
	var ue *commands.UsageError
	if errors.As(err, &ue) {
		return toUser(ue.Msg + "\nusage: " + ue.Usage)
	}
	return toUser(err.Error())
}

// person is who the event's user counts as (their link, or themselves).
func (r *Router) person(ev Event) string { return r.Links.Person(ev.UserKey()) }

func (r *Router) command(ctx context.Context, ev Event) (Message, job) {
	if !r.Channels.Allows(ev.Platform, ev.Channel) {
		return toUser(fmt.Sprintf("refused: sepmbot takes /sepm only in %s on %s, not here", strings.Join(r.Channels[ev.Platform], ", "), ev.Platform)), nil
	}
	cmd, err := commands.Parse(ev.Text, r.Sites)
	if err != nil {
		return usage(err), nil
	}
	held := r.Roles.Held(ev)
	if !cmd.Role().SatisfiedBy(held...) {
		return toUser(fmt.Sprintf("refused: `%s` needs the %s role, and %s does not hold it", cmd.Name, cmd.Role(), ev.UserKey())), nil
	}
	if cmd.Name == "rotate" {
		if need, n := r.required(), r.Roles.ApproversOtherThan(ev); n < need {
			return toUser(fmt.Sprintf("rotate refused: secure communication may go off only after %d %s other than the requester, and only %d %s configured besides %s (--approvers); nobody could approve this rotation. Add approvers, or ask another operator to request it.",
				need, plural(need, "approver says yes", "approvers say yes"), n, plural(n, "approver is", "approvers are"), ev.UserKey())), nil
		}
	}
	if !ev.Recorded && !r.fresh(ctx, ev) {
		return Message{}, nil
	}
	user := r.person(ev)
	switch cmd.Name {
	case "help":
		if cmd.Topic != "" {
			return toUser(commands.HelpTopic(cmd.Topic)), nil
		}
		return toUser(helpText(r.HelpExtra)), nil
	case "plan":
		return Message{}, func(ctx context.Context) Message {
			p, _, err := r.plan(ctx, cmd.Site, planOptions(cmd))
			if err != nil {
				return toUser("plan failed: " + err.Error())
			}
			return PlanMessage(p)
		}
	case "rotate":
		opts := planOptions(cmd)
		opts.SingleApprover = r.required() < 2
		return Message{}, func(ctx context.Context) Message {
			rot, err := r.rotate(ctx, cmd.Site, user, ev.Home().String(), opts)
			if err != nil {
				return toUser("rotate refused: " + err.Error())
			}
			return toUser(fmt.Sprintf("%s started (%s-server path); follow its card", rot.ID, rot.Plan.Path))
		}
	case "status":
		return Message{}, func(ctx context.Context) Message {
			if cmd.ID == "" {
				return r.list(ctx, true)
			}
			v, err := r.Engine.Get(ctx, cmd.ID)
			if err != nil {
				return toUser(err.Error())
			}
			return RenderCard(v, r.now()) // in the channel asked, wherever the card lives
		}
	case "list":
		return Message{}, func(ctx context.Context) Message { return r.list(ctx, false) }
	case "approve", "deny":
		kind := approvals.Approve
		if cmd.Name == "deny" {
			kind = approvals.Deny
		}
		return Message{}, func(ctx context.Context) Message {
			return r.cast(ctx, ev, rotation.Ballot{Rotation: cmd.ID, Kind: kind, Reason: cmd.Reason})
		}
	case "done":
		if cmd.AcceptOrphansSet {
			ao, ok := r.Engine.(OrphanAccepter)
			if !ok {
				return answer("", errors.New("this engine cannot accept suspected orphans")), nil
			}
			return Message{}, func(ctx context.Context) Message {
				return answer(ao.AcceptOrphans(ctx, user, cmd.ID, cmd.Step, cmd.AcceptOrphans))
			}
		}
		return Message{}, func(ctx context.Context) Message { return answer(r.Engine.Done(ctx, user, cmd.ID, cmd.Step)) }
	case "confirm":
		return Message{}, func(ctx context.Context) Message { return answer(r.Engine.Confirm(ctx, user, cmd.ID, cmd.Step)) }
	case "pause":
		return Message{}, func(ctx context.Context) Message { return answer(cmd.ID+" paused", r.Engine.Pause(ctx, user, cmd.ID)) }
	case "resume":
		return Message{}, func(ctx context.Context) Message {
			return answer(cmd.ID+" resumed", r.Engine.Resume(ctx, user, cmd.ID))
		}
	case "abort":
		return Message{}, func(ctx context.Context) Message {
			return answer(cmd.ID+" aborting: reverting safely", r.Engine.Abort(ctx, user, cmd.ID, cmd.Reason))
		}
	case "audit":
		return Message{}, func(ctx context.Context) Message {
			recs, err := r.Engine.Audit(ctx, cmd.ID)
			if err != nil {
				return toUser(err.Error())
			}
			return Message{Text: RenderAudit(cmd.ID, recs)}
		}
	}
	return toUser("unknown command " + cmd.Name), nil
}

// OrphanAccepter is an Engine that takes an operator's audited decision to go on
// despite N suspected orphaned clients (`done R1 STEP --accept-orphans N`).
type OrphanAccepter interface {
	AcceptOrphans(ctx context.Context, user, id, step string, n int) (string, error)
}

// SiteEngine is an Engine that runs several sites (sites.Mux): plan and rotate then
// go to the site the command names.
type SiteEngine interface {
	PlanSite(ctx context.Context, site string, opts rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error)
	RotateSite(ctx context.Context, site, user, home string, opts rotation.PlanOptions) (rotation.Rotation, error)
}

func (r *Router) plan(ctx context.Context, site string, opts rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error) {
	if se, ok := r.Engine.(SiteEngine); ok {
		return se.PlanSite(ctx, site, opts)
	}
	return r.Engine.Plan(ctx, opts)
}

func (r *Router) rotate(ctx context.Context, site, user, home string, opts rotation.PlanOptions) (rotation.Rotation, error) {
	if se, ok := r.Engine.(SiteEngine); ok {
		return se.RotateSite(ctx, site, user, home, opts)
	}
	return r.Engine.Rotate(ctx, user, home, opts)
}

// required is how many approvers must say yes.
func (r *Router) required() int {
	if r.Approvals > 0 {
		return r.Approvals
	}
	return approvals.DefaultRequired
}

func answer(ok string, err error) Message {
	if err != nil {
		return toUser("refused: " + err.Error())
	}
	return toUser(ok)
}

func planOptions(c commands.Command) rotation.PlanOptions {
	o := rotation.PlanOptions{Mode: c.Mode, MinWait: c.MinWait, Straggler: c.Straggler, StragglerSet: c.StragglerSet, DamagedButValid: c.Damaged}
	for _, pin := range c.NewCerts {
		if o.NewCerts == nil {
			o.NewCerts = map[string]string{}
		}
		o.NewCerts[pin.Server] = pin.SHA256
	}
	return o
}

// vote checks a reaction's or a click's role and freshness; the engine call follows.
func (r *Router) vote(ctx context.Context, ev Event, b rotation.Ballot) (Message, job) {
	if !r.Roles.IsApprover(ev) {
		return toUser(fmt.Sprintf("refused: %s does not hold the approver role", ev.UserKey())), nil
	}
	if home, ok := r.approvalHome(ctx, ev); ok && home.Platform != ev.Platform && !r.Links.Linked(ev.UserKey()) {
		return toUser(fmt.Sprintf("vote refused: this rotation lives on %s, and votes count only from there (or from accounts linked with --link)", home.Platform)), nil
	}
	if !ev.Recorded && !r.fresh(ctx, ev) {
		return Message{}, nil
	}
	return Message{}, func(ctx context.Context) Message { return r.cast(ctx, ev, b) }
}

// approvalHome is the home of the rotation whose approval request ev is about, if
// the message carries one.
func (r *Router) approvalHome(ctx context.Context, ev Event) (Home, bool) {
	if r.Messages == nil || ev.MessageRef == "" {
		return Home{}, false
	}
	return r.Messages.ApprovalHome(ctx, ev.Ref().String())
}

// cast hands a ballot of a checked, fresh event to the engine. A vote counts only
// from the platform the rotation lives on, unless the voter's accounts are linked:
// then it counts as the person, once.
func (r *Router) cast(ctx context.Context, ev Event, b rotation.Ballot) Message {
	if b.Rotation != "" && !r.Links.Linked(ev.UserKey()) {
		if v, err := r.Engine.Get(ctx, b.Rotation); err == nil {
			if h, ok := ParseHome(v.Rotation.Home); ok && h.Platform != ev.Platform {
				return toUser(fmt.Sprintf("vote refused: %s lives on %s, and votes count only from there (or from accounts linked with --link)", v.Rotation.ID, h.Platform))
			}
		}
	}
	b.User, b.IsApprover = r.person(ev), r.Roles.IsApprover(ev)
	out, err := r.Engine.Vote(ctx, b)
	if err != nil {
		var ref *approvals.Refusal
		if errors.As(err, &ref) {
			return toUser("vote refused: " + ref.Reason)
		}
		return toUser("vote refused: " + err.Error())
	}
	return toUser(out.Message)
}

func (r *Router) list(ctx context.Context, activeOnly bool) Message {
	rots, err := r.Engine.List(ctx)
	if err != nil {
		return toUser(err.Error())
	}
	var b strings.Builder
	for i := len(rots) - 1; i >= 0; i-- { // newest first
		rot := rots[i]
		if activeOnly && !rot.Active() {
			continue
		}
		step := "(end)"
		if s, _, ok := rot.Current(); ok {
			step = s.ID
		}
		fmt.Fprintf(&b, "%s · %s · %s path · %s · step %s · by %s\n", rot.ID, rot.Site, rot.Plan.Path, rot.Status, step, displayUser(rot.Requester))
	}
	if b.Len() == 0 {
		if activeOnly {
			return Message{Text: "no active rotation"}
		}
		return Message{Text: "no rotation yet"}
	}
	return Message{Text: strings.TrimRight(b.String(), "\n")}
}
