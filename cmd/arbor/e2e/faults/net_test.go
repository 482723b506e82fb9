package faults

import (
	"fmt"
	"os/exec"
	"strings"
)

// The nftables table and chain that hold partition rules. The chain hooks
// output: every packet of the namespace leaves through lo, so dropping it
// there drops it for good.
const (
	nftTable = "arbor"
	nftChain = "out"
)

// setupNetwork brings loopback up (127.0.0.2 and 127.0.0.3 work on lo
// once it is) and makes the empty partition chain.
func setupNetwork() error {
	if err := sh("ip", "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := sh("nft", "add", "table", "inet", nftTable); err != nil {
		return err
	}
	return sh("nft", "add", "chain", "inet", nftTable, nftChain,
		"{ type filter hook output priority 0 ; policy accept ; }")
}

func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// blockPeer drops raft traffic from member from to member to: packets
// that from's sockets (its uid) send to to's peer port. Raft connections
// are one-way (the dialer only writes), so this cuts exactly the messages
// from sends to to, and nothing to sends back on its own connection.
func (c *cluster) blockPeer(from, to int) {
	c.t.Helper()
	f, t := c.Members[from], c.Members[to]
	if err := sh("nft", "add", "rule", "inet", nftTable, nftChain,
		"meta", "skuid", fmt.Sprint(uid(f)),
		"ip", "daddr", t.Host, "tcp", "dport", fmt.Sprint(t.PeerPort), "drop"); err != nil {
		c.t.Fatal(err)
	}
}

// partition cuts every member of a from every member of b, both ways.
func (c *cluster) partition(a, b []int) {
	c.t.Helper()
	for _, i := range a {
		for _, j := range b {
			c.blockPeer(i, j)
			c.blockPeer(j, i)
		}
	}
}

// heal removes every partition rule.
func (c *cluster) heal() {
	c.t.Helper()
	if err := sh("nft", "flush", "chain", "inet", nftTable, nftChain); err != nil {
		c.t.Fatal(err)
	}
}
