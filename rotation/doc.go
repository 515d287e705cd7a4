// Package rotation owns the runbook of a SEPM server-certificate rotation: the planner,
// which turns a site's inventory into the steps of the single-server (Broadcom steps
// 1-9) or multi-server (Broadcom steps 10-13) procedure; a pure transition layer
// (Apply: state, event, now -> new state, effects; no I/O, no clock of its own); the
// change journal; and the engine, a thin executor that persists each transition in
// one store transaction, then performs its effects against SEPM and the chat layer.
//
// Guarantees the engine keeps:
//   - Secure communication is never disabled without an approved approvals.Request
//     bound to the rotation and to the exact action: site, path, targets, the setting
//     written, the new certificate fingerprints (or that an operator confirms them),
//     --min-wait and the straggler window. At the dangerous step the approval must be
//     younger than its ttl and every counted voter must still hold the approver role
//     (Config.Roles); otherwise the rotation goes back and asks again. A deny pauses
//     at the approval step: resume asks again, abort reverts.
//   - Every change of status, cursor or steps (rewinds and aborts included) is made by
//     Apply and nowhere else; the executor commits it before it announces it. The
//     messages a transition owes the channel are part of the committed state (the
//     outbox), so a process killed after the commit posts them after its restart, and
//     a restarted engine says where each rotation resumed.
//   - Before each SEPM change the engine commits an intent (target, field, old value,
//     new value) to the change journal, and after SEPM confirmed it by read-back, its
//     result. A change that landed just before a kill is recognised as this rotation's
//     own (the intent was recorded first), never PATCHed twice.
//   - Abort works from any state, including a step applied to k of n targets and a
//     rotation rewound after the approval's ttl: its revert is built from the journal
//     (what was actually touched), never from step status, and puts back on every
//     touched target the value it had before the rotation first changed it. Its
//     waits are three heartbeats; the one that lets clients take a new certificate
//     (when one changed, or may be changing) keeps the certificate wait's floor.
//   - Observe before every dangerous act: before asking for a certificate update, when
//     the operator says it is done, before re-enabling secure communication, before
//     restoring the lists and before the next server, the engine re-reads every
//     server certificate and every target and compares them with the journal. Any
//     difference (a setting not as the bot left it, a certificate changed out of turn,
//     a target gone or new) pauses the rotation with a message naming the target and
//     what to do, and is audited; resume observes again.
//   - Clients online and checking in when a server's certificate changed must check
//     in again: one silent for more than three heartbeats is suspected orphaned, and
//     the engine then neither re-enables secure communication, restores the lists nor
//     moves to the next server until an operator accepts them (audited). The final
//     report counts every client once: on the new settings, suspected orphaned,
//     offline since before the change, never seen; a completion with suspected
//     orphans never reads as a success.
//   - Waits are absolute deadlines in the store (Start re-arms them after a restart);
//     no wait ends before its deadline, whatever the clients show. Observation errors
//     during a wait retry with back-off and never pause it: one alert after two poll
//     intervals without SEPM, one message when it answers again. SEPM refusing the
//     bot's credentials stops retrying at once and pauses. Only failed changes pause;
//     a failing store backs off (capped).
//   - A wait's polls cost what changed, not the fleet: one full computers sweep at
//     the start of the wait (and after a restart) builds a compact per-client map;
//     each poll then reads the group serials, stats/client/onlinestatus and only the
//     computers changed since the last poll (Tracker). A wait never completes on
//     that incremental figure: a full sweep in its final window, started twice the
//     last sweep's duration plus a second before the deadline, confirms the verdict,
//     and one cheap check at the deadline ends it on time. Interlocks and reports
//     read full sweeps.
//   - One rotation at a time per site and per group of sites sharing a lock
//     (Config.LockSites), checked inside the transaction that creates it. An engine
//     resumes and lists only its own site's rotations.
//   - Exposure is bounded: the rotation records since when clients use the HTTP lists
//     and secure communication is off; past the plan's expected end plus
//     Config.OverdueAfter, or while paused with secure communication off, the engine
//     reminds the operators every 24 hours.
//
// The package knows nothing about chat platforms: it reports through the Notifier
// interface it defines, and takes commands through Engine methods.
package rotation
