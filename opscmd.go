package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sepmbot/admin"
	"sepmbot/ops"
	"sepmbot/rotation"
	"sepmbot/store"
)

// AdminURLFlag is where a running bot's admin listener answers.
type AdminURLFlag struct {
	AdminURL string `name:"admin-url" default:"http://127.0.0.1:9090" help:"The running bot's admin listener, asked when the bot holds the data file." env:"SEPMBOT_ADMIN_URL"`
}

// get fetches path from the admin listener; it fails unless the answer is 200.
func (f AdminURLFlag) get(ctx context.Context, path string, timeout time.Duration) (*http.Response, error) {
	u, err := url.Parse(f.AdminURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin-url %q: want http://HOST:PORT", f.AdminURL)
	}
	token, err := secretEnv(admin.TokenEnv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(f.AdminURL, "/")+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("asking the running bot at %s: %w", f.AdminURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%s%s: %s: %s", f.AdminURL, path, resp.Status, strings.TrimSpace(string(body)))
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error { err := b.ReadCloser.Close(); b.cancel(); return err }

// dataFile is the bbolt file in a data folder.
func dataFile(dir string) string { return filepath.Join(dir, "sepmbot.db") }

// openOffline opens the data file read-only; locked is true when a running bot
// holds it (then ask its admin listener).
func openOffline(dir string) (db *store.DB, locked bool, err error) {
	path := dataFile(dir)
	if _, err := os.Stat(path); err != nil {
		return nil, false, fmt.Errorf("data folder %s: %w", dir, err)
	}
	db, err = store.OpenReadOnly(path)
	if errors.Is(err, store.ErrLocked) {
		return nil, true, nil
	}
	return db, false, err
}

// refuseDataFile refuses an output path that is the data file itself (or a link to
// it): replacing it would cut a running bot off its own file.
func refuseDataFile(dir, out string) error {
	if out == "" {
		return nil
	}
	a, err := os.Stat(dataFile(dir))
	if err != nil {
		return nil // openOffline reports it
	}
	if b, err := os.Stat(out); err == nil && os.SameFile(a, b) {
		return fmt.Errorf("--out %s is the data file itself: choose another file", out)
	}
	if filepath.Clean(out) == filepath.Clean(dataFile(dir)) {
		return fmt.Errorf("--out %s is the data file itself: choose another file", out)
	}
	return nil
}

// BackupCmd copies the data file and verifies the copy.
type BackupCmd struct {
	Data         string `required:"" type:"path" help:"Folder of the bbolt file." env:"SEPMBOT_DATA"`
	Out          string `required:"" type:"path" help:"File to write the copy to (replaced atomically)."`
	AdminURLFlag `embed:""`
}

// Run copies (through the running bot when it holds the file), then opens the copy
// with bbolt, checks it and says what it holds.
func (c *BackupCmd) Run(g *Globals) error {
	if err := refuseDataFile(c.Data, c.Out); err != nil {
		return err
	}
	db, locked, err := openOffline(c.Data)
	if err != nil {
		return err
	}
	via := "from " + dataFile(c.Data)
	if locked {
		via = "from the running bot at " + c.AdminURL
		resp, err := c.get(g.Ctx, "/backup", 10*time.Minute)
		if err != nil {
			return fmt.Errorf("the bot holds %s, and: %w", dataFile(c.Data), err)
		}
		defer resp.Body.Close()
		if _, err := ops.WriteFile(c.Out, func(w io.Writer) (int64, error) { return io.Copy(w, resp.Body) }); err != nil {
			return err
		}
	} else {
		_, err := ops.Backup(g.Ctx, db, c.Out)
		db.Close()
		if err != nil {
			return err
		}
	}
	sum, err := ops.Verify(g.Ctx, c.Out)
	if err != nil {
		return fmt.Errorf("the copy %s does not verify: %w", c.Out, err)
	}
	fmt.Fprintf(g.Out, "backup %s (%s): %d bytes, %d rotations (%d active), %d audit records; bbolt check ok\n",
		c.Out, via, sum.Bytes, sum.Rotations, sum.Active, sum.Audit)
	return nil
}

// AuditCmd groups the audit subcommands.
type AuditCmd struct {
	Export AuditExportCmd `cmd:"" help:"Export one rotation's steps, votes and audit trail (every SEPM change with its values) as JSON or CSV."`
}

// AuditExportCmd exports one rotation's record.
type AuditExportCmd struct {
	ID           string `arg:"" help:"Rotation id, e.g. R1."`
	Data         string `required:"" type:"path" help:"Folder of the bbolt file." env:"SEPMBOT_DATA"`
	Format       string `enum:"json,csv" default:"json" help:"json or csv."`
	Out          string `type:"path" help:"Write to this file instead of standard output."`
	AdminURLFlag `embed:""`
}

// offlineSEPM and offlineNotifier let a read-only engine be built for reading: the
// export never calls them.
type offlineSEPM struct{ rotation.SEPM }
type offlineNotifier struct{ rotation.Notifier }

// Run writes the export.
func (c *AuditExportCmd) Run(g *Globals) error {
	out := g.Out
	if err := refuseDataFile(c.Data, c.Out); err != nil {
		return err
	}
	var write func(w io.Writer) (int64, error)
	db, locked, err := openOffline(c.Data)
	if err != nil {
		return err
	}
	if locked {
		resp, err := c.get(g.Ctx, "/audit/"+url.PathEscape(strings.ToUpper(c.ID))+"?format="+c.Format, time.Minute)
		if err != nil {
			return fmt.Errorf("the bot holds %s, and: %w", dataFile(c.Data), err)
		}
		defer resp.Body.Close()
		write = func(w io.Writer) (int64, error) { return io.Copy(w, resp.Body) }
	} else {
		defer db.Close()
		eng, err := rotation.NewEngine(rotation.Config{Store: db, SEPM: offlineSEPM{}, Notifier: offlineNotifier{}})
		if err != nil {
			return err
		}
		ex, err := ops.Collect(g.Ctx, eng, c.ID, time.Now())
		if err != nil {
			return err
		}
		write = func(w io.Writer) (int64, error) { return 0, ops.Write(w, ex, c.Format) }
	}
	if c.Out != "" {
		_, err := ops.WriteFile(c.Out, write)
		return err
	}
	_, err = write(out)
	return err
}

// HealthcheckCmd asks the admin listener.
type HealthcheckCmd struct {
	AdminURLFlag `embed:""`
	Ready        bool `help:"Ask /readyz (store, chat, SEPM) instead of /healthz (process up)."`
}

// Run exits 0 when the listener answers 200.
func (c *HealthcheckCmd) Run(g *Globals) error {
	path := "/healthz"
	if c.Ready {
		path = "/readyz"
	}
	resp, err := c.get(g.Ctx, path, 5*time.Second)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprint(g.Out, string(body))
	return nil
}
