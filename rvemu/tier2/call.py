"""Calling a compiled region from the Numba-compiled interpreter."""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..cpu.state import (
    PROF_REGION_CALLS,
    PROF_REGION_CYCLES,
    PROF_REGION_INSNS,
    PROFILE,
    REGION_JUMPED,
    REGION_RETIRED,
)
from .emit import SIGNATURE

assert REGION_JUMPED == REGION_RETIRED + 1  # the region writes both through one pointer

I64 = ir.IntType(64)


@intrinsic
def call_region(typingctx, address, x, f, csr, ram8, page_flags, tlb, st, budget):  # noqa: ANN001, ANN201
    """region(x, f, csr, ram, page_flags, tlb, budget, &st[REGION_RETIRED]) for the
    function at `address`: returns the pc to go on from, and sets st[REGION_RETIRED] and
    st[REGION_JUMPED]. Counts the call and what it retired in st[PROF_REGION_*], and with
    st[PROFILE] set the host cycles it took (rvemu/profile.py)."""
    sig = types.int64(types.int64, x, f, csr, ram8, page_flags, tlb, st, types.int64)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        address, *arrays, budget = args
        x, f, csr, ram8, page_flags, tlb, st = (
            context.make_array(ty)(context, builder, value).data
            for ty, value in zip(signature.args[1:8], arrays, strict=True)
        )

        def slot(n: int) -> ir.Value:
            return builder.gep(st, [ir.Constant(I64, n)])

        def add(n: int, value: ir.Value) -> None:
            builder.store(builder.add(builder.load(slot(n)), value), slot(n))

        cycles = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(I64, []), "llvm.readcyclecounter"
        )
        timed = builder.icmp_signed("!=", builder.load(slot(PROFILE)), ir.Constant(I64, 0))
        before = builder.basic_block
        with builder.if_then(timed, likely=False):
            start_timed = builder.call(cycles, [])
            started = builder.basic_block
        start = builder.phi(I64)
        start.add_incoming(ir.Constant(I64, 0), before)
        start.add_incoming(start_timed, started)

        out = slot(REGION_RETIRED)
        function = builder.inttoptr(address, SIGNATURE.as_pointer())
        pc = builder.call(function, [x, f, csr, ram8, page_flags, tlb, budget, out])

        with builder.if_then(timed, likely=False):
            add(PROF_REGION_CYCLES, builder.sub(builder.call(cycles, []), start))
        add(PROF_REGION_CALLS, ir.Constant(I64, 1))
        add(PROF_REGION_INSNS, builder.load(out))
        return pc

    return sig, codegen


@intrinsic
def _cycle_counter(typingctx):  # noqa: ANN001, ANN201
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(I64, []), "llvm.readcyclecounter"
        )
        return builder.call(fn, [])

    return types.int64(), codegen


@njit(cache=True)
def cycle_counter() -> int:
    """The host's cycle counter, as compiled regions read it under st[PROFILE] (the
    profile compares it with the wall clock to turn cycles into seconds)."""
    return _cycle_counter()
