// Package recipe holds the coordination recipes built on an Arbor session:
// locks with fencing tokens, elections, semaphores, barriers, queues, a
// service registry, a tree cache and typed config. Each recipe that grants
// something says when it is lost (Lost), so that its holder stops acting
// before anyone else can be granted the same thing.
package recipe
