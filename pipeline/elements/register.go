package elements

import (
	"github.com/parallax-ipc/parallax/pipeline"
)

func init() { Register(pipeline.Default) }

// Register adds the built-in elements to r. It panics if one is already
// registered there.
func Register(r *pipeline.Registry) {
	for _, f := range factories() {
		f.Origin = "builtin"
		r.MustRegister(f)
	}
}

func factories() []pipeline.Factory {
	return []pipeline.Factory{
		testSrcFactory, fileSrcFactory, fileSinkFactory, fakeSinkFactory, identityFactory,
		checksumFactory, teeFactory, queueFactory, funnelFactory, rateLimitFactory,
		ipcSinkFactory, ipcSrcFactory, ipcCallFactory,
	}
}
