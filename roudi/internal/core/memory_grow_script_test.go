package core

// Growth and retirement asked for by publishers in the scripts
// (testdata/memory_grow*.txt):
//
//	growdata cN pub=P chunk=B [count=N] [oversized=1]   (wire.GrowData)
//	retiredata cN pub=P index=I                         (wire.RetireData)
//	getdataseg cN conn=C index=I                        (wire.GetDataSegment)

// growDataCommand builds the request of a growth command; ok is false for
// another command.
func growDataCommand(cmd string, conn func() ConnID, reqID func() uint32, num func(string, int) int) (Event, bool) {
	var req Request
	switch cmd {
	case "growdata":
		req = GrowData{Pub: PubID(num("pub", 0)), ChunkSize: uint32(num("chunk", 0)), Count: uint32(num("count", 0)), Oversized: num("oversized", 0) == 1}
	case "retiredata":
		req = RetireData{Pub: PubID(num("pub", 0)), Index: uint16(num("index", 0))}
	case "getdataseg":
		req = GetDataSegment{Connection: ConnectionID(num("conn", 0)), Index: uint16(num("index", 0))}
	default:
		return nil, false
	}
	return ClientRequest{Conn: conn(), ReqID: reqID(), Req: req}, true
}
