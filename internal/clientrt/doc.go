// Package clientrt is the per-process client runtime shared by the
// publisher and subscriber packages: one control connection to the router
// (one per router socket: see Acquire), the management segment mapped read-write, the
// pools attached over it, and the payload segments mapped read-write (for
// publishers) or read-only (for subscribers). It routes the router's pushes
// (connections added and removed) to the local endpoint they name, holding
// pushes that arrive before the endpoint has registered.
package clientrt
