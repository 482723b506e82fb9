//go:build !arbor_noserver

package main

const buildTags = ""
