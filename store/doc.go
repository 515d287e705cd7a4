// Package store owns sepmbot's durable state: one bbolt data file holding the
// rotations, the approval requests, the audit trail, the delivery ids of chat
// events already processed, the armed timers and a little metadata.
//
// The store knows nothing about rotations or approvals: it keeps bytes in
// named buckets (see the Bucket* constants), all created by Open. Callers
// encode their own values.
//
// Guarantees, inherited from bbolt:
//
//   - One process at a time. Open takes an exclusive lock on the file and gives
//     up after two seconds with an error wrapping ErrLocked ("already running")
//     instead of waiting forever. A second Open in the same process fails the
//     same way.
//   - One transaction is one transition. Everything a function passed to
//     Update writes is committed together or not at all: if the function
//     returns an error (or panics) nothing it wrote is kept.
//   - A nil return from Update means durable: the commit has been written and
//     fsynced, so it survives a crash or power loss that happens afterwards.
//   - The audit trail is append-only. Records are added with Tx.AppendAudit,
//     which numbers them with a global, increasing sequence; the package offers
//     no way to change or remove one, and Tx.Put and Tx.Delete refuse the audit
//     bucket and the store's internal buckets.
//   - Deliver records chat delivery ids so each is processed at most once
//     within a time-to-live, pruning old ids a bounded amount per call.
//     Concurrent Deliver calls share one commit (group commit without a timer:
//     a call waits at most for the commit in progress and its own), and each
//     returns only once its record is durable.
//
// Views may run concurrently with each other and with one Update; Updates are
// serialised. Never call View or Update from inside another transaction's
// function in the same goroutine: bbolt would deadlock.
package store
