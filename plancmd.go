package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"sepmbot/bot"
	"sepmbot/rotation"
	"sepmbot/sepm"
)

// PlanCmd reads a site and prints the rotation plan.
type PlanCmd struct {
	SEPMFlags       `embed:""`
	SiteName        string        `name:"site-name" default:"site-a" help:"Name of the site." env:"SEPMBOT_SITE_NAME"`
	Mode            string        `enum:"auto,single,multi" default:"auto" help:"auto, single or multi (multi is still refused with 14.2.x clients or one server)."`
	MinWait         time.Duration `name:"min-wait" help:"Floor of every heartbeat wait (the KB recommends 24h in production)."`
	Straggler       time.Duration `help:"How long the last server keeps the old certificate (multi path; default 90 days)."`
	NewCertSHA256   []string      `name:"new-cert-sha256" help:"Expected new certificate fingerprint, FP or NAME=FP; repeatable."`
	DamagedButValid bool          `name:"damaged-but-valid" help:"The current certificate is damaged but still valid (the plan then recommends disaster recovery)."`
	JSON            bool          `name:"json" help:"Print JSON."`
}

// Run reads the inventory and prints the plan.
func (c *PlanCmd) Run(g *Globals) error {
	sf, err := pickSite(g, c.SEPMFlags, c.SiteName)
	if err != nil {
		return err
	}
	client, err := sf.client(g.Log)
	if err != nil {
		return err
	}
	servers, err := sf.servers()
	if err != nil {
		return err
	}
	opts, err := planOptions(c.Mode, c.MinWait, c.Straggler, c.NewCertSHA256, c.DamagedButValid)
	if err != nil {
		return err
	}
	inv, err := rotation.ReadInventory(g.Ctx, client, c.SiteName, servers)
	if err != nil {
		return err
	}
	plan, err := rotation.MakePlan(inv, opts)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(g.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	fmt.Fprintln(g.Out, bot.RenderPlan(plan))
	return nil
}

func planOptions(mode string, minWait, straggler time.Duration, certs []string, damaged bool) (rotation.PlanOptions, error) {
	opts := rotation.PlanOptions{Mode: mode, MinWait: minWait, Straggler: straggler, StragglerSet: straggler > 0, DamagedButValid: damaged}
	for _, s := range certs {
		name, fp, ok := strings.Cut(s, "=")
		if !ok {
			name, fp = "", s
		}
		norm, err := sepm.NormalizeFingerprint(fp)
		if err != nil {
			return opts, fmt.Errorf("--new-cert-sha256 %q: %w", s, err)
		}
		if opts.NewCerts == nil {
			opts.NewCerts = map[string]string{}
		}
		opts.NewCerts[name] = norm
	}
	return opts, nil
}
