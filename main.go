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
	"syscall"

	"github.com/alecthomas/kong"

	"sepmbot/textsafe"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// CLI is the command line: subcommands and their flags (each flag also reads an
// SEPMBOT_* environment variable where it names one).
type CLI struct {
	LogLevel slog.Level `help:"Log level (debug, info, warn, error)." default:"info" env:"SEPMBOT_LOG_LEVEL"`

	Run     RunCmd     `cmd:"" default:"withargs" help:"Run the bot (default)."`
	Demo    DemoCmd    `cmd:"" help:"Run the whole job on an embedded simulated SEPM in the terminal."`
	Plan    PlanCmd    `cmd:"" help:"Read a SEPM site and print the rotation plan."`
	Sim     SimCmd     `cmd:"" help:"Serve a simulated SEPM site on loopback."`
	Version VersionCmd `cmd:"" help:"Print the version."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.Out, "sepmbot", version)
	return nil
}

func main() {
	var cli CLI
	kctx := kong.Parse(&cli,
		kong.Name("sepmbot"),
		kong.Description("ChatOps for the SEPM server-certificate rotation."),
		kong.UsageOnError(),
	)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cli.LogLevel}))
	g := &Globals{Ctx: ctx, Log: logger, Out: os.Stdout, In: os.Stdin}
	if err := kctx.Run(g); err != nil {
		fmt.Fprintln(os.Stderr, "sepmbot:", textsafe.Text(err.Error())) // errors can carry SEPM's names
		os.Exit(1)
	}
}
