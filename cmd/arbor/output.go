package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// printStat prints one "field: value" line per stat field, wire names.
func printStat(w io.Writer, st *wire.Stat) error {
	if st == nil {
		return nil
	}
	ms := func(v int64) string {
		return fmt.Sprintf("%d (%s)", v, time.UnixMilli(v).UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	_, err := fmt.Fprintf(w, "czxid: %d\nmzxid: %d\npzxid: %d\nctime: %s\nmtime: %s\n"+
		"version: %d\ncversion: %d\ndata_length: %d\nnum_children: %d\nephemeral_owner: %s\n",
		st.Czxid, st.Mzxid, st.Pzxid, ms(st.Ctime), ms(st.Mtime),
		st.Version, st.Cversion, st.DataLength, st.NumChildren, st.EphemeralOwner)
	return err
}

// printMembers prints a table of the members, sorted by name.
func printMembers(w io.Writer, ms []wire.Member) error {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b wire.Member) int { return strings.Compare(a.Name, b.Name) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCLIENT_URL\tPEER_URL\tROLE\tALIVE")
	dash := func(s string) string { // keeps the columns when a member has not published yet
		if s == "" {
			return "-"
		}
		return s
	}
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", dash(m.Name), dash(m.ClientURL), dash(m.PeerURL), dash(m.Role), m.Alive)
	}
	return tw.Flush()
}
