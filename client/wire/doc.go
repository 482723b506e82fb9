// Package wire holds the messages, op names, error codes and JSON shapes of
// Arbor's WebSocket protocol (docs/protocol.md). Both the server and the
// client import it. Its only logic is the codec of the hot path
// (DecodeRequest, DecodeResponse, AppendRequest, AppendResponse): hand-written
// JSON for the common frames that gives exactly encoding/json's results and
// leaves every other frame to encoding/json.
package wire
