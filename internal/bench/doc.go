// Package bench holds the measuring parts of `sepmbot bench`: a counting loopback
// proxy (bytes on the wire and connections per sweep), /proc readings (CPU time,
// resident memory) of a process, a plain client of the simulator's API, the
// wait-end latency of a real rotation, and the router's event throughput. It
// measures; it asserts nothing about time (the command prints the figures, the
// reader judges them).
package bench
