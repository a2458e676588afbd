"""Calling a compiled region from the Numba-compiled interpreter."""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import abi
from .emit import SIGNATURE

i64 = ir.IntType(64)


@intrinsic
def call_region(typingctx, address, x, f, csr, ram8, pagef, tlb, st, dc, entries, entry_pc, budget):  # noqa: ANN001, ANN201
    """region(x, ram, ctx, budget, 0) for the function at `address` (abi.py), with the
    context block built on the caller's stack: returns the pc to go on from, and sets
    st[REGION_RETIRED] and st[REGION_JUMPED]."""
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
        function = builder.inttoptr(address, SIGNATURE.as_pointer())
        return builder.call(function, [x, ram, ctx, budget, i64(0)])

    return sig, codegen
