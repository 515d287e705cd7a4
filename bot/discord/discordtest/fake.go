// Package discordtest is a fake Discord for tests: an httptest server on loopback that
// speaks the REST API v9 paths sepmbot's Discord adapter uses (messages, edits,
// reactions, threads, interaction callbacks and webhooks, members, application
// commands) with Discord's JSON shapes and its 429 answer (a JSON body with
// retry_after in seconds), and a gateway websocket that sends HELLO, answers
// IDENTIFY with READY, refuses RESUME with INVALID_SESSION (as discordgo v0.29.0
// often meets in production), and dispatches the frames a test pushes.
//
// Point a discordgo session at it with Fake.Client: its Transport rewrites every
// https://discord.com request to the fake (discordgo computes its Endpoint strings at
// package init, so reassigning them does nothing).
package discordtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Clock is the time the fake's rate limits count in; tests share one with the
// adapter's sleeps so a wait of retry_after really passes.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Call is one REST request the fake received.
type Call struct {
	Method, Path string
	Body         json.RawMessage
	Status       int
}

// Message is a message as the fake keeps it.
type Message struct {
	ID, ChannelID string
	Content       string
	Embeds        json.RawMessage
	Components    json.RawMessage
	Flags         int
	// AllowedMentions is the allowed_mentions object of the last send or edit.
	AllowedMentions json.RawMessage
	Edits           int
	// Thread is true when a thread was started from this message.
	Thread bool
}

// Callback is one interaction response (POST /interactions/{id}/{token}/callback).
type Callback struct {
	InteractionID string
	Type          int
	Data          json.RawMessage
	// Latency is the time from the INTERACTION_CREATE dispatch to this response, on
	// the fake's clock (zero for an interaction the fake did not dispatch).
	Latency time.Duration
}

// Webhook is one call on an interaction's webhook (followups, @original edits).
type Webhook struct {
	Method, Token, Target string // Target: "" (followup), "@original"
	Body                  json.RawMessage
}

// limit is a rate limit: at most n calls per window on the routes it matches.
type limit struct {
	match      func(method, path string) bool
	n          int
	window     time.Duration
	retryAfter time.Duration
	times      []time.Time
}

// Fake is the fake Discord.
type Fake struct {
	URL                 string // http://127.0.0.1:PORT
	AppID, BotID, Guild string
	// Token, when set, is the only bot token the fake accepts (REST 401, gateway
	// close 4004 "Authentication failed" otherwise).
	Token               string
	srv                 *httptest.Server
	clock               Clock
	upgrader            websocket.Upgrader
	mu                  sync.Mutex
	changed             chan struct{} // closed and replaced on every change
	next                int64
	calls               []Call
	messages            map[string]*Message
	order               []string            // message ids in creation order
	reactions           map[string][]string // channel/message/emoji -> user ids
	members             map[string][]string // user id -> role ids
	callbacks           []Callback
	webhooks            []Webhook
	commands            map[string]json.RawMessage // "global" or guild id -> last overwrite
	limits              []*limit
	limited             int // 429s sent
	conn                *websocket.Conn
	connMu              sync.Mutex // serialises writes on conn
	seq                 int64
	intents             int
	after               *[]func()            // gateway events of the call being served
	dispatched          map[string]time.Time // interaction id -> when dispatched
	identifies, resumes int
	gatewayHeld         chan struct{} // non-nil: new connections wait until it is closed
	withheld            []string      // event types dispatched while no session was up
}

// New starts a fake on 127.0.0.1 with the given clock (nil: the wall clock).
func New(clock Clock) *Fake {
	if clock == nil {
		clock = wallClock{}
	}
	f := &Fake{
		AppID: "1100000000000000001", BotID: "1200000000000000001", Guild: "1300000000000000001",
		clock: clock, changed: make(chan struct{}), next: 1500000000000000000,
		messages: map[string]*Message{}, reactions: map[string][]string{}, members: map[string][]string{},
		commands: map[string]json.RawMessage{}, dispatched: map[string]time.Time{},
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Start() // httptest listens on 127.0.0.1
	f.URL = f.srv.URL
	return f
}

// Close stops the fake.
func (f *Fake) Close() {
	f.Kick()
	f.srv.CloseClientConnections()
	f.srv.Close()
}

// Client is an http.Client whose every request (REST, callbacks, webhooks) goes to the fake.
func (f *Fake) Client() *http.Client {
	u, _ := url.Parse(f.URL)
	return &http.Client{Transport: rewrite{host: u.Host}, Timeout: 10 * time.Second}
}

type rewrite struct{ host string }

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host, req.Host = "http", r.host, r.host
	return http.DefaultTransport.RoundTrip(req)
}

