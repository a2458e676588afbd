/* Real-program benchmark: a bytecode interpreter whose dispatch is a jump table (GCC's
 * computed goto, one indirect jump at the end of every handler, as CPython and Lua do),
 * running a fixed program with calls, locals and memory: each round adds a recursive
 * fib(FIB_N), counts the primes below SIEVE_N + round with a sieve in the VM's memory,
 * and folds that memory into the total with FNV-1a. It prints the total as a checksum.
 * Unlike bench-vm (one switch, one loop) the host code is many short blocks joined by
 * indirect jumps, calls and returns: what real interpreters look like to an emulator. */
#include <stdint.h>
#include <stdio.h>

#define ROUNDS 5
#define FIB_N 22
#define SIEVE_N 30000
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define MEM_WORDS 65536 /* the VM's memory; addresses wrap */

typedef uint64_t word;

enum op {
    HALT, PUSH, LOAD, STORE, INC, GET, PUT, ADD, SUB, MUL, XOR, LT,
    JMP, JZ, CALL, RET, ENTER, NOPS
};

/* ---- a tiny assembler: opcodes and operands inline, labels fixed up at the end */
#define MAX_CODE 512
#define MAX_LABELS 32
static int64_t code[MAX_CODE];
static int ncode;
static int label_at[MAX_LABELS];
static struct {
    int at, label;
} fixups[MAX_LABELS * 4];
static int nfixups;

static void emit(enum op op) { code[ncode++] = op; }
static void emit1(enum op op, int64_t arg) { emit(op); code[ncode++] = arg; }
static void emit2(enum op op, int64_t a, int64_t b) { emit1(op, a); code[ncode++] = b; }
static void here(int label) { label_at[label] = ncode; }
static void to(enum op op, int label)
{
    emit(op);
    fixups[nfixups].at = ncode, fixups[nfixups++].label = label;
    code[ncode++] = -1;
}
static void call(int label, int nargs) { to(CALL, label); code[ncode++] = nargs; }

enum { MAIN, MAIN_LOOP, MAIN_END, FIB, FIB_REC, SIEVE, SIEVE_FILL, SIEVE_SCAN, SIEVE_CROSS,
       SIEVE_NEXT, SIEVE_DONE, SIEVE_START, MIX, MIX_LOOP, MIX_DONE };

static void assemble(void)
{
    /* main: locals 0 = round, 1 = total */
    here(MAIN);
    emit1(ENTER, 2);
    emit1(PUSH, 0), emit1(STORE, 0), emit1(PUSH, (int64_t)FNV_OFFSET), emit1(STORE, 1);
    here(MAIN_LOOP);
    emit1(LOAD, 0), emit1(PUSH, ROUNDS), emit(LT), to(JZ, MAIN_END);
    emit1(LOAD, 1), emit1(PUSH, FIB_N), call(FIB, 1), emit(ADD), emit1(STORE, 1);
    emit1(LOAD, 1), emit1(PUSH, SIEVE_N), emit1(LOAD, 0), emit(ADD), call(SIEVE, 1), emit(ADD);
    emit1(STORE, 1);
    emit1(LOAD, 1), emit1(PUSH, SIEVE_N), call(MIX, 2), emit1(STORE, 1);
    emit2(INC, 0, 1), to(JMP, MAIN_LOOP);
    here(MAIN_END);
    emit1(LOAD, 1), emit(HALT);

    /* fib(n): n < 2 ? n : fib(n - 1) + fib(n - 2) */
    here(FIB);
    emit1(LOAD, 0), emit1(PUSH, 2), emit(LT), to(JZ, FIB_REC), emit1(LOAD, 0), emit(RET);
    here(FIB_REC);
    emit1(LOAD, 0), emit1(PUSH, 1), emit(SUB), call(FIB, 1);
    emit1(LOAD, 0), emit1(PUSH, 2), emit(SUB), call(FIB, 1), emit(ADD), emit(RET);

    /* sieve(n): locals 1 = i, 2 = j, 3 = count; mem[i] = 1 for 2 <= i < n, then cross off */
    here(SIEVE);
    emit1(ENTER, 3), emit1(PUSH, 2), emit1(STORE, 1);
    here(SIEVE_FILL);
    emit1(LOAD, 1), emit1(LOAD, 0), emit(LT), to(JZ, SIEVE_START);
    emit1(LOAD, 1), emit1(PUSH, 1), emit(PUT), emit2(INC, 1, 1), to(JMP, SIEVE_FILL);
    here(SIEVE_START);
    emit1(PUSH, 2), emit1(STORE, 1);
    here(SIEVE_SCAN);
    emit1(LOAD, 1), emit1(LOAD, 0), emit(LT), to(JZ, SIEVE_DONE);
    emit1(LOAD, 1), emit(GET), to(JZ, SIEVE_NEXT);
    emit2(INC, 3, 1), emit1(LOAD, 1), emit1(LOAD, 1), emit(MUL), emit1(STORE, 2);
    here(SIEVE_CROSS);
    emit1(LOAD, 2), emit1(LOAD, 0), emit(LT), to(JZ, SIEVE_NEXT);
    emit1(LOAD, 2), emit1(PUSH, 0), emit(PUT);
    emit1(LOAD, 2), emit1(LOAD, 1), emit(ADD), emit1(STORE, 2), to(JMP, SIEVE_CROSS);
    here(SIEVE_NEXT);
    emit2(INC, 1, 1), to(JMP, SIEVE_SCAN);
    here(SIEVE_DONE);
    emit1(LOAD, 3), emit(RET);

    /* mix(h, n): local 2 = k; h = (h ^ mem[k]) * FNV_PRIME for 0 <= k < n */
    here(MIX);
    emit1(ENTER, 1), emit1(PUSH, 0), emit1(STORE, 2);
    here(MIX_LOOP);
    emit1(LOAD, 2), emit1(LOAD, 1), emit(LT), to(JZ, MIX_DONE);
    emit1(LOAD, 0), emit1(LOAD, 2), emit(GET), emit(XOR), emit1(PUSH, (int64_t)FNV_PRIME);
    emit(MUL), emit1(STORE, 0), emit2(INC, 2, 1), to(JMP, MIX_LOOP);
    here(MIX_DONE);
    emit1(LOAD, 0), emit(RET);

    for (int i = 0; i < nfixups; i++)
        code[fixups[i].at] = label_at[fixups[i].label];
}

