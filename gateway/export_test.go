package gateway

// AppendPart appends one part of a split message, for tests that play a
// hostile peer.
func AppendPart(dst []byte, m Meta, total uint64, part, count uint32, offset uint64, data []byte) ([]byte, error) {
	start := len(dst)
	dst = appendPrefix(dst, m.Gateway, m.Type, true)
	setOrigin(dst[start:], m.Seq, m.Timestamp, m.Publisher)
	setPart(dst[start:], total, part, count, offset)
	return append(dst, data...), nil
}

// AppendBatch appends a batch of the payloads, with sequence numbers from
// m.Seq on, for tests that play a peer.
func AppendBatch(dst []byte, m Meta, payloads ...[]byte) []byte {
	start := len(dst)
	dst = appendPrefix(dst, m.Gateway, m.Type, false)
	dst[start+3] = flagBatch
	setCount(dst[start:], len(payloads))
	for k, p := range payloads {
		dst = appendRecord(dst, m.Seq+uint64(k), m.Timestamp, m.Publisher, p)
	}
	return dst
}
