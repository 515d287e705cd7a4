// Package sepm is the REST client for Symantec Endpoint Protection Manager (API v1):
// login and token renewal, paging, retries of idempotent calls, observe-then-act
// settings changes, TLS trust by CA bundle or by a set of pinned SHA-256 fingerprints,
// and the TLS probe that verifies which certificate a server presents. The same client
// talks to a real SEPM and to the simulator in sepm/sim.
//
// What it owns:
//   - Auth: POST identity/authenticate on first use; the token is renewed before 10%
//     (at least 30 s) of its lifetime remains; a 401 triggers one new login and one
//     retry. Passwords and tokens never appear in logs or errors (an echo by the
//     server is redacted).
//   - Paging: pageIndex from 1, pageSize up to 1000, stopping at lastPage, totalPages
//     or an empty page, and refusing a server that repeats a page.
//   - Retries: GETs (and logins) are retried on 5xx, transport errors and per-request
//     timeouts with capped exponential backoff and jitter; never on a 4xx or a TLS
//     trust failure. A settings PATCH is sent once and verified by reading it back.
//   - TLS trust: a CA bundle, or a pinned fingerprint set that can change at runtime
//     (Trust / Untrust) so both the old and the new certificate are accepted while a
//     rotation runs; an untrusted server is refused with the fingerprint it presented.
//   - Connections and decoding: every reply is read to its end (bounded: 64 MiB for
//     a 2xx, 64 KiB for an error) into a reused buffer and then decoded, so
//     keep-alive holds and a sweep runs over one connection; pages are decoded once
//     into the slim types (Computer keeps only what the bot reads) with
//     github.com/goccy/go-json, everything else with encoding/json. A wait's reads
//     (EachComputerMarkPage) decode into ComputerMark pages kept from read to read,
//     so a poll allocates nothing per record. Stats counts
//     requests, connections and body bytes; SweepFloor is a measurement aid.
//   - ProbeCertificate: a bare TLS handshake reporting the presented leaf certificate.
package sepm
