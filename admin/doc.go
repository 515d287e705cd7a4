// Package admin owns sepmbot's admin listener and its metrics: /healthz (the
// process is up), /readyz (the store answers, every chat platform is connected,
// every site's SEPM answered its latest call), /metrics (Prometheus, computed from
// the engines at scrape time plus counters of SEPM and chat calls), and, for
// `sepmbot backup` and `sepmbot audit export` while the bot holds the data file,
// /backup and /audit/{id}.
//
// It reads rotations only through the engine's exported API (List, Get, Audit) and
// never writes to the store. The listener binds to loopback by default; anyone who
// can reach it can read the audit trail and a copy of the data file (which holds no
// secret), so expose it only to the monitoring network.
package admin
