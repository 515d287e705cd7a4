// Package slackfake is an httptest fake of Slack for sepmbot's tests: the Web API
// methods the adapter calls (auth.test, chat.postMessage, chat.update,
// chat.postEphemeral, reactions.add, reactions.get, users.info,
// usergroups.users.list, apps.connections.open), the Socket Mode websocket, and the
// other side of HTTP mode (signed slash commands, clicks and events sent to the
// bot's endpoints). It speaks Slack's wire format and enforces Slack's documented
// limits, so the real slack-go client code runs against it:
//
//   - ts unique per channel (microsecond sequence, never two equal);
//   - Block Kit limits: 50 blocks, section text 3,000, header 150, 10 fields of
//     2,000, button text 75, confirmation dialog texts, answered with invalid_blocks;
//   - chat.postMessage at most 1 per second per channel and chat.update at most
//     UpdateBudget per UpdateWindow for the whole workspace (default 50 a minute),
//     answered with HTTP 429 and Retry-After.
//
// It listens on 127.0.0.1 only.
package slackfake

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a fake.
type Options struct {
	TeamID    string // default "T0SEPM"
	BotUserID string // default "UBOT"
	BotToken  string // default "xoxb-test"
	AppToken  string // default "xapp-test"
	// UpdateBudget chat.update calls per UpdateWindow for the workspace (default 50
	// per minute).
	UpdateBudget int
	UpdateWindow time.Duration
	// PostInterval is the least time between two chat.postMessage in one channel
	// (default 1s).
	PostInterval time.Duration
	// PingInterval is how often the websocket pings the client (default 5s).
	PingInterval time.Duration
	// Now is the fake's clock (default time.Now).
	Now func() time.Time
}

// Message is one message the bot posted, as the fake stores it.
type Message struct {
	Channel, TS, ThreadTS string
	Text                  string
	Blocks                json.RawMessage
	Edits                 int
	// Reactions: name (without colons) -> user ids, in order.
	Reactions map[string][]string
}

// Ephemeral is one chat.postEphemeral (or ephemeral ack) shown to one user.
type Ephemeral struct {
	Channel, User, Text string
	Blocks              json.RawMessage
}

// User is a workspace member as users.info reports it.
type User struct {
	ID, TeamID, Name string
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	opts Options

	mu         sync.Mutex
	seq        map[string]int64 // channel -> last ts (microseconds)
	msgs       map[string]*Message
	order      []string // channel/ts in posting order
	lastPost   map[string]time.Time
	updates    []time.Time // chat.update times inside the window
	ephemerals []Ephemeral
	users      map[string]User
	groups     map[string][]string
	groupsFail bool
	calls      map[string]int
	limited    map[string]int
	errs       []string // invalid_blocks and other refusals, for test failure messages
	revoked    bool
	httpBase   string
	httpSecret string

	sock socketState
}

// New starts a fake on a loopback port; close it with Close.
func New(opts Options) *Server {
	if opts.TeamID == "" {
		opts.TeamID = "T0SEPM"
	}
	if opts.BotUserID == "" {
		opts.BotUserID = "UBOT"
	}
	if opts.BotToken == "" {
		opts.BotToken = "xoxb-test"
	}
	if opts.AppToken == "" {
		opts.AppToken = "xapp-test"
	}
	if opts.UpdateBudget <= 0 {
		opts.UpdateBudget = 50
	}
	if opts.UpdateWindow <= 0 {
		opts.UpdateWindow = time.Minute
	}
	if opts.PostInterval <= 0 {
		opts.PostInterval = time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts: opts, seq: map[string]int64{}, msgs: map[string]*Message{}, lastPost: map[string]time.Time{},
		users: map[string]User{}, groups: map[string][]string{}, calls: map[string]int{}, limited: map[string]int{},
	}
	s.sock.init()
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.api)
	mux.HandleFunc("/ws", s.websocket)
	s.Server = httptest.NewServer(mux) // httptest listens on 127.0.0.1
	return s
}

// APIURL is the Web API base for slack.OptionAPIURL (it ends with "/").
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Options returns the fake's settings (tokens, team, budget).
func (s *Server) Options() Options { return s.opts }

// AddUser registers a workspace member (team "" means the fake's own team).
func (s *Server) AddUser(id, team, name string) {
	if team == "" {
		team = s.opts.TeamID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = User{ID: id, TeamID: team, Name: name}
}

// SetGroup sets a user group's members.
func (s *Server) SetGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
}

// FailGroups makes usergroups.users.list fail (true) or work again (false).
func (s *Server) FailGroups(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupsFail = fail
}

// RevokeTokens makes every later call and connection fail with token_revoked.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	s.revoked = true
	s.mu.Unlock()
	s.Disconnect()
}

// Calls returns how many times a Web API method was called.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// RateLimited returns how many 429s the fake answered, all methods together.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.limited {
		n += v
	}
	return n
}

