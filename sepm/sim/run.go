package sim

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Run starts a site, prints how to point sepmbot at it (API URL, user, the
// fingerprint to trust, every server's client port), and blocks until ctx is done.
// The password is never printed.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	site, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	defer site.Close()
	if err := writeBanner(out, site); err != nil {
		return fmt.Errorf("sim: write banner: %w", err)
	}
	<-ctx.Done()
	return site.Close()
}

func writeBanner(out io.Writer, site *Site) error {
	o := site.opts
	servers := site.Servers()
	var b strings.Builder
	fmt.Fprintf(&b, "Simulated SEPM %s: %d clients, %d groups, %d server(s) (%s), heartbeat %s\n",
		o.ManagerVersion, o.Clients, o.Groups, o.Servers, o.Failover, o.Heartbeat)
	fmt.Fprintf(&b, "REST API:  %s/sepm/api/v1\n", site.URL())
	fmt.Fprintf(&b, "admin API: %s%s (same credentials)\n", site.URL(), AdminAPI)
	fmt.Fprintf(&b, "user:      %s (password as given)\n", o.User)
	if o.StateFile != "" {
		how := "new site"
		if site.restored {
			how = "continued where it was"
		}
		fmt.Fprintf(&b, "state:     %s (%s)\n", o.StateFile, how)
	}
	b.WriteString("bot flags:\n")
	fmt.Fprintf(&b, "  --sepm-url %s --sepm-fingerprint %s", site.URL(), site.APIFingerprint())
	for _, s := range servers {
		fmt.Fprintf(&b, " \\\n  --sepm-server %s=%s", s.Name, s.ClientAddr)
	}
	b.WriteString("\nservers:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "  %s  id %s  client port %s\n", s.Name, s.ID, s.ClientAddr)
		fmt.Fprintf(&b, "    certificate %s  %s  until %s\n", s.Fingerprint, s.Subject, s.NotAfter.Format("2006-01-02"))
		fmt.Fprintf(&b, "    next        %s  (installed by POST %s/servers/%s/certificate)\n", s.NextFingerprint, AdminAPI, s.Name)
	}
	_, err := io.WriteString(out, b.String())
	return err
}
