//go:build linux

#include "textflag.h"

// The SIGBUS handler. The kernel calls it with the C ABI on the thread's
// signal stack: DI = signal number, SI = siginfo, DX = ucontext; it returns
// through the restorer the runtime installed (rt_sigreturn), which retries
// the faulting instruction. A fault (si_code BUS_ADRERR) at an address in
// one of busRanges gets its page replaced by private memory filled with
// ones and the range marked hit; anything else jumps to the runtime's
// handler with the arguments unchanged. busRange is 24 bytes: lo, hi, hit.
TEXT ·busTrampoline(SB), NOSPLIT|NOFRAME, $0
	CMPL	8(SI), $2	// si_code == BUS_ADRERR
	JNE	chain
	MOVQ	16(SI), AX	// si_addr
	LEAQ	·busRanges(SB), BX
	MOVQ	$128, CX	// busSlots
loop:
	MOVQ	0(BX), R9
	TESTQ	R9, R9
	JEQ	next
	CMPQ	AX, R9
	JCS	next	// below lo
	CMPQ	AX, 8(BX)
	JCS	patch	// below hi
next:
	ADDQ	$24, BX
	DECQ	CX
	JNE	loop
chain:
	MOVQ	·busOld(SB), AX
	JMP	AX

patch:
	MOVQ	DI, R12	// kept for chain, should mmap fail
	MOVQ	SI, R13
	MOVQ	DX, R14
	ANDQ	$-4096, AX
	MOVQ	AX, DI	// the page
	MOVQ	$4096, SI
	MOVQ	$3, DX	// PROT_READ|PROT_WRITE
	MOVQ	$0x32, R10	// MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED
	MOVQ	$-1, R8
	XORQ	R9, R9
	MOVQ	$9, AX	// SYS_mmap
	SYSCALL
	CMPQ	AX, $-4095
	JCC	failed	// -4095..-1: an errno
	MOVQ	$-1, AX	// DI is still the page
	MOVQ	$512, CX
	CLD
	REP; STOSQ
	MOVL	$1, 16(BX)
	RET
failed:
	MOVQ	R12, DI
	MOVQ	R13, SI
	MOVQ	R14, DX
	JMP	chain

// func busTrampolineAddr() uintptr
TEXT ·busTrampolineAddr(SB), NOSPLIT, $0-8
	MOVQ	$·busTrampoline(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
