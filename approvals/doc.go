// Package approvals owns the two-person rule that guards disabling secure
// communication: an approval Request for one action of one rotation, the
// Ballots approvers cast on it (approve, deny, retract), and the verdict.
//
// The package is pure: no I/O and no clock. Callers pass the time in, resolve
// a voter's roles to Ballot.IsApprover, persist the Request they get back, and
// show the Outcome's Message (or the Refusal's Reason) in the channel.
//
// A request is approved only when Required (default 2) distinct approvers,
// none of them the requester, have approved before it expires, each ballot
// bound to this request (its nonce and chat message, when given) and to the
// action as currently planned (its HashAction). Any approver's deny rejects
// it. Every other ballot is refused with a *Refusal that says why, and the
// request is left unchanged.
package approvals