/* ---- the interpreter */
static word mem[MEM_WORDS];

static word run(const int64_t *pc)
{
    static const void *const dispatch[NOPS] = {
        [HALT] = &&op_halt, [PUSH] = &&op_push, [LOAD] = &&op_load, [STORE] = &&op_store,
        [INC] = &&op_inc, [GET] = &&op_get, [PUT] = &&op_put, [ADD] = &&op_add,
        [SUB] = &&op_sub, [MUL] = &&op_mul, [XOR] = &&op_xor, [LT] = &&op_lt,
        [JMP] = &&op_jmp, [JZ] = &&op_jz, [CALL] = &&op_call, [RET] = &&op_ret,
        [ENTER] = &&op_enter,
    };
    static word stack[4096];
    static struct {
        const int64_t *pc;
        word *fp;
    } frames[256];
    word *sp = stack, *fp = stack;
    int depth = 0;
#define NEXT goto *dispatch[*pc++]
    NEXT;
op_push:
    *sp++ = (word)*pc++;
    NEXT;
op_load:
    *sp++ = fp[*pc++];
    NEXT;
op_store:
    fp[*pc++] = *--sp;
    NEXT;
op_inc:
    fp[pc[0]] += (word)pc[1];
    pc += 2;
    NEXT;
op_get:
    sp[-1] = mem[sp[-1] % MEM_WORDS];
    NEXT;
op_put:
    sp -= 2;
    mem[sp[0] % MEM_WORDS] = sp[1];
    NEXT;
op_add:
    sp--, sp[-1] += sp[0];
    NEXT;
op_sub:
    sp--, sp[-1] -= sp[0];
    NEXT;
op_mul:
    sp--, sp[-1] *= sp[0];
    NEXT;
op_xor:
    sp--, sp[-1] ^= sp[0];
    NEXT;
op_lt:
    sp--, sp[-1] = (int64_t)sp[-1] < (int64_t)sp[0];
    NEXT;
op_jmp:
    pc = code + *pc;
    NEXT;
op_jz:
    pc = *--sp ? pc + 1 : code + *pc;
    NEXT;
op_call:
    frames[depth].pc = pc + 2, frames[depth++].fp = fp;
    fp = sp - pc[1];
    pc = code + pc[0];
    NEXT;
op_ret:
    fp[0] = sp[-1];
    sp = fp + 1;
    depth--, pc = frames[depth].pc, fp = frames[depth].fp;
    NEXT;
op_enter:
    for (int64_t n = *pc++; n > 0; n--)
        *sp++ = 0;
    NEXT;
op_halt:
    return sp[-1];
#undef NEXT
}

int main(void)
{
    assemble();
    word total = run(code + label_at[MAIN]);
    printf("bytecode: %d rounds of fib(%d), primes below %d+r, FNV-1a; checksum 0x%016llx\n",
           ROUNDS, FIB_N, SIEVE_N, (unsigned long long)total);
    return 0;
}
