"""The hart: a Numba-compiled RV64GC core (see core.py) and its Python face (hart.py)."""
