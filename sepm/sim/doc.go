// Package sim is the simulated SEPM site that ships in sepmbot (`sepmbot sim` and the
// demo): the SEPM REST API v1 over HTTPS on loopback, answered from a model of a
// site, plus a fleet of simulated clients that check in on their heartbeat and get
// orphaned exactly when a real client would.
//
// What the sim owns:
//   - The site: a domain, a group tree under "My Company" (each group inherits its
//     policy from its parent or not), locations per group ("Default", plus "Remote VPN"
//     in some non-inheriting groups), and per (non-inheriting group, location) settings:
//     mode, heartbeat, the management server list (MSL) in use (sem_server.name) and
//     secure communications.
//   - Named MSLs (server entries with protocol HTTPS/HTTP, port and priority); only the
//     admin API copies and assigns them, as only the console does on a real SEPM.
//   - Servers ("sepm-01", ...), each with a self-signed ECDSA P-256 certificate
//     (CN = server name) and a pre-generated next certificate that an update installs.
//     Each server listens on its own TLS port standing for its client port 443 and
//     presents its current certificate; the API listener (standing for 8446) presents
//     server 1's current certificate, so it changes when server 1's is updated.
//   - The fleet: clients with a group, a location, an agent version (12.1, 14.x, 14.2.x,
//     14.3), an online state, and a cached policy: settings, MSL and the certificate
//     fingerprint of every server, as of their last check-in.
//   - REST tokens (they expire) and fault injection (5xx share, latency, expire all
//     tokens).
//
// The client model, evaluated at each online client's heartbeat (real time, the
// interval taken from the client's cached policy, jittered by +-Options.Jitter
// (default 10%), all clients on one heap-driven scheduler goroutine):
//   - The effective policy of a client is the settings of its group's nearest
//     non-inheriting ancestor-or-self for its location.
//   - The client tries the servers of its cached MSL by priority, in random order
//     within a priority. A server fails when the client's cached secure communication is
//     on and the server presents a certificate other than the cached one, or when the
//     entry is HTTPS, the client is 14.0 or later, and the certificate differs.
//   - When every server fails the client is orphaned for good.
//   - On success the client takes its group's current policy (profileSerialNo, settings,
//     MSL, certificates), lastUpdateTime and lastServerName. A 14.2.x client keeps its
//     cached certificates unless its cached secure communication was off at that
//     check-in (Broadcom's 14.2 caveat).
//   - A check-in that finds a newer policy downloads it with probability
//     Options.PolicyFetch (default 1); a failed download leaves the cached policy
//     (lastUpdateTime moves, profileSerialNo does not) and is retried shortly after.
//   - Roaming clients (Options.RoamingPercent, default 0) drop offline at random after
//     a check-in that left them on their group's current policy, for 1.25 to 2.75 of
//     their heartbeats, so only a wait of about three heartbeats catches them all.
//   - Offline, away and blocked clients (admin API) do nothing until they come
//     back; then they check in with whatever they cached.
//   - A site starts fresh (every online client checks in within its first
//     heartbeat, every roamer present), or with Options.Steady as a fleet that has
//     run for days: check-ins at a steady rate from the start, roamers away in
//     their steady share (build.go, steadyPhase).
//   - A group's policySerialNumber ("XXXX-MM/DD/YYYY HH:MM:SS mmm", XXXX = first four hex
//     digits of the group id, time in GMT) changes, strictly increasing, whenever the
//     group's effective policy changes: a settings PATCH on it or on the group it
//     inherits from, an MSL assignment, or a certificate update of a server in its MSLs.
//
// The library's Options default to ideal clients (every download works, +-10%
// jitter, nobody roams); `sepmbot sim` and the demo turn the realistic model on
// (0.7, +-50%, 10%).
//
// Replies carry every field of Broadcom's Swagger document for their schema (the
// types of wire_gen.go are generated from testdata/openapi-full.json), the spec's
// statuses, default page sizes and orders, and honour its query filters
// (contract_test.go checks every reply against the document). Requests are decoded
// with package sepm's types. Like real SEPM,
// a computer's group carries the full path in name and leaves fullPathName empty.
// Orphaned clients report onlineStatus 0, as SEPM shows a client that no longer
// checks in. The same seed gives the same fleet (ids, names, groups, versions, offline
// set) and the same certificates: keys, serials, validity and signatures (RFC 6979)
// are derived from the seed.
//
// Scale (500,000 clients at SEPM's 300 s heartbeat on well under a core): the
// model lock, shared by the heartbeat scheduler and every request, is held only
// for what must be consistent. GET computers?lastUpdate=T reads the clients that
// checked in after T from an index by lastUpdate (luindex.go) instead of scanning
// the fleet, and the later pages of the same query start from the first's
// selection; a page copies its clients' changing state under the lock and builds
// and streams its records, full or reduced, from cut templates after releasing it
// (pagewrite.go, recordtmpl.go), reading the page's clients in one pass first so
// that a poll's clients, scattered through the fleet, cost about what a sweep's
// do; stats/client/onlinestatus reads a count kept as clients change.
// Replies are the same bytes as before each of these (tests compare them).
// [Site.Connections] and [Site.Handshakes] count the API listener's connections
// and TLS handshakes, so a client's connection reuse can be measured.
//
// With Options.StateFile the site survives restarts (see state.go for what is kept
// and when it is written); without it, a restart is a fresh site from the seed.
//
// The /sim/v1 admin API (see [AdminAPI]) does what an operator does in the console
// (copy and assign MSLs, update a certificate, take clients offline or cut them
// off, change a setting out of band, restart fresh) and reports the truth about the
// fleet, with every accepted PATCH counted per target and field.
package sim

//go:generate go run ./internal/wiregen -spec testdata/openapi-full.json -out wire_gen.go
