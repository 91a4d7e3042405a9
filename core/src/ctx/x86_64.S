/* x86_64.S - internal: context switch for the x86-64 System V ABI.
 *
 * A suspended context is its stack pointer; everything else sits on its
 * stack, in this order from sp upward:
 *   mxcsr (4 bytes), x87 control word (2), pad (2), r15, r14, r13, r12,
 *   rbx, rbp, return address.
 * The MXCSR and x87 control bits are callee-saved in this ABI, so a
 * coroutine that changes the rounding mode must not leak it to others.
 *
 * CET: switching stacks by loading rsp is incompatible with a shadow
 * stack, so the property note below claims IBT only (endbr64 at the entry
 * points; the trampoline is reached by ret, which IBT does not check) and
 * the linker drops SHSTK for the whole library. */
#if defined(__x86_64__) && defined(__LP64__) && defined(__ELF__)

#if defined(__CET__) && (__CET__ & 1)
#define ENDBR endbr64
#else
#define ENDBR
#endif

	.text

/* void rill__ctx_asm_switch(rill__ctx *from, rill__ctx *to)
 * rdi = from, rsi = to; the saved sp is the first field of rill__ctx. */
	.globl	rill__ctx_asm_switch
	.hidden	rill__ctx_asm_switch
	.type	rill__ctx_asm_switch, @function
	.p2align 4
rill__ctx_asm_switch:
	.cfi_startproc
	ENDBR
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsp, %rax		/* the frame just saved, still in cache */
	/* The target's frame has the same layout, so the CFI stays right. */
	movq	(%rsi), %rsp
	/* ldmxcsr and fldcw are slow (fldcw was three quarters of a switch
	 * here): load them only when the target's differ, which is rare. */
	movl	(%rsp), %ecx
	cmpl	(%rax), %ecx
	je	1f
	ldmxcsr	(%rsp)
1:	movzwl	4(%rsp), %ecx
	cmpw	4(%rax), %cx
	je	2f
	fldcw	4(%rsp)
2:	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbp
	ret
	.cfi_endproc
	.size	rill__ctx_asm_switch, .-rill__ctx_asm_switch

/* First code run on a fresh stack, reached by the "ret" of the first switch
 * into it: r12 = entry, r13 = arg, rsp 16-byte aligned. The undefined
 * return address ends backtraces here. */
	.type	rill__ctx_trampoline, @function
	.p2align 4
rill__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined %rip
	movq	%r13, %rdi
	callq	*%r12
	ud2	/* entry never returns */
	.cfi_endproc
	.size	rill__ctx_trampoline, .-rill__ctx_trampoline

/* void *rill__ctx_asm_init(void *top, void (*entry)(void *), void *arg)
 * Builds the frame rill__ctx_asm_switch expects below top; returns its sp.
 * The new context starts with the creator's MXCSR and x87 control word. */
	.globl	rill__ctx_asm_init
	.hidden	rill__ctx_asm_init
	.type	rill__ctx_asm_init, @function
	.p2align 4
rill__ctx_asm_init:
	.cfi_startproc
	ENDBR
	andq	$-16, %rdi
	leaq	-16(%rdi), %rax		/* rsp once the trampoline runs */
	movq	$0, (%rax)		/* a null frame above it for unwinders */
	movq	$0, 8(%rax)
	leaq	rill__ctx_trampoline(%rip), %rcx
	movq	%rcx, -8(%rax)		/* return address */
	movq	$0, -16(%rax)		/* rbp: ends frame-pointer chains */
	movq	$0, -24(%rax)		/* rbx */
	movq	%rsi, -32(%rax)		/* r12 = entry */
	movq	%rdx, -40(%rax)		/* r13 = arg */
	movq	$0, -48(%rax)		/* r14 */
	movq	$0, -56(%rax)		/* r15 */
	movq	$0, -64(%rax)
	stmxcsr	-64(%rax)
	fnstcw	-60(%rax)
	subq	$64, %rax
	ret
	.cfi_endproc
	.size	rill__ctx_asm_init, .-rill__ctx_asm_init

#if defined(__CET__) && (__CET__ & 1)
	.pushsection .note.gnu.property, "a"
	.p2align 3
	.long	4			/* name size */
	.long	16			/* descriptor size */
	.long	5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000002		/* GNU_PROPERTY_X86_FEATURE_1_AND */
	.long	4
	.long	1			/* IBT, not SHSTK */
	.p2align 3
	.popsection
#endif

#endif

	.section .note.GNU-stack,"",@progbits
