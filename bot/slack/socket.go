package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"sepmbot/internal/ctxsleep"
)

// fatalAuth reports errors after which reconnecting cannot help: the token is
// wrong, revoked or its account gone.
func fatalAuth(err error) bool {
	if err == nil {
		return false
	}
	switch err.Error() {
	case "invalid_auth", "account_inactive", "not_authed", "token_revoked", "token_expired", "no_permission", "missing_scope":
		return true
	}
	var sc slack.StatusCodeError
	return errors.As(err, &sc) && sc.Code == http.StatusNotFound
}

// runSocket runs Socket Mode until ctx is done or Slack refuses the tokens. A drop
// for any other reason reconnects (slack-go does within one run; a run that ends
// anyway is started again after a backoff).
func (a *Adapter) runSocket(ctx context.Context) error {
	backoff := time.Second
	for {
		sm := socketmode.New(a.api,
			socketmode.OptionPingInterval(a.cfg.PingInterval),
			socketmode.OptionLog(log.New(io.Discard, "", 0)))
		rctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- sm.RunContext(rctx) }()
		err := a.readSocket(rctx, sm, errc)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if fatalAuth(err) {
			return fmt.Errorf("slack: Socket Mode refused: %w", err)
		}
		a.log.Warn("slack: Socket Mode stopped; reconnecting", "err", err, "in", backoff)
		if ctxsleep.Sleep(ctx, backoff) != nil {
			return nil
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// readSocket reads the client's events until its run ends; it never blocks on
// work: envelopes go to the intake queue.
func (a *Adapter) readSocket(ctx context.Context, sm *socketmode.Client, errc <-chan error) error {
	for {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return <-errc
		case evt := <-sm.Events:
			a.onSocketEvent(ctx, sm, evt)
		}
	}
}

func (a *Adapter) onSocketEvent(ctx context.Context, sm *socketmode.Client, evt socketmode.Event) {
	ack := func(req *socketmode.Request) func(any) {
		return func(p any) {
			if req == nil {
				return
			}
			if _, no := p.(errorPayload); no {
				return // not recorded: let Slack deliver it again
			}
			go func() {
				actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
				defer cancel()
				if err := sm.AckCtx(actx, req.EnvelopeID, p); err != nil {
					a.log.Warn("slack: ack failed", "envelope", req.EnvelopeID, "err", err)
				}
			}()
		}
	}
	switch evt.Type {
	case socketmode.EventTypeConnected:
		a.log.Info("slack: Socket Mode connected")
		a.signalConnected()
		go a.reconcile(ctx)
	case socketmode.EventTypeConnectionError:
		a.log.Warn("slack: Socket Mode connection error; retrying")
	case socketmode.EventTypeEventsAPI:
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		recs := a.fromEvent(ev)
		if !ok || len(recs) == 0 {
			ack(evt.Request)(nil)
			return
		}
		a.submit(recs, ack(evt.Request), false)
	case socketmode.EventTypeInteractive:
		cb, _ := evt.Data.(slack.InteractionCallback)
		recs, no := a.fromInteraction(cb)
		if no != "" || len(recs) == 0 {
			ack(evt.Request)(nil)
			a.refuse(ctx, cb.Container.ChannelID, cb.User.ID, no)
			return
		}
		a.submit(recs, ack(evt.Request), false)
	case socketmode.EventTypeSlashCommand:
		sc, _ := evt.Data.(slack.SlashCommand)
		rec, no := a.fromCommand(sc)
		if no != "" {
			ack(evt.Request)(map[string]any{"response_type": "ephemeral", "text": string(no)})
			return
		}
		a.submit([]record{rec}, ack(evt.Request), true)
	}
}

// submit queues records on the intake; one ack answers them all once every one is
// recorded (and, for a command, once the router acknowledged or AckWait passed).
func (a *Adapter) submit(recs []record, ack func(any), command bool) {
	if len(recs) == 1 {
		a.incoming.push(&delivery{rec: recs[0], ack: a.newAcker(ack, command)})
		return
	}
	// Several actions in one envelope (rare): ack when the last is recorded.
	left := len(recs)
	var first any
	var mu sync.Mutex
	var ds []*delivery
	for _, r := range recs {
		ds = append(ds, &delivery{rec: r, ack: a.newAcker(func(p any) {
			mu.Lock()
			left--
			if _, no := p.(errorPayload); no {
				first = p
			}
			last := left == 0
			mu.Unlock()
			if last {
				ack(first)
			}
		}, false)})
	}
	a.incoming.push(ds...)
}

// refuse tells a person why an envelope was refused (chat.postEphemeral).
func (a *Adapter) refuse(ctx context.Context, channel, user string, why refusal) {
	if why == "" || channel == "" || user == "" {
		return
	}
	go func() {
		if _, err := a.api.PostEphemeralContext(context.WithoutCancel(ctx), channel, user, slack.MsgOptionText(string(why), false)); err != nil {
			a.log.Warn("slack: telling a refusal", "err", err)
		}
	}()
}

// signalConnected wakes those waiting for the next connection (tests).
func (a *Adapter) signalConnected() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.connected)
	a.connected = make(chan struct{})
}

// Connected is closed at the adapter's next Socket Mode connection.
func (a *Adapter) Connected() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connected
}
