// Package fence guards a resource with the fencing tokens of Arbor's locks:
// a write carries the token of the lock its writer held, and the resource
// refuses any token lower than the highest it has seen, so a holder that
// lost its lock without knowing it cannot overwrite its successor's work.
package fence
