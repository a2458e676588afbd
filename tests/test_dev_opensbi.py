"""Debian's OpenSBI (fw_jump, generic platform) boots under --bios, describes the machine
from our device tree, and runs an S-mode payload of ours that prints through SBI and shuts
down through SBI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "guest"))

from devguest import OPENSBI_DIR, build, qemu, qemu_interactive, require_qemu  # noqa: E402

from rvemu import Machine  # noqa: E402

FW_JUMP = OPENSBI_DIR / "fw_jump.elf"
FW_DYNAMIC = OPENSBI_DIR / "fw_dynamic.elf"

# banner lines that come from the device tree and the board, not from the hart's features
FROM_THE_MACHINE = (
    "Platform Name",
    "Platform HART Count",
    "Platform IPI Device",
    "Platform Timer Device",
    "Platform Console Device",
    "Platform Reboot Device",
    "Platform Shutdown Device",
    "Firmware Base",
    "Domain0 Next Address",
    "Domain0 Next Arg1",
    "Domain0 Next Mode",
    "Domain0 SysReset",
    "Boot HART ID",
)
PAYLOAD = (
    "payload: hello from S-mode through SBI\n"
    "payload: SBI spec version call works\n"
    "payload: a1 points at a device tree\n"
)


def firmware(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"*** {path} not found (apt install opensbi): OpenSBI boot NOT tested ***")
    return path


def payload() -> Path:
    return build("sbi_payload", ["sbi_payload.S"], ld="payload.ld")


def banner(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in FROM_THE_MACHINE:
            fields[key.strip()] = value.strip()
    return fields


def boot_rvemu(fw: Path, memory: str = "128M") -> tuple:
    m = Machine(memory=memory, bios=str(fw))
    m.load(str(payload()))
    result = m.run(200_000_000)
    return result, m.console.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("fw", [FW_JUMP, FW_DYNAMIC], ids=["fw_jump", "fw_dynamic"])
def test_opensbi_boots_our_payload(fw):
    result, out = boot_rvemu(firmware(fw))
    assert result.reason == "poweroff" and result.exit_code == 0, out
    assert "OpenSBI v" in out
    fields = banner(out)
    assert fields["Platform Name"] == "riscv-virtio,qemu"  # the model property of our tree
    assert fields["Platform HART Count"] == "1"
    assert fields["Platform Console Device"] == "uart8250"  # our ns16550a node
    assert fields["Platform Timer Device"] == "aclint-mtimer @ 10000000Hz"  # timebase
    assert fields["Platform Shutdown Device"] == "sifive_test"
    assert fields["Domain0 Next Address"] == "0x0000000080200000"
    assert out.endswith(PAYLOAD)


def test_fw_dynamic_takes_the_payload_address_from_a2():
    """fw_dynamic has no built-in jump address: it reads next_addr from the fw_dynamic_info
    that a2 points at in the boot ROM, as on QEMU."""
    m = Machine(bios=str(firmware(FW_DYNAMIC)))
    m.load(str(payload()))
    assert m.hart.reg("a2") == 0x1028
    info = [m.bus.read(0x1028 + 8 * k, 8) for k in range(6)]
    assert info == [0x4942534F, 2, 0x8020_0000, 1, 0, 0]
    assert m.run(200_000_000).exit_code == 0


@pytest.mark.parametrize("fw", [FW_JUMP, FW_DYNAMIC], ids=["fw_jump", "fw_dynamic"])
def test_opensbi_banner_matches_qemu(fw):
    require_qemu()
    _, ours = boot_rvemu(firmware(fw))
    status, theirs = qemu(payload(), bios=str(fw))
    theirs = theirs.decode().replace("\r\n", "\n")
    assert status == 0
    assert banner(ours) == banner(theirs)
    assert len(banner(ours)) == len(FROM_THE_MACHINE)
    assert ours.endswith(PAYLOAD) and theirs.endswith(PAYLOAD)


def s_mode_guest() -> Path:
    return build("s_uart_irq", ["s_crt.S", "s_uart_irq.c"], ld="payload.ld")


def test_s_mode_external_interrupts_through_plic_context_1():
    m = Machine(bios=str(firmware(FW_JUMP)))
    m.load(str(s_mode_guest()))
    result = m.run(200_000_000)
    assert result.reason == "halt"  # waits for a line: nothing to type it yet
    assert m.console.endswith(b"s-mode: waiting for a line\r\n")
    m.uart.feed(b"typed in S-mode\n")
    result = m.run(10_000_000)
    assert result.exit_code == 0
    assert m.console.endswith(
        b"s-mode: received: typed in S-mode\r\ns-mode: claimed from context 1\r\n"
    )


def test_s_mode_external_interrupts_same_output_on_qemu():
    require_qemu()
    fw = str(firmware(FW_JUMP))
    m = Machine(bios=fw)
    m.load(str(s_mode_guest()))
    m.run(200_000_000)
    m.uart.feed(b"typed in S-mode\n")
    m.run(10_000_000)
    theirs = qemu_interactive(s_mode_guest(), b"typed in S-mode\n", b"waiting for a line", bios=fw)
    tail = lambda out: out[out.index(b"s-mode: external") :]  # noqa: E731
    assert tail(m.console) == tail(theirs)
