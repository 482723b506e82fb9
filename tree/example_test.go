package tree_test

import (
	"fmt"

	"github.com/arbor-db/arbor/tree"
)

func Example() {
	t := tree.New()
	// The proposer stamps each command with its zxid and time (Unix ms).
	if _, _, err := t.Apply(1, 1700000000000, tree.Op{Kind: tree.OpCreate, Path: "/config", Data: []byte("v1")}); err != nil {
		fmt.Println(err)
	}
	res, events, err := t.Apply(2, 1700000000500, tree.Op{Kind: tree.OpCreate, Path: "/config/item-", Sequential: true})
	if err != nil {
		fmt.Println(err)
	}
	fmt.Println("created", res.Path, "with", len(events), "events")

	_, _, err = t.Apply(3, 1700000001000, tree.Op{Kind: tree.OpSet, Path: "/config", Data: []byte("v2"), Version: 0})
	if err != nil {
		fmt.Println(err)
	}
	data, stat, _ := t.Get("/config")
	fmt.Printf("%s version=%d mzxid=%d cversion=%d\n", data, stat.Version, stat.Mzxid, stat.Cversion)

	_, _, err = t.Apply(4, 1700000002000, tree.Op{Kind: tree.OpSet, Path: "/config", Version: 0})
	fmt.Println(err)
	// Output:
	// created /config/item-0000000000 with 2 events
	// v2 version=1 mzxid=3 cversion=1
	// tree: version does not match: /config is at version 1, not 0
}