// Refusals lists the error codes the fake answered other than rate limits.
func (s *Server) Refusals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

// Messages returns copies of the channel's messages (top level and replies), in
// posting order; channel "" means every channel.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, k := range s.order {
		m := s.msgs[k]
		if channel != "" && m.Channel != channel {
			continue
		}
		c := *m
		c.Reactions = map[string][]string{}
		for n, u := range m.Reactions {
			c.Reactions[n] = slices.Clone(u)
		}
		out = append(out, c)
	}
	return out
}

// Message returns one message.
func (s *Server) Message(channel, ts string) (Message, bool) {
	for _, m := range s.Messages(channel) {
		if m.TS == ts {
			return m, true
		}
	}
	return Message{}, false
}

// Ephemerals returns what was shown to one user only ("" user: to anyone).
func (s *Server) Ephemerals(user string) []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ephemeral
	for _, e := range s.ephemerals {
		if user == "" || e.User == user {
			out = append(out, e)
		}
	}
	return out
}

func (s *Server) addEphemeral(e Ephemeral) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ephemerals = append(s.ephemerals, e)
}

// reply writes a Web API answer.
func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	if _, ok := v["ok"]; !ok {
		v["ok"] = true
	}
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers ok=false with a Slack error code (HTTP 200, as Slack does).
func (s *Server) fail(w http.ResponseWriter, code string) {
	s.mu.Lock()
	s.errs = append(s.errs, code)
	s.mu.Unlock()
	reply(w, map[string]any{"ok": false, "error": code})
}

// tooMany answers 429 with Retry-After in whole seconds (rounded up, at least 1).
func (s *Server) tooMany(w http.ResponseWriter, method string, wait time.Duration) {
	s.mu.Lock()
	s.limited[method]++
	s.mu.Unlock()
	w.Header().Set("Retry-After", fmt.Sprint(max(1, int(math.Ceil(wait.Seconds())))))
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
}

func (s *Server) token(r *http.Request) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t
	}
	return r.PostForm.Get("token")
}

// api serves /api/{method}.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.calls[method]++
	revoked := s.revoked
	s.mu.Unlock()
	want := s.opts.BotToken
	if method == "apps.connections.open" {
		want = s.opts.AppToken
	}
	switch tok := s.token(r); {
	case revoked:
		s.fail(w, "token_revoked")
		return
	case tok == "":
		s.fail(w, "not_authed")
		return
	case tok != want:
		s.fail(w, "invalid_auth")
		return
	}
	f := r.PostForm
	switch method {
	case "auth.test":
		reply(w, map[string]any{"url": "https://sepm-fake.slack.com/", "team": "SEPM fake", "user": "sepmbot",
			"team_id": s.opts.TeamID, "user_id": s.opts.BotUserID, "bot_id": "B" + s.opts.BotUserID})
	case "apps.connections.open":
		reply(w, map[string]any{"url": "ws" + strings.TrimPrefix(s.URL, "http") + "/ws?ticket=" + url.QueryEscape(fmt.Sprint(s.opts.Now().UnixNano()))})
	case "chat.postMessage":
		s.postMessage(w, f)
	case "chat.update":
		s.update(w, f)
	case "chat.postEphemeral":
		if f.Get("channel") == "" || f.Get("user") == "" {
			s.fail(w, "channel_not_found")
			return
		}
		blocks, code := validateBlocks(f.Get("blocks"))
		if code != "" {
			s.fail(w, code)
			return
		}
		s.addEphemeral(Ephemeral{Channel: f.Get("channel"), User: f.Get("user"), Text: f.Get("text"), Blocks: blocks})
		reply(w, map[string]any{"message_ts": s.nextTS(f.Get("channel"))})
	case "reactions.add":
		s.reactionsAdd(w, f)
	case "reactions.get":
		s.reactionsGet(w, f)
	case "users.info":
		s.mu.Lock()
		u, ok := s.users[f.Get("user")]
		s.mu.Unlock()
		if !ok {
			s.fail(w, "user_not_found")
			return
		}
		reply(w, map[string]any{"user": map[string]any{"id": u.ID, "team_id": u.TeamID, "name": u.Name}})
	case "usergroups.users.list":
		s.mu.Lock()
		members, ok := s.groups[f.Get("usergroup")]
		failing := s.groupsFail
		s.mu.Unlock()
		switch {
		case failing:
			w.WriteHeader(http.StatusInternalServerError)
		case !ok:
			s.fail(w, "no_such_subteam")
		default:
			reply(w, map[string]any{"users": members})
		}
	default:
		s.fail(w, "unknown_method")
	}
}

// nextTS returns a ts unique in the channel: seconds.microseconds from the clock,
// bumped past the channel's last one.
func (s *Server) nextTS(channel string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextTSLocked(channel)
}

