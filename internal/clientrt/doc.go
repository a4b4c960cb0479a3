// Package clientrt is the per-process client runtime shared by the
// publisher and subscriber packages: one control connection to the router
// (one per router socket: see Acquire), the publishers' own data segments
// mapped read-write, other publishers' data segments mapped read-only (once
// per process, for its subscribers), and the connection segments of its
// endpoints; it sends the publishers' memory reports. It routes the router's pushes
// (connections added and removed) to the local endpoint they name, holding
// pushes that arrive before the endpoint has registered.
package clientrt
