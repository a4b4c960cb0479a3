package publisher

import "runtime"

func spinYield() { runtime.Gosched() }
