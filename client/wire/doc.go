// Package wire holds the messages, op names, error codes and JSON shapes of
// Arbor's WebSocket protocol (docs/protocol.md). Both the server and the
// client import it; it holds no logic.
package wire
