// Package servertest runs in-process Arbor clusters for tests and
// benchmarks: n members started with server.Run on 127.0.0.1 listeners
// bound to port 0 (passed in, so no port can be taken in between), data in
// t.TempDir(), stopped by t.Cleanup.
//
//	c := servertest.NewCluster(t, 3)
//	addr := c.Addr(0) // host:port of member 0's WebSocket + HTTP endpoint
//	c.Stop(0)
//	c.Restart(0)
//
// Members run with fsync off unless the Fsync option is given.
package servertest
