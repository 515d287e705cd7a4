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

// Deliveries records delivery ids so each event is processed at most once;
// *store.DB implements it.
type Deliveries interface {
	Deliver(ctx context.Context, id string, now time.Time, ttl time.Duration) (bool, error)
}

// Emoji that vote on an approval request.
const (
	EmojiApprove = "✅"
	EmojiDeny    = "❌"
)

// Router turns verified chat events into engine calls: drop a delivery already seen,
// check the user's role, parse, call, answer. Refusals (bad syntax, missing role)
// are decided before anything is written, so they change nothing.
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
// order they arrived (a reaction and its removal, `done` then `abort`).
func (r *Router) Serve(ctx context.Context, p Platform) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		queues = map[string][]Event{} // user key -> events waiting for its worker
	)
	for ev := range p.Events(ctx) {
		key := ev.UserKey()
		mu.Lock()
		q, busy := queues[key]
		queues[key] = append(q, ev)
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
				ev := q[0]
				queues[key] = q[1:]
				mu.Unlock()
				r.serveOne(ctx, p, ev)
			}
		})
	}
	wg.Wait()
}

// serveOne handles one event and answers its user.
func (r *Router) serveOne(ctx context.Context, p Platform, ev Event) {
	msg := r.Handle(ctx, ev)
	if msg.Text == "" {
		return
	}
	if err := p.Respond(ctx, ev, msg); err != nil {
		r.log().Warn("responding", "platform", p.Name(), "err", err)
	}
}

// Handle processes one event and returns the answer for its user (empty: none).
func (r *Router) Handle(ctx context.Context, ev Event) Message {
	switch ev.Kind {
	case EventCommand:
		return r.command(ctx, ev)
	case EventReactionAdded, EventReactionRemoved:
		kind, ok := reactionBallot(ev)
		if !ok {
			return Message{} // people react with other emoji too
		}
		return r.vote(ctx, ev, rotation.Ballot{MessageRef: ev.MessageRef, Kind: kind})
	case EventButton:
		var kind approvals.BallotKind
		switch ev.ActionID {
		case "approve":
			kind = approvals.Approve
		case "deny":
			kind = approvals.Deny
		default:
			return Message{Text: fmt.Sprintf("unknown button %q", ev.ActionID)}
		}
		return r.vote(ctx, ev, rotation.Ballot{RequestID: ev.Value, MessageRef: ev.MessageRef, Kind: kind})
	}
	return Message{Text: "unsupported event"}
}

func reactionBallot(ev Event) (approvals.BallotKind, bool) {
	emoji := strings.TrimSuffix(ev.Reaction, "\ufe0f")
	switch {
	case emoji == EmojiApprove || emoji == "white_check_mark" || emoji == "heavy_check_mark":
		if ev.Kind == EventReactionRemoved {
			return approvals.Retract, true
		}
		return approvals.Approve, true
	case (emoji == EmojiDeny || emoji == "x") && ev.Kind == EventReactionAdded:
		return approvals.Deny, true
	}
	return "", false
}

// fresh records the delivery id; false means it was already processed.
func (r *Router) fresh(ctx context.Context, ev Event) bool {
	if ev.DeliveryID == "" {
		return true
	}
	ttl := max(r.DedupeTTL, 10*time.Minute)
	ok, err := r.Deliveries.Deliver(ctx, ev.Platform+"/"+ev.DeliveryID, r.now(), ttl)
	if err != nil {
		r.log().Error("recording delivery id", "err", err)
		return false // fail closed: better to ask the user to repeat than to act twice
	}
	if !ok {
		r.log().Info("dropping a repeated delivery", "delivery", ev.DeliveryID)
	}
	return ok
}

func usage(err error) Message {
	var ue *commands.UsageError
	if errors.As(err, &ue) {
		return Message{Text: ue.Msg + "\nusage: " + ue.Usage}
	}
	return Message{Text: err.Error()}
}

