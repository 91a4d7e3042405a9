/* aarch64.S - internal: context switch for the AArch64 procedure call
 * standard (AAPCS64).
 *
 * A suspended context is its stack pointer; the callee-saved registers sit
 * in a 160-byte frame at sp: x19..x28, x29 (fp), x30 (lr), d8..d15.
 *
 * FPCR is not switched: AAPCS64 gives its mode bits thread-wide scope
 * (changed only by designated functions such as fesetround), so contexts
 * share it the way functions of one thread do; writing it is also slow on
 * several cores. x86-64 differs: its ABI makes the MXCSR control bits
 * callee-saved, so x86_64.S saves them.
 *
 * With BTI, "bti c" (hint 34, a no-op on older cores) marks the entry
 * points and the property note below claims BTI; the trampoline is reached
 * by ret, which BTI does not check. A switch that loads sp is incompatible
 * with a guarded control stack, so GCS is never claimed.
 */
#if defined(__aarch64__) && defined(__LP64__) && defined(__ELF__)

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
#define BTI_C hint #34
#else
#define BTI_C
#endif

	.text

/* void rill__ctx_asm_switch(rill__ctx *from, rill__ctx *to)
 * x0 = from, x1 = to; the saved sp is the first field of rill__ctx. */
	.globl	rill__ctx_asm_switch
	.hidden	rill__ctx_asm_switch
	.type	rill__ctx_asm_switch, %function
	.p2align 4
rill__ctx_asm_switch:
	.cfi_startproc
	BTI_C
	sub	sp, sp, #160
	.cfi_def_cfa_offset 160
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	.cfi_offset x19, -160
	.cfi_offset x20, -152
	.cfi_offset x21, -144
	.cfi_offset x22, -136
	.cfi_offset x23, -128
	.cfi_offset x24, -120
	.cfi_offset x25, -112
	.cfi_offset x26, -104
	.cfi_offset x27, -96
	.cfi_offset x28, -88
	.cfi_offset x29, -80
	.cfi_offset x30, -72
	.cfi_offset d8, -64
	.cfi_offset d9, -56
	.cfi_offset d10, -48
	.cfi_offset d11, -40
	.cfi_offset d12, -32
	.cfi_offset d13, -24
	.cfi_offset d14, -16
	.cfi_offset d15, -8
	mov	x9, sp
	str	x9, [x0]
	/* The target's frame has the same layout, so the CFI stays right. */
	ldr	x9, [x1]
	mov	sp, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	.cfi_def_cfa_offset 0
	.cfi_restore x19
	.cfi_restore x20
	.cfi_restore x21
	.cfi_restore x22
	.cfi_restore x23
	.cfi_restore x24
	.cfi_restore x25
	.cfi_restore x26
	.cfi_restore x27
	.cfi_restore x28
	.cfi_restore x29
	.cfi_restore x30
	.cfi_restore d8
	.cfi_restore d9
	.cfi_restore d10
	.cfi_restore d11
	.cfi_restore d12
	.cfi_restore d13
	.cfi_restore d14
	.cfi_restore d15
	ret
	.cfi_endproc
	.size	rill__ctx_asm_switch, .-rill__ctx_asm_switch

/* First code run on a fresh stack, reached by the "ret" of the first switch
 * into it: x19 = entry, x20 = arg. The undefined return address ends
 * backtraces here. */
	.type	rill__ctx_trampoline, %function
	.p2align 4
rill__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	mov	x0, x20
	blr	x19
	brk	#0	/* entry never returns */
	.cfi_endproc
	.size	rill__ctx_trampoline, .-rill__ctx_trampoline

/* void *rill__ctx_asm_init(void *top, void (*entry)(void *), void *arg)
 * Builds the frame rill__ctx_asm_switch expects below top; returns its sp. */
	.globl	rill__ctx_asm_init
	.hidden	rill__ctx_asm_init
	.type	rill__ctx_asm_init, %function
	.p2align 4
rill__ctx_asm_init:
	.cfi_startproc
	BTI_C
	and	x0, x0, #~15
	sub	x0, x0, #16		/* sp once the trampoline runs */
	stp	xzr, xzr, [x0]		/* a null frame record for unwinders */
	sub	x0, x0, #160
	stp	x1, x2, [x0, #0]	/* x19 = entry, x20 = arg */
	stp	xzr, xzr, [x0, #16]
	stp	xzr, xzr, [x0, #32]
	stp	xzr, xzr, [x0, #48]
	stp	xzr, xzr, [x0, #64]
	adr	x9, rill__ctx_trampoline
	stp	xzr, x9, [x0, #80]	/* x29 = 0 ends fp chains; x30 = trampoline */
	stp	xzr, xzr, [x0, #96]
	stp	xzr, xzr, [x0, #112]
	stp	xzr, xzr, [x0, #128]
	stp	xzr, xzr, [x0, #144]
	ret
	.cfi_endproc
	.size	rill__ctx_asm_init, .-rill__ctx_asm_init

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
	.pushsection .note.gnu.property, "a"
	.p2align 3
	.long	4			/* name size */
	.long	16			/* descriptor size */
	.long	5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000000		/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.long	4
	.long	1			/* BTI */
	.p2align 3
	.popsection
#endif

#endif

	.section .note.GNU-stack,"",@progbits
