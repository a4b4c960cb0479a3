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
