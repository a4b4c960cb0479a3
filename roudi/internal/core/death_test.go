package core

import (
	"errors"
	"fmt"
)

// checkState verifies that a connection record's state agrees with who
// may still map it (death.go).
func (cs *connSeg) checkState() error {
	switch {
	case !cs.unlinked && (cs.state != ConnCreating && cs.state != ConnLive):
		return fmt.Errorf("in the registry but %v", cs.state)
	case !cs.unlinked && (cs.pubWait || cs.subWait || cs.awaitPID != 0):
		return errors.New("in the registry but waiting for a release")
	case cs.unlinked && (cs.state == ConnCreating || cs.state == ConnLive):
		return fmt.Errorf("removed but %v", cs.state)
	case cs.awaitPID != 0 && (cs.state != ConnClosing || cs.subWait):
		return fmt.Errorf("awaits the death of pid %d but is %v (subscriber waited for: %v)", cs.awaitPID, cs.state, cs.subWait)
	case cs.state == ConnClosing && !cs.subWait && cs.awaitPID == 0:
		return errors.New("closing with nothing pending from the subscriber")
	case cs.state == ConnOrphaned && cs.pubWait:
		return errors.New("orphaned but waiting for the publisher")
	}
	return nil
}
