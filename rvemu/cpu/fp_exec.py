"""F and D computational instructions: the checks every one makes, then its operation.

The operations' dispatch is generated from isa.py's records (`execute_gen.py`): the
commonest double-precision ones inline in the hart's loop, the rest in `fp_compute`,
compiled apart and called by address (entry_points.ASIDE).
"""

import numpy as np

from .execute_gen import load_module
from .fp_state import NOT_LOADED, RM_MAX, dirty, fp_enabled, resolve_rm
from .isa import BY_OP, Op
from .jit import njit_inline
from .state import CAUSE_ILLEGAL, FCSR, MSTATUS, OK

_generated = load_module()
execute_fp_hot = _generated.execute_fp_hot
fp_compute = _generated.fp_compute

USES_RM = np.zeros(len(Op), dtype=np.int64)
for _op, _record in BY_OP.items():
    USES_RM[_op] = int(_record.uses_rm)


@njit_inline  # (both copies of the loop share one compile; LLVM inlines it into each)
def execute_fp(op, rd, rs1, rs2, rs3_rm, x, f, csr, fp_compute_at) -> int:
    """Execute an F/D computational instruction: OK, CAUSE_ILLEGAL, or NOT_LOADED when it
    needs fp_compute (at address `fp_compute_at`, aside.py), whose library is not loaded
    yet (address 0); then nothing has changed."""
    if not fp_enabled(csr[MSTATUS]):
        return CAUSE_ILLEGAL
    rm = resolve_rm(rs3_rm & 7, csr[FCSR])
    if rm > RM_MAX and USES_RM[op]:
        return CAUSE_ILLEGAL
    result, flags, to_x = execute_fp_hot(op, rd, rs1, rs2, rs3_rm, rm, x, f, fp_compute_at)
    if flags < 0:
        return NOT_LOADED if flags == NOT_LOADED else CAUSE_ILLEGAL
    if to_x:
        x[rd] = result
    else:
        f[rd] = result
    csr[FCSR] |= flags
    csr[MSTATUS] = dirty(csr[MSTATUS])
    return OK
