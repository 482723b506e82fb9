// Package arbortest runs real Arbor members inside a Go test's own
// process, so that code which uses Arbor (through package client) can be
// tested against the real thing rather than a mock, as etcd's embed package
// and Curator's TestingServer allow for theirs.
//
//	func TestRegister(t *testing.T) {
//		srv := arbortest.Start(t) // one member; StartCluster(t, 3) for three
//		c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
//		...
//	}
//
// The members listen on free loopback ports, keep their data in a
// temporary directory, skip fsync and tick fast; Start and StartCluster
// return once every member is ready (its /readyz answers 200: it has a
// leader and has applied what is committed), and t.Cleanup stops them and
// removes their data. Their logs are discarded unless WithLogger says
// otherwise.
//
// Where there is no testing.TB, as in an Example function or a small
// demo program, New does the same and the caller calls Close:
//
//	srv, err := arbortest.New(1)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer srv.Close()
//
// New returns an error instead of taking a function to call on failure, so
// that examples read as the code a user writes: errors are values.
package arbortest
