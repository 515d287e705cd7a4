// Package console is a terminal "channel" for sepmbot: it reads lines from stdin as
// chat events and prints the bot's messages to stdout, so the whole product can be
// tried without Slack or Discord (like Hubot's shell adapter).
//
// The person at the terminal is one identity, "console:" + Options.As (`sepmbot run
// --chat console --console-user NAME`, default the OS user): no text typed there can
// choose another. Only with Options.MultiUser (`sepmbot demo`, which says so at start)
// may a line speak as someone else with an "@user" prefix; otherwise such a line is
// refused with a message and changes nothing.
//
// Input lines:
//
//	/sepm status                 a command as the console's user
//	react ✅ 7                   react to message 7 (unreact removes the reaction)
//	click approve 7              click the "approve" button of message 7
//	@bob react ✅ 7              demo only: the same as console user bob
//	!sim fleet                   a line for the hook (the demo's simulated SEPM console)
//
// Output: messages as "[#7] text", edits as "[#7 edited] text", thread replies as
// "[#9 ↳7] text", answers to one user as "[→alice] text".
package console

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"sepmbot/bot"
	"sepmbot/textsafe"
)

// Hook handles "!" lines (the demo's simulated console); it returns the text to print.
type Hook func(ctx context.Context, line string) (string, error)

// Options configure a console channel.
type Options struct {
	// As is the console's user: every line is theirs (default "operator"). With
	// MultiUser it is the user of lines that do not start with @user.
	As string
	// MultiUser lets a line speak as another user with an "@user" prefix. Only the
	// demo sets it: one terminal playing requester and approvers is a rehearsal,
	// never a two-person approval.
	MultiUser bool
	// Hook handles lines starting with "!"; nil answers that none is configured.
	Hook Hook
	// SeqFile keeps the message counter across restarts, so message numbers stay
	// unique for a data folder (optional).
	SeqFile string
}

// Console is a bot.Platform on a terminal.
type Console struct {
	in   io.Reader
	out  io.Writer
	opts Options
	run  string // per-process prefix of delivery ids

	mu   sync.Mutex
	next int
	msgs map[string]bot.Message
}

// New returns a console channel reading in and writing out.
func New(in io.Reader, out io.Writer, opts Options) *Console {
	if opts.As == "" {
		opts.As = "operator"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	c := &Console{in: in, out: out, opts: opts, run: hex.EncodeToString(b[:]), next: 1, msgs: map[string]bot.Message{}}
	if opts.SeqFile != "" {
		if raw, err := os.ReadFile(opts.SeqFile); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && n > 0 {
				c.next = n
			}
		}
	}
	return c
}

// Name is "console".
func (c *Console) Name() string { return "console" }

func (c *Console) newRef() string {
	n := c.next
	c.next++
	if c.opts.SeqFile != "" {
		_ = os.WriteFile(c.opts.SeqFile, []byte(strconv.Itoa(c.next)), 0o600)
	}
	return strconv.Itoa(n)
}

func (c *Console) print(prefix string, m bot.Message) {
	text := bot.RenderText(m)
	lines := strings.Split(text, "\n")
	fmt.Fprintf(c.out, "%s %s\n", textsafe.Line(prefix), lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(c.out, "    %s\n", l)
	}
}

// Post prints a new message and returns its number.
func (c *Console) Post(_ context.Context, _ string, m bot.Message) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref := c.newRef()
	c.msgs[ref] = m
	c.print("[#"+ref+"]", m)
	return ref, nil
}

// Edit prints the new content of message ref.
func (c *Console) Edit(_ context.Context, _ string, ref string, m bot.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs[ref] = m
	c.print("[#"+ref+" edited]", m)
	return nil
}

// Reply prints a thread reply to message ref.
func (c *Console) Reply(_ context.Context, _ string, ref string, m bot.Message) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.newRef()
	c.msgs[r] = m
	c.print("[#"+r+" ↳"+ref+"]", m)
	return r, nil
}

// React prints the bot's reaction to message ref.
func (c *Console) React(_ context.Context, _ string, ref, emoji string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, "[#%s +%s]\n", ref, emoji)
	return nil
}

// Respond prints an answer addressed to the event's user.
func (c *Console) Respond(_ context.Context, ev bot.Event, m bot.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.print("[→"+ev.User+"]", m)
	return nil
}

// Events reads input lines until EOF or ctx is done, then closes the channel. The
// channel closes when ctx is done even while the input is silent (a terminal): the
// read itself cannot be interrupted, so its goroutine ends with the next line or EOF.
func (c *Console) Events(ctx context.Context) <-chan bot.Event {
	ch := make(chan bot.Event)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(c.in)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer close(ch)
		n := 0
		for {
			var line string
			var ok bool
			select {
			case line, ok = <-lines:
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
			n++
			ev, ok := c.parse(ctx, line, n)
			if !ok {
				continue
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// parse turns one input line into an event; lines for the hook are handled here.
func (c *Console) parse(ctx context.Context, line string, n int) (bot.Event, bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return bot.Event{}, false
	}
	if strings.HasPrefix(line, "!") {
		c.hook(ctx, line)
		return bot.Event{}, false
	}
	user := c.opts.As
	if strings.HasPrefix(line, "@") {
		u, rest, _ := strings.Cut(line[1:], " ")
		switch {
		case u == "" || strings.TrimSpace(rest) == "":
			c.say(user, "a line starting with @ needs a user name and then the command")
			return bot.Event{}, false
		case u != c.opts.As && !c.opts.MultiUser:
			c.say(user, fmt.Sprintf("refused: this console is one person, %s (--console-user); a line cannot speak as @%s. Type the command without @user. Only `sepmbot demo` lets one terminal speak as several users.", c.opts.As, u))
			return bot.Event{}, false
		}
		user, line = u, strings.TrimSpace(rest)
	}
	ev := bot.Event{Platform: "console", User: user, Channel: "console", DeliveryID: fmt.Sprintf("%s-%d", c.run, n)}
	f := strings.Fields(line)
	switch {
	case len(f) == 3 && (f[0] == "react" || f[0] == "unreact"):
		ev.Kind = bot.EventReactionAdded
		if f[0] == "unreact" {
			ev.Kind = bot.EventReactionRemoved
		}
		ev.Reaction, ev.MessageRef = f[1], strings.TrimPrefix(f[2], "#")
	case len(f) == 3 && f[0] == "click":
		ev.Kind, ev.ActionID, ev.MessageRef = bot.EventButton, f[1], strings.TrimPrefix(f[2], "#")
		c.mu.Lock()
		m, ok := c.msgs[ev.MessageRef]
		c.mu.Unlock()
		found := false
		for _, b := range m.Buttons {
			if ok && b.ActionID == ev.ActionID {
				ev.Value, found = b.Value, true
			}
		}
		if !found {
			c.say(user, fmt.Sprintf("message #%s has no %q button", ev.MessageRef, ev.ActionID))
			return bot.Event{}, false
		}
	default:
		ev.Kind, ev.Text = bot.EventCommand, line
	}
	return ev, true
}

// say answers the console's user at once (a refusal decided before any event).
func (c *Console) say(user, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.print("[→"+user+"]", bot.Message{Text: text})
}

func (c *Console) hook(ctx context.Context, line string) {
	out := "no console hook is configured for ! lines"
	if c.opts.Hook != nil {
		s, err := c.opts.Hook(ctx, strings.TrimPrefix(line, "!"))
		if err != nil {
			out = "error: " + err.Error()
		} else {
			out = s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.print("[sim]", bot.Message{Text: out})
}
