// Package ops owns the operator's offline tools on the data file: a backup (a hot
// copy through one bbolt read transaction, then opened and checked), and the audit
// export of one rotation for change-management records (JSON or CSV).
//
// Guarantees: a backup file is complete or absent (written to a temporary name in
// the same folder, synced, then renamed); Verify opens a copy read-only and runs
// bbolt's page check before it reports what the copy holds. The export reads only
// through the rotation engine's exported API (Get and Audit) and writes every audit
// record with every one of its data fields, so records added later (the change
// journal's old and new values) appear without a change here.
package ops
