// Package services discovers what a Parallax router offers: the services
// (today publish/subscribe topics) with their payload type, their
// publishers and subscribers and whether the caller may use them, and the
// changes to that set as they happen.
//
// [List] returns the services now. [Watch] starts a [Watcher] whose
// [Watcher.Events] channel delivers the services that exist (as
// [Appeared] events), then every change ([Appeared], [Changed],
// [Disappeared]) as the router pushes it: nothing is polled. [WaitFor],
// [WaitForPublisher] and [WaitForSubscriber] block until a service
// satisfies a condition, or their context ends.
//
// A watcher uses the process's one control connection to the router, the
// one its publishers and subscribers share (the router then pushes service
// changes on it until the process disconnects, also after the watcher
// closed). When the router goes away it follows that connection to a
// restarted router (or a new one when the old could not resume), takes a
// full snapshot and reports the difference, so no change is missed across the gap (changes that undo
// each other in between are not seen). Events are coalesced per service:
// a consumer that falls behind gets each service's latest state, not
// every intermediate one, and memory stays bounded by the number of
// services.
//
// Request/response and event services will be further kinds ([Kind]);
// code that switches on Kind should ignore kinds it does not know.
package services
