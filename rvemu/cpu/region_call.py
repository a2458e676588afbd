"""Calling a compiled region (rvemu.tier2) from the Numba-compiled interpreter."""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import region_abi as abi
from .state import (
    PROF_REGION_CALLS,
    PROF_REGION_CYCLES,
    PROF_REGION_INSNS,
    PROFILE,
    REGION_RETIRED,
)

i64 = ir.IntType(64)
# A region's LLVM signature (region_abi.py): x, ram, ctx, budget, done
SIGNATURE = ir.FunctionType(
    i64, [i64.as_pointer(), ir.IntType(8).as_pointer(), i64.as_pointer(), i64, i64]
)


@intrinsic
def call_region(typingctx, address, x, f, csr, ram8, pagef, tlb, st, dc, entries, entry_pc, budget):  # noqa: ANN001, ANN201
    """region(x, ram, ctx, budget, 0) for the function at `address` (region_abi.py), with the
    context block built on the caller's stack: returns the pc to go on from, and sets
    st[REGION_RETIRED] and st[REGION_JUMPED]. Counts the call and what it retired in
    st[PROF_REGION_*], and with st[PROFILE] set the host cycles it took (rvemu/profile.py)."""
    arrays = (x, f, csr, ram8, pagef, tlb, st, dc, entries, entry_pc)
    sig = types.int64(types.int64, *arrays, types.int64)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        address, *values, budget = args
        x, f, csr, ram8, pagef, tlb, st, dc, entries, entry_pc = (
            context.make_array(ty)(context, builder, value).data
            for ty, value in zip(signature.args[1:11], values, strict=True)
        )
        block = {
            abi.CTX_F: f,
            abi.CTX_CSR: csr,
            abi.CTX_PAGE_FLAGS: pagef,
            abi.CTX_TLB: tlb,
            abi.CTX_ST: st,
            abi.CTX_DC: dc,
            abi.CTX_ENTRIES: entries,
            abi.CTX_ENTRY_PC: entry_pc,
        }
        ctx = cgutils.alloca_once(builder, i64, size=abi.CTX_SIZE)  # (in the entry block)
        for k, pointer in block.items():
            builder.store(builder.ptrtoint(pointer, i64), builder.gep(ctx, [i64(k)]))
        x = builder.bitcast(x, i64.as_pointer())
        ram = builder.bitcast(ram8, ir.IntType(8).as_pointer())

        def slot(n: int) -> ir.Value:
            return builder.gep(st, [i64(n)])

        def add(n: int, value: ir.Value) -> None:
            builder.store(builder.add(builder.load(slot(n)), value), slot(n))

        timed = builder.icmp_signed("!=", builder.load(slot(PROFILE)), i64(0))
        before = builder.basic_block
        with builder.if_then(timed, likely=False):
            start_timed = read_cycles(builder)
            started = builder.basic_block
        start = builder.phi(i64)
        start.add_incoming(i64(0), before)
        start.add_incoming(start_timed, started)

        function = builder.inttoptr(address, SIGNATURE.as_pointer())
        pc = builder.call(function, [x, ram, ctx, budget, i64(0)])

        with builder.if_then(timed, likely=False):
            add(PROF_REGION_CYCLES, builder.sub(read_cycles(builder), start))
        add(PROF_REGION_CALLS, i64(1))
        add(PROF_REGION_INSNS, builder.load(slot(REGION_RETIRED)))
        return pc

    return sig, codegen


def read_cycles(builder: ir.IRBuilder) -> ir.Value:
    """The host's cycle counter, read where `builder` is."""
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(i64, []), "llvm.readcyclecounter"
    )
    return builder.call(fn, [])


@intrinsic
def _cycle_counter(typingctx):  # noqa: ANN001, ANN201
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return read_cycles(builder)

    return types.int64(), codegen


@njit(cache=True)
def cycle_counter() -> int:
    """The host's cycle counter, as compiled regions read it under st[PROFILE] (the
    profile compares it with the wall clock to turn cycles into seconds)."""
    return _cycle_counter()
