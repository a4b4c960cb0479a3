// Package event is the event service of issue 13 (docs/design/events.md):
// a [Notifier] signals event ids (uint64) to the [Listener]s of a service
// without payload; a listener wakes once for several signals and gets the
// set of ids that fired since its previous wake, coalesced, nothing lost.
//
// Events run on the router's owned connections (endpoint kind "event"):
// the notifier pushes the id itself into each listener connection's data
// ring (block-producer, one entry per id not already queued there) and
// wakes the listener only if it sleeps (the rings' sleeping flag: no
// system call otherwise). Crash safety and access rules are the topics':
// a dead notifier or listener is reclaimed by the router's connection
// life cycle; `[[access]]` rules keyed by the service name decide who may
// notify (publish side) and listen (subscribe side). Events need the owned
// memory model.
package event
