package sepm

// Hooks for the external tests (package sepm_test), which may import sepm/sim.

// UnmarshalPage is the page decoder of paged reads.
var UnmarshalPage = unmarshalPage
