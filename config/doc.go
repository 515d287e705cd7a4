// Package config owns sepmbot's settings beyond single flags: the optional YAML
// config file, the precedence between flags, SEPMBOT_* environment variables, the
// file and defaults, secrets, and the description of several SEPM sites.
//
// Guarantees:
//
//   - Precedence is flag > environment > file > default, for every setting a flag
//     names. The file's top-level keys are flag names (for example `sepm-url`,
//     `approvals`, `log-format`); a key that names no flag of any command is an
//     error, as is a key of a site that sepmbot does not know.
//   - Secrets (the SEPM password, chat tokens, signing secrets) are read only from
//     the environment or from a file named by a *_FILE variable or *-file setting,
//     never from the config file itself: a config file that carries one is refused
//     with the variable to use instead.
//   - Every secret read through Secret is registered with a Redactor, so the log
//     handler can replace it wherever it would appear.
package config
