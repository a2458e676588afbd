"""The machine a script or debugger drives: single steps, breakpoints (also where tier 2
compiled the code), watchpoints, hooks on pcs, devices and console, registers and memory
by name and address, symbols."""

from __future__ import annotations

import pytest
from conftest import RAM, enc
from test_apps import build, symbols_image

from rvemu import Machine
from rvemu.cpu import state as S


def booted(app: str) -> Machine:
    build(app)
    m = Machine()
    m.load(str(symbols_image(app)))
    return m


def test_step_counts_instructions_and_breakpoint_stops_at_main():
    m = booted("hello")
    result = m.step(5)
    assert (result.reason, result.instructions) == ("step", 5)
    main = m.symbols["main"]
    m.add_breakpoint(main)
    result = m.run()
    assert result.reason == "breakpoint"
    assert m.hart.pc == main == m.stop_address
    assert m.symbol_at(m.regs["pc"]) == "main"
    assert m.symbol_at(main + 4) == "main+0x4"
    # Running again passes the breakpoint it stands at, and the guest finishes.
    result = m.run()
    assert (result.reason, result.exit_code) == ("poweroff", 0)
    assert b"Hello" in m.console


def test_removed_breakpoint_no_longer_stops():
    m = booted("hello")
    m.add_breakpoint(m.symbols["main"])
    m.remove_breakpoint(m.symbols["main"])
    assert m.run().reason == "poweroff"


def test_step_into_a_trap_and_its_handler():
    m = booted("crash")
    main = m.symbols["main"]
    code = m.phys[main : main + 256]
    ebreak = code.find(b"\x02\x90")  # c.ebreak (the C extension's form of ebreak)
    assert ebreak >= 0 and ebreak % 2 == 0, "no c.ebreak in crash's main"
    m.add_breakpoint(main + ebreak)
    assert m.run().reason == "breakpoint"
    traps, instret = m.hart.traps, m.hart.instret
    assert m.step().reason == "step"
    assert m.hart.traps == traps + 1
    assert m.hart.instret == instret  # ebreak does not retire
    assert m.regs["mcause"] == S.CAUSE_BREAKPOINT
    assert m.regs["mepc"] == main + ebreak
    assert m.regs["pc"] == m.regs["mtvec"] & ~3
    assert m.regs["a0"] == 0x1234
    m.step()  # the handler's first instruction
    assert m.hart.instret == instret + 1


def test_breakpoint_inside_compiled_code_still_stops():
    """A loop that tier 2 compiles whole: its second instruction is reached only inside
    the compiled region, which must be bypassed while the breakpoint is set."""
    m = Machine(memory="1M")
    loop = [enc("addi", 10, 10, imm=1), enc("addi", 11, 11, imm=1), enc("jal", 0, imm=-8)]
    m.write_phys(RAM, b"".join(word.to_bytes(4, "little") for word in loop))
    m.hart.pc = RAM
    m.hart.hot_threshold = 2
    assert m.run(100_000).reason == "limit"
    assert m.hart.tier2.regions > 0, "nothing was compiled: the test proves nothing"
    m.add_breakpoint(RAM + 4)
    for _ in range(3):
        result = m.run(100_000)
        assert result.reason == "breakpoint"
        assert m.hart.pc == RAM + 4
        assert result.instructions == 3  # once round the loop, not until the budget ends
    a1 = m.regs["a1"]
    m.remove_breakpoint(RAM + 4)
    assert m.run(100_000).reason == "limit"  # compiled code runs again
    assert m.regs["a1"] > a1 + 30_000


def test_watchpoint_stops_after_each_store_and_pc_hooks_run():
    m = booted("timers")
    ticks = m.symbols["ticks"]
    on_tick = m.symbols["on_tick"]
    m.add_breakpoint(m.symbols["main"])
    assert m.run().reason == "breakpoint"
    m.remove_breakpoint(m.symbols["main"])
    calls = []
    m.on_pc(on_tick, lambda machine: calls.append(machine.regs["ra"]))
    m.watch(ticks, 4)
    values = []
    while (result := m.run()).reason == "watchpoint":
        assert m.stop_address == ticks
        assert m.symbol_at(m.hart.pc).startswith("on_tick+")  # at the store, not yet done
        before = int.from_bytes(m.phys[ticks : ticks + 4], "little")
        assert m.step().reason == "step"
        values.append(int.from_bytes(m.phys[ticks : ticks + 4], "little"))
        assert values[-1] == before + 1
    assert (result.reason, result.exit_code) == ("poweroff", 0)
    assert values == [1, 2, 3, 4, 5]
    assert len(calls) == 5


def test_hook_that_returns_true_stops_the_run():
    m = booted("hello")
    m.on_pc(m.symbols["main"], lambda machine: True)
    assert m.run().reason == "hook"
    assert m.hart.pc == m.symbols["main"]
    assert m.run().reason == "poweroff"


def test_device_and_console_hooks_see_the_guest():
    m = booted("hello")
    accesses, output = [], []
    m.on_device(accesses.append)
    m.on_console(output.append)
    m.run()
    text = b"".join(output)
    assert text == m.console and b"Hello" in text
    uart_writes = [a for a in accesses if a.write and a.address == 0x1000_0000]
    assert bytes(a.value for a in uart_writes) == m.console
    assert any(a.address == 0x10_0000 and a.write for a in accesses)  # the power-off


def test_registers_and_memory_by_name():
    m = booted("hello")
    m.regs["a0"] = 0x1234
    assert m.regs["x10"] == 0x1234 == int(m.hart.x[10])
    m.regs["zero"] = 5
    assert m.regs["zero"] == 0
    m.regs["t0"] = -1
    assert m.regs["t0"] == (1 << 64) - 1
    m.regs["fa0"] = 0x4000_0000_0000_0000
    assert m.regs["f10"] == 0x4000_0000_0000_0000
    m.regs["mscratch"] = 0xABC
    assert m.regs["mscratch"] == 0xABC
    m.regs["mstatus"] = 2 << 11  # MPP = 2 is reserved (WARL): the write keeps the old MPP
    assert (m.regs["mstatus"] >> 11) & 3 != 2
    with pytest.raises(KeyError):
        m.regs["x32"]
    with pytest.raises(ValueError):
        m.regs["mhartid"] = 1  # read-only
    assert m.regs["priv"] == S.PRIV_M
    assert "mstatus" in m.regs.names() and "a0" in m.regs.names()
    base = m.symbols["main"]
    code = m.phys[base : base + 4]
    assert m.virt[base : base + 4] == code  # M-mode: virtual is physical
    m.phys[base] = b"\x13\x00\x00\x00"
    assert m.phys.u64(base) & 0xFFFFFFFF == 0x13
    with pytest.raises(IndexError):
        m.phys[0x1000:0x1004]  # not RAM


def test_virtual_memory_view_follows_the_page_tables():
    """The Sv39 build runs main in S-mode with paging on: its virtual view translates."""
    m = Machine()
    from test_apps import ROOT

    sv39 = ROOT / "build" / "unikernel-sv39" / "hello.sym.elf"
    if not sv39.exists():
        pytest.skip(f"{sv39} not built (make apps-sv39)")
    m.load(str(sv39))
    m.add_breakpoint(m.symbols["main"])
    assert m.run().reason == "breakpoint"
    assert m.regs["priv"] == S.PRIV_S and m.regs["satp"] >> 60 == 8
    pc = m.regs["pc"]
    paddr = m.translate(pc, S.ACCESS_FETCH)
    assert paddr is not None
    assert m.virt[pc : pc + 4] == m.phys[paddr : paddr + 4]
