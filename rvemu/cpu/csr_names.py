"""CSR names, as the privileged spec's tables (and GDB, objdump) spell them."""

from __future__ import annotations

_NAMED = {
    0x001: "fflags",
    0x002: "frm",
    0x003: "fcsr",
    0x100: "sstatus",
    0x104: "sie",
    0x105: "stvec",
    0x106: "scounteren",
    0x10A: "senvcfg",
    0x140: "sscratch",
    0x141: "sepc",
    0x142: "scause",
    0x143: "stval",
    0x144: "sip",
    0x14D: "stimecmp",
    0x180: "satp",
    0x300: "mstatus",
    0x301: "misa",
    0x302: "medeleg",
    0x303: "mideleg",
    0x304: "mie",
    0x305: "mtvec",
    0x306: "mcounteren",
    0x30A: "menvcfg",
    0x320: "mcountinhibit",
    0x340: "mscratch",
    0x341: "mepc",
    0x342: "mcause",
    0x343: "mtval",
    0x344: "mip",
    0x7A0: "tselect",
    0x7A1: "tdata1",
    0x7A2: "tdata2",
    0x7A3: "tdata3",
    0x7A4: "tinfo",
    0xB00: "mcycle",
    0xB02: "minstret",
    0xC00: "cycle",
    0xC01: "time",
    0xC02: "instret",
    0xF11: "mvendorid",
    0xF12: "marchid",
    0xF13: "mimpid",
    0xF14: "mhartid",
    0xF15: "mconfigptr",
}


def _numbered() -> dict[int, str]:
    names = {}
    for n in range(16):
        names[0x3B0 + n] = f"pmpaddr{n}"
        names[0x3A0 + n] = f"pmpcfg{n}"
    for n in range(3, 32):
        names[0xC00 + n] = f"hpmcounter{n}"
        names[0xB00 + n] = f"mhpmcounter{n}"
        names[0x320 + n] = f"mhpmevent{n}"
    return names


CSR_NAMES: dict[int, str] = {**_numbered(), **_NAMED}
CSR_NUMBERS: dict[str, int] = {name: num for num, name in CSR_NAMES.items()}
