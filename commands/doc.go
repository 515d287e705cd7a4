// Package commands owns the grammar of the `/sepm` chat command: it turns the text a
// user typed into a validated Command, and generates the help and usage text from the
// same table that drives parsing, so the two never disagree. It is pure: no I/O, no
// clock, no knowledge of chat platforms, SEPM or the store.
//
// Grammar (the leading "/sepm" is optional, words are separated by whitespace):
//
//	/sepm help [subcommand]
//	/sepm plan [site] [--mode auto|single|multi] [--min-wait D] [--damaged-but-valid]
//	/sepm rotate [site] [--mode auto|single|multi] [--min-wait D] [--straggler D] [--new-cert-sha256 FP]... [--damaged-but-valid]
//	/sepm status [id]
//	/sepm list
//	/sepm approve <id>
//	/sepm deny <id> [reason...]
//	/sepm done <id> <step> [--accept-orphans N]
//	/sepm confirm <id> <step>
//	/sepm pause <id>
//	/sepm resume <id>
//	/sepm abort <id> [reason...]
//	/sepm audit <id>
//
// Flags take "--flag value" or "--flag=value" (a leading em or en dash, as some chat
// clients auto-correct "--" to, is accepted too). A site may be left out when exactly one
// site is configured. Rotation ids are R followed by digits (R7, any case); step ids are
// letters, digits, '_', '-' and '.' (cert-sepm-01). Durations (D) use the units d, h, m
// and s, largest first (90d, 1h30m, 2d12h, 45s). FP is a SHA-256 certificate fingerprint
// (64 hex digits, colons optional), optionally prefixed by a server name (sepm-01=FP).
// Reasons are the rest of the line, joined by single spaces.
//
// # Permission model
//
// Command.Role names the role a command needs; Role.SatisfiedBy decides whether a user
// holding some roles may run it:
//   - Operator: plan, rotate, done, confirm, pause, resume, abort.
//   - Approver: approve, deny.
//   - Viewer: help, status, list, audit. Everyone allowed to read may run these, and
//     operators and approvers may read too.
//
// Operator and Approver are not ordered: an operator cannot approve and an approver
// cannot operate unless the user holds both roles. (The two-person rule itself, that a
// requester never approves their own request, lives in package approvals.)
//
// Every error Parse returns is a *UsageError whose Msg is one line, safe to show in the
// channel (user input is quoted and shortened), and whose Usage is the usage line of
// the subcommand concerned, or the general one.
package commands
