/* A stack where the caller's RBP is lost for one frame and found again:
 * main -> deep_rbp -> saves_rbp -> lost_rbp, which prints nothing and spins.
 * - lost_rbp keeps its caller's RBP in RBX (`.cfi_register %rbp, %rbx`),
 *   a rule unwind tables cannot express: RBP is unknown past it;
 * - saves_rbp pushes its caller's RBP (`.cfi_offset %rbp, -16`): known again;
 * - deep_rbp keeps a frame pointer (CFA = RBP + 16): unwinding past it needs
 *   the RBP that saves_rbp saved.
 * An unwinder that does not take the saved RBP back stops at deep_rbp.
 * Prints "ready" before spinning. Built with -O2 -fomit-frame-pointer. */
#include <stdio.h>

void deep_rbp(void);

__asm__(
    ".text\n"
    ".globl deep_rbp\n"
    ".type deep_rbp, @function\n"
    "deep_rbp:\n"
    ".cfi_startproc\n"
    "    push %rbp\n"
    ".cfi_def_cfa_offset 16\n"
    ".cfi_offset %rbp, -16\n"
    "    mov %rsp, %rbp\n"
    ".cfi_def_cfa_register %rbp\n"
    "    sub $64, %rsp\n"
    "    call saves_rbp\n"
    "    leave\n"
    ".cfi_def_cfa %rsp, 8\n"
    "    ret\n"
    ".cfi_endproc\n"
    ".size deep_rbp, .-deep_rbp\n"

    ".type saves_rbp, @function\n"
    "saves_rbp:\n"
    ".cfi_startproc\n"
    "    push %rbp\n"
    ".cfi_def_cfa_offset 16\n"
    ".cfi_offset %rbp, -16\n"
    "    mov $0x1234, %ebp\n"
    "    call lost_rbp\n"
    "    pop %rbp\n"
    ".cfi_restore %rbp\n"
    ".cfi_def_cfa_offset 8\n"
    "    ret\n"
    ".cfi_endproc\n"
    ".size saves_rbp, .-saves_rbp\n"

    ".type lost_rbp, @function\n"
    "lost_rbp:\n"
    ".cfi_startproc\n"
    "    push %rbx\n"
    ".cfi_def_cfa_offset 16\n"
    ".cfi_offset %rbx, -16\n"
    "    mov %rbp, %rbx\n"
    ".cfi_register %rbp, %rbx\n"
    "    xor %ebp, %ebp\n"
    "1:  jmp 1b\n"
    ".cfi_endproc\n"
    ".size lost_rbp, .-lost_rbp\n");

int main(void) {
    printf("ready\n");
    fflush(stdout);
    deep_rbp();
    return 0;
}
