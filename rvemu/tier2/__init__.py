"""The second tier: hot guest code compiled to host code with LLVM (through llvmlite).

The interpreter counts taken jumps per target. When a target gets hot, `Tier2` finds the
code reachable from it within its 4 KiB page (`region.py`), translates that to one LLVM
function (`emit.py`), compiles it, and marks the target's decoded-instruction slot so the
interpreter calls the function instead of interpreting (`cpu/region_call.py`). A region
does only what needs no help: integer instructions and loads and stores that hit RAM.
Anything else (a device access, a misaligned or faulting access, a store to a page
holding code or the tohost word, a CSR, FP or system instruction, an indirect jump) ends
the region before it, with the registers written back, and the interpreter carries on
exactly there.
"""
