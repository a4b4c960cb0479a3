package core

import "log/slog"

// Reports in the owned memory model (design §1.5, §4.1). Each connection
// has its own segment, written only by its two ends; the data ring carries
// refs into the publisher's own segments and the return ring refs the
// publisher gave out. An end that finds garbage there (a ref naming
// nothing, a return of a chunk never delivered, impossible indices) has
// already stopped using the connection, and only its peer could have
// written it. The router does not read client memory to check the claim
// (it never reads memory a client can write): the report of an end is
// enough to cut that one connection, which is all either end could
// otherwise do by closing its endpoint. Both ends are told
// ConnectionRemoved{Corrupt}: the publisher reclaims every chunk delivered
// on it, the subscriber stops taking from it. Nobody is disconnected (the
// claim is unverified), and the pair stays unconnected while both live.

// ownedReport decides a report (either reason) in the owned model:
// the reporter must be an end of a live connection; the connection is
// cut. The reporter has had its Noted reply.
func (r *Router) ownedReport(reporter *client, conn ConnID, link ConnectionID, kind, detail string) {
	l := r.links[link]
	why := ""
	switch {
	case l == nil:
		why = "no such connection"
	case reporter == nil || (l.sub.client != reporter && l.pub.client != reporter):
		why = "reporter is not an end of the connection"
	}
	if why != "" {
		r.emit(Count{Counter: CountReportRefused})
		r.log(slog.LevelWarn, "peer report refused", slog.Uint64("conn", uint64(conn)), slog.Int("client", int(clientID(reporter))),
			slog.Int("connection", int(link)), slog.String("why", why))
		return
	}
	end := "subscriber"
	if l.pub.client == reporter {
		end = "publisher"
	}
	r.emit(Count{Counter: CountReportCut})
	r.log(slog.LevelWarn, "peer report: cutting its connection", slog.Int("connection", int(l.id)), slog.String("topic", l.pub.topic.name),
		slog.Int("publisher_client", int(l.pub.client.id)), slog.Int("subscriber_client", int(l.sub.client.id)),
		slog.String("reporter", end), slog.String("kind", kind), slog.String("detail", detail))
	r.cut(CutConnection{Connection: l.id, Reason: kind + " reported by the " + end})
}
