// Package rotation owns the runbook of a SEPM server-certificate rotation: the planner,
// which turns a site's inventory into the steps of the single-server (seed steps 1-9) or
// multi-server (seed steps 10-13) procedure, and the engine, which drives those steps
// against SEPM, keeps every transition in the store, and reports through a Notifier.
//
// Guarantees the engine keeps:
//   - Secure communication is never disabled without an approved approvals.Request bound
//     to the rotation and to the exact action (the hash of the targets and settings).
//   - A transition is committed to the store before it is announced, and every SEPM
//     change is observe-then-act: a step re-run after a crash reads the current settings
//     first and skips what is already done.
//   - Waits are absolute deadlines in the store; Start re-arms them after a restart.
//   - Abort never leaves secure communication off: it waits for clients to catch up,
//     re-enables it, waits, then re-assigns the original management server lists.
//
// The package knows nothing about chat platforms: it reports through the Notifier
// interface it defines, and takes commands through Engine methods.
package rotation
