// Package proc runs clusters of real `arbor server` processes on this
// machine: the one harness of the process-level tests (cmd/arbor/e2e and
// its fault suite) and of `arbor bench --start-cluster`. It starts N
// members bootstrapped together, waits until they are ready, kills (-9),
// stops (SIGTERM), pauses and restarts them, adds members by gossip, finds
// the leader a majority of the voters names, and waits until a member has
// applied everything the leader had committed.
//
//	c, err := proc.StartCluster(ctx, proc.Options{Binary: bin, Dir: dir, N: 3})
//	...
//	defer c.KillAll()
//	l, err := c.WaitLeader(ctx, 10*time.Second)
//	c.Kill(l)
//	...
//
// It ships in the arbor binary (through client/bench), so it does not
// import package testing: every method returns an error, and a test turns
// it into t.Fatal. Every wait takes a duration it gives up after.
//
// Ports are picked free and released before a member binds them, so
// another process can take one in between. A cluster whose member exits
// because an address is in use is started again on new ports (the data
// dirs are emptied first: nothing was acknowledged yet); a member started
// again on its old ports (a restart) is retried on them until WaitReady's
// deadline, since its peer address is part of the cluster's configuration.
package proc
