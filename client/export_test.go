package client

// StartExampleServer starts a member for the package's examples and returns
// its client address. Until package server builds it is the fake protocol
// server of fake_test.go.
func StartExampleServer() (addr string, stop func()) {
	f := startFake(func(string, ...any) {})
	return f.addr(), f.shutdown
}
