package subscriber

import "fmt"

// DebugOwned describes a subscriber's owned-model state, for test failure
// messages.
func DebugOwned(s *Subscriber) string {
	o := s.own.Load()
	if o == nil {
		return "shared"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	out := fmt.Sprintf("%+v\n", o.eng.Stats())
	for id, oc := range o.conns {
		out += fmt.Sprintf("conn %d added=%v seg=%v c=%v segs=%v", id, oc.added != nil, oc.seg != nil, oc.c != nil, oc.segs)
		if oc.c != nil {
			out += fmt.Sprintf(" %+v", oc.c.Stats())
		}
		if oc.seg != nil {
			out += fmt.Sprintf(" ring len %d pubsegs %d", oc.seg.Conn().DataRing().Len(), len(oc.seg.Publisher().Segments()))
		}
		out += "\n"
	}
	return out
}
