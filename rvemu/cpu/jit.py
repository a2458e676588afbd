"""Numba's njit for the core's functions that are compiled once, whatever constants their
callers pass.

Called from compiled code with a constant argument (an access size, an access kind, a
flag), a plain njit function is compiled once more for each constant value it sees. That
buys nothing for slow paths and multiplied the core's first compile time, so these
functions are typed with plain argument types: one compiled copy each.
- `njit_generic`: slow paths, called (LLVM inlines them only if it finds that pays);
- `njit_inline`: small hot functions called from many places (a load or store in each
  of the dispatch's cases): LLVM inlines every call and folds the constants there.
  Numba's own inlining (inline="always") would copy, type and lower the body again at
  every call site.
"""

from collections.abc import Callable

from numba import njit, types


def _plain_types(dispatcher: Callable) -> Callable:
    call_template = dispatcher.get_call_template

    def plain_call_template(args, kws):  # noqa: ANN001, ANN202 (Numba's hook)
        args = tuple(types.unliteral(a) for a in args)
        kws = {k: types.unliteral(v) for k, v in kws.items()}
        return call_template(args, kws)

    dispatcher.get_call_template = plain_call_template
    return dispatcher


def njit_generic(fn: Callable) -> Callable:
    # forceinline=False: not inherited from a caller LLVM inlines (execute_gen's execute)
    return _plain_types(njit(cache=True, forceinline=False)(fn))


def njit_inline(fn: Callable) -> Callable:
    return _plain_types(njit(cache=True, forceinline=True)(fn))
