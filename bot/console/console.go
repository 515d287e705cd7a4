// Package console is a terminal "channel" for sepmbot: it reads lines from stdin as
// chat events and prints the bot's messages to stdout, so the whole product can be
// tried without Slack or Discord (like Hubot's shell adapter).
//
// Input lines:
//
//	@alice /sepm rotate site-a   a command as console user alice
//	/sepm status                 a command as the default user (--as)
//	@bob react ✅ 7              react to message 7 (unreact removes the reaction);
//	                             ✅ ✔️ :white_check_mark: approve, ❌ ✖️ :x: deny
//	@bob click approve 7         click the Approve button of message 7 (any case)
//	!sim fleet                   a line for the hook (the demo's simulated SEPM
//	@alice !sim fleet            console), as the default user or a named one
//
// Output: messages as "[#7] text", edits as "[#7 edited] text", thread replies as
// "[#9 ↳7] text", answers to one user as "[→alice] text". During a wait the card is
// reprinted at most once per CardEvery; in between a changed progress prints as one
// line "[#7 ⏳] wait 1 of 4 · …".
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
	"time"

	"sepmbot/bot"
)

// Hook handles "!" lines (the demo's simulated console); it returns the text to print.
type Hook func(ctx context.Context, line string) (string, error)

// Options configure a console channel.
type Options struct {
	// As is the user of lines that do not start with @user (default "operator").
	As string
	// Hook handles lines starting with "!"; nil answers that none is configured.
	Hook Hook
	// SeqFile keeps the message counter across restarts, so message numbers stay
	// unique for a data folder (optional).
	SeqFile string
	// Channel is the channel name events carry (default "sepm").
	Channel string
	// CardEvery is the least time between two full prints of a card whose only
	// change is its wait's progress (default 30s).
	CardEvery time.Duration
}

// DefaultCardEvery is how often a waiting card is printed in full at most.
const DefaultCardEvery = 30 * time.Second

// printed is what the console last printed of a message that has a progress.
type printed struct {
	rest string    // the text without the progress
	at   time.Time // when it was printed in full
	line string    // the progress line last printed
}

// Console is a bot.Platform on a terminal.
type Console struct {
	in   io.Reader
	out  io.Writer
	opts Options
	run  string // per-process prefix of delivery ids

	mu      sync.Mutex
	next    int
	msgs    map[string]bot.Message
	printed map[string]printed
}

// New returns a console channel reading in and writing out.
func New(in io.Reader, out io.Writer, opts Options) *Console {
	if opts.As == "" {
		opts.As = "operator"
	}
	if opts.Channel == "" {
		opts.Channel = "sepm"
	}
	if opts.CardEvery <= 0 {
		opts.CardEvery = DefaultCardEvery
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	c := &Console{in: in, out: out, opts: opts, run: hex.EncodeToString(b[:]), next: 1, msgs: map[string]bot.Message{}, printed: map[string]printed{}}
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
	fmt.Fprintf(c.out, "%s %s\n", prefix, lines[0])
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

// Edit prints the new content of message ref: in full when anything but its wait's
// progress changed, or when the last full print is CardEvery old; otherwise the
// progress alone, on one line, when it changed.
func (c *Console) Edit(_ context.Context, _ string, ref string, m bot.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs[ref] = m
	if m.Progress == nil {
		delete(c.printed, ref)
		c.print("[#"+ref+" edited]", m)
		return nil
	}
	rest := m
	rest.Progress = nil
	restText := bot.RenderText(rest)
	line := m.Progress.Line()
	now := time.Now()
	if p, ok := c.printed[ref]; ok && p.rest == restText && now.Sub(p.at) < c.opts.CardEvery {
		if line != p.line {
			fmt.Fprintf(c.out, "[#%s ⏳] %s\n", ref, line)
			p.line = line
			c.printed[ref] = p
		}
		return nil
	}
	c.printed[ref] = printed{rest: restText, at: now, line: line}
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

// Respond prints an answer: "[→alice] …" for the user's eyes only, or as a new
// channel message "[#12] …" when it is for everyone.
func (c *Console) Respond(_ context.Context, ev bot.Event, m bot.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Visibility == bot.VisibleChannel {
		ref := c.newRef()
		c.msgs[ref] = m
		c.print("[#"+ref+"]", m)
		return nil
	}
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
	user := c.opts.As
	if strings.HasPrefix(line, "@") {
		u, rest, _ := strings.Cut(line[1:], " ")
		user, line = u, strings.TrimSpace(rest)
	}
	if strings.HasPrefix(line, "!") {
		c.hook(ctx, line)
		return bot.Event{}, false
	}
	if user == "" || line == "" {
		c.mu.Lock()
		fmt.Fprintln(c.out, "[console] a line is `@user TEXT`, `TEXT` (as "+c.opts.As+"), or `!sim ...`")
		c.mu.Unlock()
		return bot.Event{}, false
	}
	ev := bot.Event{Platform: "console", User: user, Channel: c.opts.Channel, DeliveryID: fmt.Sprintf("%s-%d", c.run, n)}
	f := strings.Fields(line)
	switch {
	case len(f) >= 1 && (strings.EqualFold(f[0], "react") || strings.EqualFold(f[0], "unreact")) && len(f) != 3:
		c.mu.Lock()
		fmt.Fprintf(c.out, "[→%s] usage: react EMOJI MESSAGE#, e.g. `react ✅ 8` (✅ approves, ❌ denies)\n", user)
		c.mu.Unlock()
		return bot.Event{}, false
	case len(f) >= 1 && strings.EqualFold(f[0], "click") && len(f) != 3:
		c.mu.Lock()
		fmt.Fprintf(c.out, "[→%s] usage: click BUTTON MESSAGE#, e.g. `click approve 8`\n", user)
		c.mu.Unlock()
		return bot.Event{}, false
	case len(f) == 3 && (strings.EqualFold(f[0], "react") || strings.EqualFold(f[0], "unreact")):
		ev.Kind = bot.EventReactionAdded
		if strings.EqualFold(f[0], "unreact") {
			ev.Kind = bot.EventReactionRemoved
		}
		ev.Reaction, ev.MessageRef = f[1], strings.TrimPrefix(f[2], "#")
	case len(f) == 3 && strings.EqualFold(f[0], "click"):
		ev.Kind, ev.ActionID, ev.MessageRef = bot.EventButton, f[1], strings.TrimPrefix(f[2], "#")
		c.mu.Lock()
		m, ok := c.msgs[ev.MessageRef]
		c.mu.Unlock()
		found := false
		for _, b := range m.Buttons {
			if ok && !b.Disabled && (strings.EqualFold(b.ActionID, ev.ActionID) || strings.EqualFold(b.Label, ev.ActionID)) {
				ev.ActionID, ev.Value, found = b.ActionID, b.Value, true
			}
		}
		if !found {
			c.mu.Lock()
			fmt.Fprintf(c.out, "[→%s] message #%s has no %q button\n", user, ev.MessageRef, ev.ActionID)
			c.mu.Unlock()
			return bot.Event{}, false
		}
	default:
		ev.Kind, ev.Text = bot.EventCommand, line
	}
	return ev, true
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

// Help is what /sepm help adds on the console: how to react and click here.
const Help = `On this console:
  @bob react ✅ 8             react to message #8 (unreact ✅ 8 takes it back); ❌ denies
  @carol click approve 8      click the Approve button of message #8 (click deny 8: Deny)
  @alice /sepm status R1      any line may start with @user: who says it`
