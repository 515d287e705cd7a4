// Package admin owns sepmbot's admin listener and its metrics: /healthz (the
// process is up), /readyz (the store answers, every chat platform is connected,
// every site's SEPM answered its latest call), /metrics (Prometheus, computed from
// the engines at scrape time plus counters of SEPM and chat calls), and, for
// `sepmbot backup` and `sepmbot audit export` while the bot holds the data file,
// /backup and /audit/{id}.
//
// It reads rotations only through the engine's exported API (List, Get, Audit) and
// never writes to the store. The listener binds to loopback by default. /backup and
// /audit/{id} hand out the data file and the audit trail (no secret, but the whole
// history of every rotation): they answer only loopback peers, or, with
// SEPMBOT_ADMIN_TOKEN set, only requests that carry it (private.go), so binding
// the listener wider for Prometheus exposes the metrics and health only.
package admin
