// Package etcd is a client/bench Store for etcd, over
// go.etcd.io/etcd/client/v3: one Store is one client (one gRPC
// connection) and, once it creates an ephemeral, one lease kept alive by a
// concurrency.Session, etcd's equivalent of a session.
//
// Paths are used as keys. Create is a transaction that puts only when the
// key has no create revision; Set is a plain put (etcd has no
// set-only-if-present); a local get is a serializable read, a linearizable
// get the default read; Multi is one transaction.
package etcd
