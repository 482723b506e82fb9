// Command arbor runs an Arbor member (arbor dev, arbor server) and talks to
// a cluster (create, get, set, delete, ls, stat, members). Its behaviour is
// the contract of docs/cli.md. The command holds no logic of its own: it
// parses flags (and their ARBOR_* environment fallbacks) into a
// server.Config or a client.Config, sets up slog and signals, and calls
// server.Run or the client.
//
// Exit status: 0 on success; 1 when the operation failed, with one line
// "CODE: message" on stderr; 2 for wrong usage.
package main
