#include "textflag.h"

// func PrefetchW(b []byte)
TEXT ·PrefetchW(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ	b_base+0(FP), AX
	// PREFETCHW (AX): 0F 0D /1, ModRM 0x08 (the Go assembler has no
	// mnemonic for it). A hint: it never faults, whatever the address.
	BYTE	$0x0F; BYTE $0x0D; BYTE $0x08
	RET
