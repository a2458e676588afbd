"""`njit_generic`: Numba's njit for functions the hot loop calls but does not inline.

Called from compiled code with a constant argument (an access size, an access kind, a
flag), a plain njit function is compiled once more for each constant value it sees. That
buys nothing for slow paths and multiplied the core's first compile time, so these
functions are typed with plain argument types: one compiled copy each.
"""

from collections.abc import Callable

from numba import njit, types


def njit_generic(fn: Callable) -> Callable:
    # forceinline=False: not inherited from a caller LLVM inlines (execute_gen's execute)
    dispatcher = njit(cache=True, forceinline=False)(fn)
    call_template = dispatcher.get_call_template

    def plain_call_template(args, kws):  # noqa: ANN001, ANN202 (Numba's hook)
        args = tuple(types.unliteral(a) for a in args)
        kws = {k: types.unliteral(v) for k, v in kws.items()}
        return call_template(args, kws)

    dispatcher.get_call_template = plain_call_template
    return dispatcher
