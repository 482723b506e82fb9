package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// What Dial says when it cannot open a session.

// ErrBadEndpoint is the cause of Dial's BAD_REQUEST error for an endpoint
// that is not HOST:PORT; match it with errors.Is.
var ErrBadEndpoint = errors.New("arbor: endpoint is not HOST:PORT")

// checkEndpoint accepts HOST:PORT with a numeric port (the host may be
// empty, meaning this machine, as for net.Dial).
func checkEndpoint(ep string) error {
	bad := func(format string, args ...any) error {
		msg := fmt.Sprintf("bad endpoint %q: ", ep) + fmt.Sprintf(format, args...)
		return &Error{Code: wire.CodeBadRequest, Message: msg, Index: -1, cause: ErrBadEndpoint}
	}
	if scheme, rest, ok := strings.Cut(ep, "://"); ok {
		hostPort, _, _ := strings.Cut(rest, "/")
		return bad("want HOST:PORT without a scheme (%s://): %s", scheme, hostPort)
	}
	_, port, err := net.SplitHostPort(ep)
	var ae *net.AddrError
	switch {
	case errors.As(err, &ae) && ae.Err == "missing port in address":
		return bad("no port; want HOST:PORT, such as %s:7400", ep)
	case err != nil:
		return bad("want HOST:PORT")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad("port %q is not a port number; want HOST:PORT", port)
	}
	return nil
}

// endpointFailure is why one endpoint could not be used at Dial.
type endpointFailure struct{ endpoint, why string }

// whyUnusable says in a few words why opening a session on an endpoint
// failed: these are the words a user acts on (start a member, wait for a
// quorum, fix the address).
func whyUnusable(ctx context.Context, err error) string {
	var e *Error
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &e) && e.cause == nil && e.Message != "":
		return e.Message // what the member answered, such as "no leader: ..."
	case errors.Is(ctx.Err(), context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout(),
		// open closes the connection when its deadline passes, which
		// may surface before the deadline error does.
		errors.Is(err, net.ErrClosed), ctx.Err() != nil:
		return "timed out"
	case errors.Is(err, websocket.ErrBadHandshake):
		return "no arbor WebSocket endpoint there (the member is shutting down, or it is not arbor)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed before hello was answered"
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u // the innermost cause, without the layers' prefixes
	}
	return err.Error()
}

// describeFailures lists the endpoints by cause: "a,b: connection
// refused; c: no leader: ...".
func describeFailures(failed []endpointFailure) string {
	var order []string
	byWhy := map[string][]string{}
	for _, f := range failed {
		if _, seen := byWhy[f.why]; !seen {
			order = append(order, f.why)
		}
		byWhy[f.why] = append(byWhy[f.why], f.endpoint)
	}
	parts := make([]string, len(order))
	for i, why := range order {
		parts[i] = strings.Join(byWhy[why], ",") + ": " + why
	}
	return strings.Join(parts, "; ")
}
