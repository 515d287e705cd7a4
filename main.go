// Command sepmbot is a ChatOps bot that runs the SEPM server-certificate rotation
// (see README.md): `sepmbot demo` runs the whole job against an embedded simulated
// SEPM in the terminal; `sepmbot run` runs the bot; `sepmbot plan` prints a plan;
// `sepmbot sim` serves a simulated SEPM site.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"sepmbot/textsafe"
)

// version and revision may be set at build time with
// -ldflags "-X main.version=v1.2.3 -X main.revision=abc1234"; otherwise they come
// from the build info (the module version, and the VCS revision when built with
// -buildvcs=true in a git checkout).
var (
	version  = ""
	revision = ""
)

// versionLine is what `sepmbot version` prints: "sepmbot v1.2.3 (revision
// 0123abc…, 2026-12-01T10:00:00Z, modified) go1.26.0".
func versionLine() string {
	ver, rev, when, dirty, goVer := version, revision, "", false, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVer = bi.GoVersion
		if ver == "" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	line := "sepmbot " + ver
	if rev == "" {
		line += " (revision unknown: build with -buildvcs=true or -ldflags \"-X main.revision=...\")"
	} else {
		parts := []string{"revision " + rev}
		if when != "" {
			parts = append(parts, when)
		}
		if dirty {
			parts = append(parts, "modified")
		}
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	if goVer != "" {
		line += " " + goVer
	}
	return line
}

// overview is what `sepmbot` alone prints.
const overview = `sepmbot: ChatOps for the SEPM server-certificate rotation (Broadcom's procedure, with
two-person approval before secure communication goes off).

  sepmbot demo              try it: a simulated SEPM site and the bot, in this terminal
  sepmbot demo --auto       the same, playing a scripted conversation to the end
  sepmbot run --data DIR    run the bot against a SEPM (sepmbot run --help for its settings)
  sepmbot plan              read a SEPM site and print the rotation plan
  sepmbot sim               serve a simulated SEPM site on loopback
  sepmbot bench             measure the bot at scale against a simulated SEPM
  sepmbot version           print the version and VCS revision

sepmbot COMMAND --help shows a command's flags; docs/procedure.md the procedure.
`

// CLI is the command line: subcommands and their flags (each flag also reads an
// SEPMBOT_* environment variable where it names one).
type CLI struct {
	ConfigFile string     `name:"config" type:"path" help:"YAML config file: settings by flag name, and sites (see README)." env:"SEPMBOT_CONFIG"`
	LogLevel   slog.Level `help:"Log level (debug, info, warn, error)." default:"info" env:"SEPMBOT_LOG_LEVEL"`
	LogFormat  string     `name:"log-format" enum:"text,json" default:"text" help:"Log format: text or json." env:"SEPMBOT_LOG_FORMAT"`

	Run     RunCmd     `cmd:"" default:"withargs" help:"Run the bot (default)."`
	Demo    DemoCmd    `cmd:"" help:"Run the whole job on an embedded simulated SEPM in the terminal."`
	Plan    PlanCmd    `cmd:"" help:"Read a SEPM site and print the rotation plan."`
	Sim     SimCmd     `cmd:"" help:"Serve a simulated SEPM site on loopback."`
	Discord DiscordCmd `cmd:"" help:"Discord: register /sepm."`
	Version VersionCmd `cmd:"" help:"Print the version."`
	Bench   BenchCmd   `cmd:"" help:"Measure the bot at scale against a simulated SEPM (sweeps, incremental poll, wait end, memory, router)."`

	Config      ConfigCmd      `cmd:"" help:"Check the configuration against SEPM, the chat platforms and the data folder."`
	Backup      BackupCmd      `cmd:"" help:"Copy the data file (also while the bot runs) and verify the copy."`
	Audit       AuditCmd       `cmd:"" help:"Export a rotation's audit trail for change management."`
	Healthcheck HealthcheckCmd `cmd:"" help:"Ask the running bot's admin listener whether it is healthy (for Docker's HEALTHCHECK)."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.Out, versionLine())
	return nil
}

func main() {
	if len(os.Args) == 1 {
		fmt.Print(overview)
		return
	}
	var cli CLI
	file := loadConfigFile(os.Args[1:])
	kctx := kong.Parse(&cli, append(configOptions(file),
		kong.Name("sepmbot"),
		kong.Description("ChatOps for the SEPM server-certificate rotation."),
		kong.UsageOnError(),
	)...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := newGlobals(ctx, &cli, file)
	if err := kctx.Run(g); err != nil {
		fmt.Fprintln(os.Stderr, "sepmbot:", textsafe.Text(redact(err.Error()))) // errors can carry SEPM's names
		os.Exit(1)
	}
}

// shortVersion is the version alone ("v1.2.3" or "(devel)"), for banners.
func shortVersion() string { return strings.Fields(versionLine())[1] }