// touch wakes Wait; f.mu must be held.
func (f *Fake) touch() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Wait blocks until cond (called with the fake's lock held) is true or the timeout
// passes; it reports whether cond became true. It wakes on every change, never polls.
func (f *Fake) Wait(timeout time.Duration, cond func(v View) bool) bool {
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		ok := cond(View{f})
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// View reads the fake's records inside Wait or Snapshot (the lock is held).
type View struct{ f *Fake }

// Calls are the REST requests so far.
func (v View) Calls() []Call { return v.f.calls }

// Messages are the messages posted so far, oldest first.
func (v View) Messages() []*Message {
	out := make([]*Message, 0, len(v.f.order))
	for _, id := range v.f.order {
		out = append(out, v.f.messages[id])
	}
	return out
}

// Message returns the message with id, or nil.
func (v View) Message(id string) *Message { return v.f.messages[id] }

// Callbacks are the interaction responses so far.
func (v View) Callbacks() []Callback { return v.f.callbacks }

// Webhooks are the interaction webhook calls so far.
func (v View) Webhooks() []Webhook { return v.f.webhooks }

// Reactions lists who reacted with emoji on a message.
func (v View) Reactions(channel, message, emoji string) []string {
	return v.f.reactions[channel+"/"+message+"/"+emoji]
}

// Commands is the last bulk overwrite for scope ("global" or a guild id).
func (v View) Commands(scope string) json.RawMessage { return v.f.commands[scope] }

// Limited is the number of 429 answers sent.
func (v View) Limited() int { return v.f.limited }

// Identifies counts IDENTIFY frames received (one per READY sent).
func (v View) Identifies() int { return v.f.identifies }

// Resumes counts RESUME frames received (each refused with INVALID_SESSION).
func (v View) Resumes() int { return v.f.resumes }

// Withheld lists the event types dispatched while no gateway session was up.
func (v View) Withheld() []string { return v.f.withheld }

// Snapshot runs fn on the records under the lock.
func (f *Fake) Snapshot(fn func(v View)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(View{f})
}

// SetMember gives a guild member roles (GET /guilds/{g}/members/{u}).
func (f *Fake) SetMember(user string, roles ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[user] = roles
}

// Limit rate-limits the routes whose "METHOD /path" (path without /api/v9) starts
// with prefix: at most n calls per window; the excess gets 429 with retry_after.
func (f *Fake) Limit(prefix string, n int, window time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = append(f.limits, &limit{
		match: func(m, p string) bool { return strings.HasPrefix(m+" "+p, prefix) },
		n:     n, window: window, retryAfter: window,
	})
}

func (f *Fake) newID() string {
	f.next++
	return fmt.Sprint(f.next)
}

// limitedFor returns the retry_after for a call over its limit, or 0; f.mu held.
func (f *Fake) limitedFor(method, path string) time.Duration {
	now := f.clock.Now()
	for _, l := range f.limits {
		if !l.match(method, path) {
			continue
		}
		kept := l.times[:0]
		for _, t := range l.times {
			if now.Sub(t) < l.window {
				kept = append(kept, t)
			}
		}
		l.times = kept
		if l.n <= 0 {
			return l.window
		}
		if len(l.times) >= l.n {
			return l.times[0].Add(l.window).Sub(now)
		}
		l.times = append(l.times, now)
	}
	return 0
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" || r.URL.Path == "/ws/" {
		f.serveGateway(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	path := strings.TrimPrefix(r.URL.Path, "/api/v9")
	var after []func()
	defer func() { // gateway events the call causes, sent once the lock is released
		for _, fn := range after {
			fn()
		}
	}()
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.touch()
	f.after = &after
	call := Call{Method: r.Method, Path: path, Body: json.RawMessage(body)}
	if ra := f.limitedFor(r.Method, path); ra > 0 {
		f.limited++
		call.Status = http.StatusTooManyRequests
		f.calls = append(f.calls, call)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", fmt.Sprint(int(ra.Seconds()+0.999)))
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, `{"message":"You are being rate limited.","retry_after":%.3f,"global":false}`, ra.Seconds())
		return
	}
	auth := r.Header.Get("Authorization")
	badToken := auth == "" || (f.Token != "" && auth != "Bot "+f.Token)
	if badToken && path != "/gateway" && !strings.HasPrefix(path, "/interactions/") && !strings.HasPrefix(path, "/webhooks/") {
		call.Status = http.StatusUnauthorized
		f.calls = append(f.calls, call)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401: Unauthorized", "code": 0})
		return
	}
	status, out := f.route(r.Method, path, r.URL.Query(), body)
	call.Status = status
	f.calls = append(f.calls, call)
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(what string) (int, any) {
	return http.StatusNotFound, map[string]any{"message": "Unknown " + what, "code": 10008}
}

// route answers one REST call; f.mu is held.
func (f *Fake) route(method, path string, q url.Values, body []byte) (int, any) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case method == "GET" && path == "/gateway":
		return 200, map[string]string{"url": "ws" + strings.TrimPrefix(f.URL, "http") + "/ws"}
	case method == "GET" && path == "/oauth2/applications/@me":
		return 200, map[string]any{"id": f.AppID, "name": "sepmbot", "bot_public": false}
	case seg[0] == "channels" && len(seg) == 2 && method == "GET":
		return 200, map[string]any{"id": seg[1], "type": 0, "guild_id": f.Guild}
	case seg[0] == "channels" && len(seg) == 3 && seg[2] == "messages" && method == "POST":
		return f.createMessage(seg[1], body)
	case seg[0] == "channels" && len(seg) == 4 && seg[2] == "messages" && method == "PATCH":
		m := f.messages[seg[3]]
		if m == nil || m.ChannelID != seg[1] {
			return notFound("Message")
		}
		f.apply(m, body)
		m.Edits++
		return 200, f.messageJSON(m)
	case seg[0] == "channels" && len(seg) == 5 && seg[2] == "messages" && seg[4] == "threads" && method == "POST":
		m := f.messages[seg[3]]
		if m == nil || m.ChannelID != seg[1] {
			return notFound("Message")
		}
		if m.Thread {
			return http.StatusBadRequest, map[string]any{"message": "A thread has already been created for this message", "code": 160004}
		}
		m.Thread = true
		return 201, map[string]any{"id": m.ID, "type": 11, "guild_id": f.Guild, "parent_id": seg[1]}
	case seg[0] == "channels" && len(seg) >= 6 && seg[2] == "messages" && seg[4] == "reactions":
		emoji, _ := url.PathUnescape(seg[5])
		if f.messages[seg[3]] == nil {
			return notFound("Message")
		}
		key := seg[1] + "/" + seg[3] + "/" + emoji
		switch {
		case method == "PUT" && len(seg) == 7 && seg[6] == "@me":
			if f.addReaction(key, f.BotID) {
				// Discord tells the bot about its own reaction too.
				ch, msg, bot := seg[1], seg[3], f.BotID
				*f.after = append(*f.after, func() {
					f.Dispatch("MESSAGE_REACTION_ADD", map[string]any{"user_id": bot, "channel_id": ch, "message_id": msg, "guild_id": f.Guild,
						"emoji": map[string]any{"id": nil, "name": emoji}, "member": map[string]any{"user": map[string]any{"id": bot, "bot": true}, "roles": []string{}}})
				})
			}
			return http.StatusNoContent, nil
		case method == "GET" && len(seg) == 6:
			var users []map[string]any
			after := q.Get("after")
			for _, u := range f.reactions[key] {
				if after != "" && u <= after {
					continue
				}
				users = append(users, map[string]any{"id": u, "username": "u" + u, "bot": u == f.BotID})
			}
			if users == nil {
				users = []map[string]any{}
			}
			return 200, users
		}
	case seg[0] == "guilds" && len(seg) == 4 && seg[2] == "members" && method == "GET":
		roles, ok := f.members[seg[3]]
		if !ok {
			return http.StatusNotFound, map[string]any{"message": "Unknown Member", "code": 10007}
		}
		return 200, map[string]any{"user": map[string]any{"id": seg[3]}, "roles": roles}
	case seg[0] == "applications" && method == "PUT" && seg[len(seg)-1] == "commands":
		scope := "global"
		if len(seg) == 5 && seg[2] == "guilds" {
			scope = seg[3]
		}
		f.commands[scope] = append(json.RawMessage(nil), body...)
		var cmds []map[string]any
		if err := json.Unmarshal(body, &cmds); err != nil {
			return http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035}
		}
		for _, c := range cmds {
			c["id"], c["application_id"] = f.newID(), f.AppID
		}
		return 200, cmds
	case seg[0] == "interactions" && len(seg) == 4 && seg[3] == "callback" && method == "POST":
		var cb struct {
			Type int             `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &cb); err != nil {
			return http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035}
		}
		for _, c := range f.callbacks {
			if c.InteractionID == seg[1] {
				return http.StatusBadRequest, map[string]any{"message": "Interaction has already been acknowledged.", "code": 40060}
			}
		}
		c := Callback{InteractionID: seg[1], Type: cb.Type, Data: cb.Data}
		if at, ok := f.dispatched[seg[1]]; ok {
			c.Latency = f.clock.Now().Sub(at)
		}
		f.callbacks = append(f.callbacks, c)
		return http.StatusNoContent, nil
	case seg[0] == "webhooks" && len(seg) >= 3:
		wh := Webhook{Method: method, Token: seg[2], Body: append(json.RawMessage(nil), body...)}
		if len(seg) == 5 {
			wh.Target = seg[4]
		}
		f.webhooks = append(f.webhooks, wh)
		if method == "DELETE" {
			return http.StatusNoContent, nil
		}
		return 200, map[string]any{"id": f.newID(), "channel_id": "0", "content": ""}
	}
	return http.StatusNotFound, map[string]any{"message": "404: Not Found", "code": 0}
}

func (f *Fake) addReaction(key, user string) bool {
	for _, u := range f.reactions[key] {
		if u == user {
			return false
		}
	}
	f.reactions[key] = append(f.reactions[key], user)
	return true
}

func (f *Fake) createMessage(channel string, body []byte) (int, any) {
	m := &Message{ID: f.newID(), ChannelID: channel}
	if !f.apply(m, body) {
		return http.StatusBadRequest, map[string]any{"message": "Cannot send an empty message", "code": 50006}
	}
	f.messages[m.ID] = m
	f.order = append(f.order, m.ID)
	return 200, f.messageJSON(m)
}

// apply copies the fields a send or edit carries; false for an empty message.
func (f *Fake) apply(m *Message, body []byte) bool {
	var in struct {
		Content         *string         `json:"content"`
		Embeds          json.RawMessage `json:"embeds"`
		Components      json.RawMessage `json:"components"`
		Flags           int             `json:"flags"`
		AllowedMentions json.RawMessage `json:"allowed_mentions"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return false
	}
	if in.Content != nil {
		m.Content = *in.Content
	}
	if in.Embeds != nil {
		m.Embeds = in.Embeds
	}
	if in.Components != nil {
		m.Components = in.Components
	}
	m.Flags, m.AllowedMentions = in.Flags, in.AllowedMentions
	return m.Content != "" || (len(m.Embeds) > 2)
}

func (f *Fake) messageJSON(m *Message) map[string]any {
	return map[string]any{"id": m.ID, "channel_id": m.ChannelID, "content": m.Content, "author": map[string]any{"id": f.BotID, "bot": true}}
}