func (s *Server) nextTSLocked(channel string) string {
	us := s.opts.Now().UnixMicro()
	if last := s.seq[channel]; us <= last {
		us = last + 1
	}
	s.seq[channel] = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

func (s *Server) postMessage(w http.ResponseWriter, f url.Values) {
	ch := f.Get("channel")
	if ch == "" {
		s.fail(w, "channel_not_found")
		return
	}
	blocks, code := validateBlocks(f.Get("blocks"))
	if code == "" && f.Get("text") == "" && blocks == nil {
		code = "no_text"
	}
	if code != "" {
		s.fail(w, code)
		return
	}
	s.mu.Lock()
	now := s.opts.Now()
	if last, ok := s.lastPost[ch]; ok && now.Sub(last) < s.opts.PostInterval {
		s.mu.Unlock()
		s.tooMany(w, "chat.postMessage", s.opts.PostInterval-now.Sub(last))
		return
	}
	thread := f.Get("thread_ts")
	if thread != "" && s.msgs[ch+"/"+thread] == nil {
		s.mu.Unlock()
		s.fail(w, "thread_not_found")
		return
	}
	s.lastPost[ch] = now
	ts := s.nextTSLocked(ch)
	m := &Message{Channel: ch, TS: ts, ThreadTS: thread, Text: f.Get("text"), Blocks: blocks, Reactions: map[string][]string{}}
	s.msgs[ch+"/"+ts] = m
	s.order = append(s.order, ch+"/"+ts)
	s.mu.Unlock()
	reply(w, map[string]any{"channel": ch, "ts": ts, "message": map[string]any{"text": m.Text, "ts": ts}})
}

func (s *Server) update(w http.ResponseWriter, f url.Values) {
	ch, ts := f.Get("channel"), f.Get("ts")
	blocks, code := validateBlocks(f.Get("blocks"))
	if code != "" {
		s.fail(w, code)
		return
	}
	s.mu.Lock()
	now := s.opts.Now()
	cut := now.Add(-s.opts.UpdateWindow)
	s.updates = slices.DeleteFunc(s.updates, func(t time.Time) bool { return !t.After(cut) })
	if len(s.updates) >= s.opts.UpdateBudget {
		wait := s.updates[0].Add(s.opts.UpdateWindow).Sub(now)
		s.mu.Unlock()
		s.tooMany(w, "chat.update", wait)
		return
	}
	m := s.msgs[ch+"/"+ts]
	if m == nil {
		s.mu.Unlock()
		s.fail(w, "message_not_found")
		return
	}
	s.updates = append(s.updates, now)
	m.Text, m.Blocks = f.Get("text"), blocks
	m.Edits++
	s.mu.Unlock()
	reply(w, map[string]any{"channel": ch, "ts": ts, "text": m.Text})
}

func (s *Server) reactionsAdd(w http.ResponseWriter, f url.Values) {
	ch, ts, name := f.Get("channel"), f.Get("timestamp"), f.Get("name")
	if code := s.addReaction(s.opts.BotUserID, ch, ts, name); code != "" {
		s.fail(w, code)
		return
	}
	reply(w, map[string]any{})
	// Slack tells the app about its own reactions too; the bot must ignore them.
	go func() { _, _ = s.SendEvent(s.ReactionEvent(s.opts.BotUserID, ch, ts, name, true), 0) }()
}

// addReaction records a reaction; it returns a Slack error code or "".
func (s *Server) addReaction(user, ch, ts, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[ch+"/"+ts]
	switch {
	case m == nil:
		return "message_not_found"
	case name == "" || strings.Contains(name, ":"):
		return "invalid_name"
	case slices.Contains(m.Reactions[name], user):
		return "already_reacted"
	}
	m.Reactions[name] = append(m.Reactions[name], user)
	return ""
}

// removeReaction drops a reaction; false if there was none.
func (s *Server) removeReaction(user, ch, ts, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[ch+"/"+ts]
	if m == nil || !slices.Contains(m.Reactions[name], user) {
		return false
	}
	m.Reactions[name] = slices.DeleteFunc(m.Reactions[name], func(u string) bool { return u == user })
	if len(m.Reactions[name]) == 0 {
		delete(m.Reactions, name)
	}
	return true
}

func (s *Server) reactionsGet(w http.ResponseWriter, f url.Values) {
	ch, ts := f.Get("channel"), f.Get("timestamp")
	s.mu.Lock()
	m := s.msgs[ch+"/"+ts]
	if m == nil {
		s.mu.Unlock()
		s.fail(w, "message_not_found")
		return
	}
	names := make([]string, 0, len(m.Reactions))
	for n := range m.Reactions {
		names = append(names, n)
	}
	slices.Sort(names)
	var rs []map[string]any
	for _, n := range names {
		rs = append(rs, map[string]any{"name": n, "count": len(m.Reactions[n]), "users": slices.Clone(m.Reactions[n])})
	}
	msg := map[string]any{"type": "message", "ts": ts, "text": m.Text, "reactions": rs}
	s.mu.Unlock()
	reply(w, map[string]any{"type": "message", "channel": ch, "message": msg})
}
