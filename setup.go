package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"sepmbot/config"
	"sepmbot/logs"
)

// loadConfigFile reads the config file named by --config or SEPMBOT_CONFIG before
// the command line is parsed (so the file can supply flag values); on error it
// says why and exits.
func loadConfigFile(args []string) *config.File {
	path := config.FindPath(args)
	if path == "" {
		return nil
	}
	f, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sepmbot:", err)
		os.Exit(1)
	}
	return f
}

// configOptions makes the file a source of flag values (below flags and the
// environment, above defaults).
func configOptions(f *config.File) []kong.Option {
	if f == nil {
		return nil
	}
	// Refuse unknown keys here, one line each, rather than with the whole usage.
	if k, err := kong.New(&CLI{}, kong.Name("sepmbot")); err == nil {
		if err := f.Resolver().Validate(k.Model); err != nil {
			fmt.Fprintln(os.Stderr, "sepmbot:", err)
			os.Exit(1)
		}
	}
	return []kong.Option{kong.Resolvers(f.Resolver())}
}

// newGlobals reads every secret the environment configures (so none can reach a
// log line), and builds the redacting logger.
func newGlobals(ctx context.Context, cli *CLI, file *config.File) *Globals {
	if _, err := config.LoadSecretEnvs(); err != nil {
		fmt.Fprintln(os.Stderr, "sepmbot:", err)
		os.Exit(1)
	}
	steps := &logs.Steps{}
	logger, err := logs.New(os.Stderr, logs.Options{Format: cli.LogFormat, Level: cli.LogLevel, Redact: config.Secrets, Steps: steps})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sepmbot:", err)
		os.Exit(1)
	}
	return &Globals{Ctx: ctx, Log: logger, Out: os.Stdout, In: os.Stdin, File: file, Steps: steps,
		LogLevel: cli.LogLevel, LogLevelSet: logLevelSet(os.Args[1:]), LogFormat: cli.LogFormat}
}

// logLevelSet reports whether the log level was given on the command line or in
// the environment.
func logLevelSet(args []string) bool {
	if os.Getenv("SEPMBOT_LOG_LEVEL") != "" {
		return true
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--log-level" || strings.HasPrefix(a, "--log-level=") {
			return true
		}
	}
	return false
}

// redact removes every known secret from s.
func redact(s string) string { return config.Secrets.Redact(s) }
