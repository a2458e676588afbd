/* Compute benchmark: a small stack-machine bytecode interpreter running a program that
 * sums the Collatz sequence lengths of 1..LIMIT. */
#include <stdint.h>
#include <stdio.h>

#define LIMIT 4000

enum op { PUSH, LOAD, STORE, ADD, SUB, MUL, DIV, MOD, LT, EQ, JMP, JZ, JNZ, HALT };

struct insn {
    uint8_t op;
    int32_t arg;
};

/* Variables: 0 = n, 1 = x, 2 = steps, 3 = total. */
static const struct insn program[] = {
    [0] = {PUSH, 1},   {STORE, 0},         /* n = 1 */
    [2] = {PUSH, 0},   {STORE, 3},         /* total = 0 */
    [4] = {LOAD, 0},   {PUSH, LIMIT + 1},  {LT, 0},  {JZ, 44}, /* while n <= LIMIT: */
    [8] = {LOAD, 0},   {STORE, 1},         /*   x = n */
    [10] = {PUSH, 0},  {STORE, 2},         /*   steps = 0 */
    [12] = {LOAD, 1},  {PUSH, 1},          {EQ, 0},  {JNZ, 35}, /* while x != 1: */
    [16] = {LOAD, 1},  {PUSH, 2},          {MOD, 0}, {JZ, 26},  /*   if x odd: */
    [20] = {LOAD, 1},  {PUSH, 3},          {MUL, 0}, {PUSH, 1}, {ADD, 0}, {JMP, 29}, /* 3x+1 */
    [26] = {LOAD, 1},  {PUSH, 2},          {DIV, 0}, /*   else x / 2 */
    [29] = {STORE, 1}, {LOAD, 2},          {PUSH, 1}, {ADD, 0}, {STORE, 2}, {JMP, 12},
    [35] = {LOAD, 3},  {LOAD, 2},          {ADD, 0}, {STORE, 3}, /* total += steps */
    [39] = {LOAD, 0},  {PUSH, 1},          {ADD, 0}, {STORE, 0}, {JMP, 4}, /* n++ */
    [44] = {LOAD, 3},  {HALT, 0},
};

static int64_t run(const struct insn *code)
{
    int64_t stack[16], vars[4] = {0};
    int sp = 0;
    for (int pc = 0;;) {
        struct insn in = code[pc++];
        switch (in.op) {
        case PUSH: stack[sp++] = in.arg; break;
        case LOAD: stack[sp++] = vars[in.arg]; break;
        case STORE: vars[in.arg] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case DIV: sp--; stack[sp - 1] /= stack[sp]; break;
        case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case JMP: pc = in.arg; break;
        case JZ: if (stack[--sp] == 0) pc = in.arg; break;
        case JNZ: if (stack[--sp] != 0) pc = in.arg; break;
        case HALT: return sp ? stack[sp - 1] : 0;
        }
    }
}

int main(void)
{
    printf("vm: collatz steps of 1..%d total %lld\n", LIMIT, (long long)run(program));
    return 0;
}
