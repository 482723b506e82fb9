// Package rafttest runs in-process raftnode clusters for tests: N members on
// t.TempDir() data dirs, joined by an in-memory network whose fault
// injector drops, delays (and so reorders), duplicates and partitions
// messages, driven by a seed. Members can be crashed (Run cancelled with no
// shutdown step; bbolt state is what was fsync'd) and restarted from their
// data dirs. KV is a small state machine that records what it applied, so
// tests can check that every member applied the same sequence; a suite can
// plug in another state machine through Options.NewStateMachine.
package rafttest
