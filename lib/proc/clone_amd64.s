#include "textflag.h"

// func clone(flags uintptr) (pid uintptr, errno uintptr)
//
// clone(2) with CLONE_VM|CLONE_VFORK in flags: the child runs on the
// caller's stack until it execs, and its later calls overwrite this
// function's return address there. So the address is kept in R12 (a
// register the child gets a copy of) across the system call and pushed
// back after it, in the parent and in the child alike.
TEXT ·clone(SB),NOSPLIT|NOFRAME,$0-24
	MOVQ	flags+0(FP), DI
	MOVQ	$0, SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX // SYS_clone
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$0, pid+8(FP)
	NEGQ	AX
	MOVQ	AX, errno+16(FP)
	RET
ok:
	MOVQ	AX, pid+8(FP)
	MOVQ	$0, errno+16(FP)
	RET
