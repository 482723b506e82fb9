//go:build arbor_noserver

package main

// buildTags makes TestMain build the binary the way this test was built:
// without the server, while package server does not build.
const buildTags = "arbor_noserver"
