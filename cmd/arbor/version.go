package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/arbor-db/arbor/server"
)

func newVersionCmd(e env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Long: `Print what this binary was built from: the module version ("(devel)" for a
build from a checkout), the commit (with "-modified" when the work tree had
changes; "unknown" when the build was not stamped, as with -buildvcs=false)
and the Go version. /metrics exports the same as arbor_build_info.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b := server.BuildInfo()
			if asJSON {
				return json.NewEncoder(e.stdout).Encode(map[string]string{
					"version": b.Version, "commit": b.Commit, "go_version": b.GoVersion,
				})
			}
			_, err := fmt.Fprintf(e.stdout, "version: %s\ncommit: %s\ngo: %s\n", b.Version, b.Commit, b.GoVersion)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}
