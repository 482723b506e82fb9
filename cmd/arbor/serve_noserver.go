//go:build arbor_noserver

package main

import "context"

// serve is a stand-in while package server does not build yet.
func serve(context.Context, *globals, env, *memberFlags, bool) error {
	return &exitError{code: exitFail, msg: "INTERNAL: this build has no server"}
}