func (r *Router) command(ctx context.Context, ev Event) Message {
	cmd, err := commands.Parse(ev.Text, r.Sites)
	if err != nil {
		return usage(err)
	}
	held := r.Roles.Held(ev)
	if !cmd.Role().SatisfiedBy(held...) {
		return Message{Text: fmt.Sprintf("refused: `%s` needs the %s role, and %s does not hold it", cmd.Name, cmd.Role(), ev.UserKey())}
	}
	if cmd.Name == "rotate" {
		if need, n := r.required(), r.Roles.ApproversOtherThan(ev); n < need {
			return Message{Text: fmt.Sprintf("rotate refused: secure communication may go off only after %d %s other than the requester, and only %d %s configured besides %s (--approvers); nobody could approve this rotation. Add approvers, or ask another operator to request it.",
				need, plural(need, "approver says yes", "approvers say yes"), n, plural(n, "approver is", "approvers are"), ev.UserKey())}
		}
	}
	if !r.fresh(ctx, ev) {
		return Message{}
	}
	user := ev.UserKey()
	switch cmd.Name {
	case "help":
		if cmd.Topic != "" {
			return Message{Text: commands.HelpTopic(cmd.Topic)}
		}
		return Message{Text: commands.Help()}
	case "plan":
		p, _, err := r.Engine.Plan(ctx, planOptions(cmd))
		if err != nil {
			return Message{Text: "plan failed: " + err.Error()}
		}
		return Message{Text: RenderPlan(p)}
	case "rotate":
		opts := planOptions(cmd)
		opts.SingleApprover = r.required() < 2
		rot, err := r.Engine.Rotate(ctx, user, ev.Platform+"|"+ev.Channel, opts)
		if err != nil {
			return Message{Text: "rotate refused: " + err.Error()}
		}
		return Message{Text: fmt.Sprintf("%s started (%s-server path); follow its card", rot.ID, rot.Plan.Path)}
	case "status":
		if cmd.ID == "" {
			return r.list(ctx, true)
		}
		v, err := r.Engine.Get(ctx, cmd.ID)
		if err != nil {
			return Message{Text: err.Error()}
		}
		return RenderCard(v, r.now())
	case "list":
		return r.list(ctx, false)
	case "approve", "deny":
		kind := approvals.Approve
		if cmd.Name == "deny" {
			kind = approvals.Deny
		}
		return r.cast(ctx, ev, rotation.Ballot{Rotation: cmd.ID, Kind: kind, Reason: cmd.Reason})
	case "done":
		if cmd.AcceptOrphansSet {
			ao, ok := r.Engine.(interface {
				AcceptOrphans(ctx context.Context, user, id, step string, n int) (string, error)
			})
			if !ok {
				return answer("", errors.New("this engine cannot accept suspected orphans"))
			}
			msg, err := ao.AcceptOrphans(ctx, user, cmd.ID, cmd.Step, cmd.AcceptOrphans)
			return answer(msg, err)
		}
		msg, err := r.Engine.Done(ctx, user, cmd.ID, cmd.Step)
		return answer(msg, err)
	case "confirm":
		msg, err := r.Engine.Confirm(ctx, user, cmd.ID, cmd.Step)
		return answer(msg, err)
	case "pause":
		return answer(cmd.ID+" paused", r.Engine.Pause(ctx, user, cmd.ID))
	case "resume":
		return answer(cmd.ID+" resumed", r.Engine.Resume(ctx, user, cmd.ID))
	case "abort":
		return answer(cmd.ID+" aborting: reverting safely", r.Engine.Abort(ctx, user, cmd.ID, cmd.Reason))
	case "audit":
		recs, err := r.Engine.Audit(ctx, cmd.ID)
		if err != nil {
			return Message{Text: err.Error()}
		}
		return Message{Text: RenderAudit(cmd.ID, recs)}
	}
	return Message{Text: "unknown command " + cmd.Name}
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
		return Message{Text: "refused: " + err.Error()}
	}
	return Message{Text: ok}
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

func (r *Router) vote(ctx context.Context, ev Event, b rotation.Ballot) Message {
	if !r.Roles.IsApprover(ev) {
		return Message{Text: fmt.Sprintf("refused: %s does not hold the approver role", ev.UserKey())}
	}
	if !r.fresh(ctx, ev) {
		return Message{}
	}
	return r.cast(ctx, ev, b)
}

// cast hands a ballot of a checked, fresh event to the engine.
func (r *Router) cast(ctx context.Context, ev Event, b rotation.Ballot) Message {
	b.User, b.IsApprover = ev.UserKey(), r.Roles.IsApprover(ev)
	out, err := r.Engine.Vote(ctx, b)
	if err != nil {
		var ref *approvals.Refusal
		if errors.As(err, &ref) {
			return Message{Text: "vote refused: " + ref.Reason}
		}
		return Message{Text: "vote refused: " + err.Error()}
	}
	return Message{Text: out.Message}
}

func (r *Router) list(ctx context.Context, activeOnly bool) Message {
	rots, err := r.Engine.List(ctx)
	if err != nil {
		return Message{Text: err.Error()}
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
		fmt.Fprintf(&b, "%s · %s · %s path · %s · step %s · by %s\n", rot.ID, rot.Site, rot.Plan.Path, rot.Status, step, rot.Requester)
	}
	if b.Len() == 0 {
		if activeOnly {
			return Message{Text: "no active rotation"}
		}
		return Message{Text: "no rotation yet"}
	}
	return Message{Text: strings.TrimRight(b.String(), "\n")}
}
