package core

// testIdentity is the identity of client id run by pid (uid 0) with the
// token whose bytes are all id.
func testIdentity(id ClientID, pid int32) (ClientIdentity, ResumeToken) {
	var tok ResumeToken
	for i := range tok {
		tok[i] = byte(id)
	}
	return identityOf(&client{id: id, pid: pid}, tok), tok
}
