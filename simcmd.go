package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"sepmbot/sepm/sim"
)

// SimFlags shape the simulated site; `sepmbot sim` and `sepmbot demo` share them.
type SimFlags struct {
	Clients   int           `default:"500" help:"Number of simulated clients."`
	Servers   int           `default:"1" help:"Number of management servers."`
	Groups    int           `default:"8" help:"Number of groups, My Company included."`
	Heartbeat time.Duration `default:"1s" help:"Heartbeat of every group (whole seconds)."`
	Versions  string        `default:"14.3=80,14.2=10,12.1=10" help:"Agent version mix in percent (keys 14.3, 14.2, 14.x, 12.1)."`
	Offline   int           `default:"5" help:"Percent of clients offline at the start."`
	Seed      int64         `default:"1" help:"Seed: the same seed gives the same fleet."`
	Failover  string        `default:"loadbalance" enum:"loadbalance,failover,none" help:"How the default MSL lists the servers."`
	// Realistic clients by default; --policy-fetch 1 --jitter 0.1 --roaming 0 gives
	// the ideal clients the library's Options default to.
	PolicyFetch float64 `name:"policy-fetch" default:"0.7" help:"Probability that a check-in finding a newer policy downloads it (failures are retried)."`
	Jitter      float64 `default:"0.5" help:"Heartbeat jitter: each interval is heartbeat x [1-J, 1+J]."`
	Roaming     int     `default:"10" help:"Percent of clients (laptops, VPN) that drop offline for a few heartbeats at random."`
}

func (f SimFlags) options(listen, user, password string) sim.Options {
	return sim.Options{
		Listen: listen, Clients: f.Clients, Servers: f.Servers, Groups: f.Groups, Heartbeat: f.Heartbeat,
		Versions: f.Versions, OfflinePercent: f.Offline, Seed: f.Seed, User: user, Password: password,
		Failover: f.Failover, PolicyFetch: f.PolicyFetch, Jitter: f.Jitter, RoamingPercent: f.Roaming,
	}
}

// SimCmd serves a simulated SEPM site.
type SimCmd struct {
	SimFlags     `embed:""`
	Listen       string `default:"127.0.0.1:8446" help:"API listen address (loopback)."`
	User         string `default:"admin" help:"REST user of the simulated SEPM."`
	PasswordFile string `name:"password-file" type:"path" help:"File holding the REST password (default: a random one, printed)."`
	State        string `type:"path" help:"Keep the site in this file (bbolt) across restarts: made on the first start, continued on the next with the same seed and shape flags."`
	Fresh        bool   `help:"Start every client as if just switched on: each online client checks in within its first heartbeat and every roamer is present, so the second heartbeat comes as a wave. Without it the site starts as if it had run for days: check-ins come at a steady rate and some roamers are away."`
}

// Run serves the site until interrupted.
func (c *SimCmd) Run(g *Globals) error {
	pw, err := simPassword(c.PasswordFile)
	if err != nil {
		return err
	}
	opts := c.siteOptions(pw)
	opts.Logger = g.Log
	if c.PasswordFile == "" {
		fmt.Fprintf(g.Out, "REST user %s, generated password %s (give --password-file to choose one)\n", c.User, pw)
	}
	return sim.Run(g.Ctx, opts, g.Out)
}

// siteOptions is the site `sepmbot sim` serves: the shared flags, its own
// listener and user, its state file, and a steady start unless --fresh.
func (c *SimCmd) siteOptions(password string) sim.Options {
	opts := c.options(c.Listen, c.User, password)
	opts.StateFile = c.State
	opts.Steady = !c.Fresh
	return opts
}

// simPassword reads the simulator's password from a file, or makes a random one.
func simPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading --password-file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
