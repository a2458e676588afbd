"""Calling a compiled region from the Numba-compiled interpreter."""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..cpu.state import REGION_JUMPED, REGION_RETIRED
from .emit import SIGNATURE

assert REGION_JUMPED == REGION_RETIRED + 1  # the region writes both through one pointer


@intrinsic
def call_region(typingctx, address, x, f, csr, ram8, page_flags, tlb, st, budget):  # noqa: ANN001, ANN201
    """region(x, f, csr, ram, page_flags, tlb, budget, &st[REGION_RETIRED]) for the
    function at `address`: returns the pc to go on from, and sets st[REGION_RETIRED] and
    st[REGION_JUMPED]."""
    sig = types.int64(types.int64, x, f, csr, ram8, page_flags, tlb, st, types.int64)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        address, *arrays, budget = args
        x, f, csr, ram8, page_flags, tlb, st = (
            context.make_array(ty)(context, builder, value).data
            for ty, value in zip(signature.args[1:8], arrays, strict=True)
        )
        out = builder.gep(st, [ir.Constant(ir.IntType(64), REGION_RETIRED)])
        function = builder.inttoptr(address, SIGNATURE.as_pointer())
        return builder.call(function, [x, f, csr, ram8, page_flags, tlb, budget, out])

    return sig, codegen
