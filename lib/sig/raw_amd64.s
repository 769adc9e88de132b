//go:build linux && amd64

#include "textflag.h"

// sigtramp is called by the kernel with the C ABI: DI holds the signal
// number. It writes that number as one byte to rawPipeW (write(2), a
// dropped byte if the pipe is full) and returns to the restorer. It runs
// on the thread's alternate signal stack (SA_ONSTACK; every Go thread has
// one) and touches nothing of the Go runtime.
TEXT ·sigtramp(SB),NOSPLIT|NOFRAME,$0
	SUBQ	$16, SP
	MOVB	DI, 0(SP)
	MOVL	·rawPipeW(SB), DI
	MOVQ	SP, SI
	MOVQ	$1, DX
	MOVQ	$1, AX // SYS_write
	SYSCALL
	ADDQ	$16, SP
	RET

// sigreturn is the handler's restorer: rt_sigreturn(2).
TEXT ·sigreturn(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$15, AX // SYS_rt_sigreturn
	SYSCALL
	INT	$3

// addrs returns the ABI0 addresses of sigtramp and sigreturn: a Go func
// value would name the ABIInternal wrapper, which the kernel cannot call.
TEXT ·addrs(SB),NOSPLIT,$0-16
	LEAQ	·sigtramp(SB), AX
	MOVQ	AX, tramp+0(FP)
	LEAQ	·sigreturn(SB), AX
	MOVQ	AX, ret+8(FP)
	RET
