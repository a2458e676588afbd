"""The `rvemu` command: a thin layer over the Python API (rvemu.Machine)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from . import initramfs
from .testrunner import DEFAULT_LIMIT

EXIT_LIMIT = 124  # like timeout(1): the run hit --max-instructions


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def one_line(message: object) -> str:
    """The message with control characters escaped: a file name may hold a newline, and an
    error is one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, non-zero exit
        self.exit(2, f"rvemu: {one_line(message)}\n")


def add_machine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", "-m", default="128M", help="RAM size (default 128M)")
    p.add_argument("--disk", help="virtio-blk disk image: FILE[,ro][,serial=ID][,slot=N]")
    p.add_argument(
        "--net",
        help="virtio-net backend: user[,hostfwd=tcp::HOSTPORT-:GUESTPORT] (QEMU's user "
        "networking), tap:NAME or udp:LPORT:HOST:RPORT, then [,mac=MAC]",
    )
    p.add_argument(
        "--bios",
        help="firmware loaded at the start of RAM: a file, 'default' (OpenSBI's fw_dynamic, "
        "as QEMU) or 'none' (the default)",
    )
    p.add_argument("--append", help="kernel command line (device tree bootargs)")
    p.add_argument("--initrd", help="initial ramdisk file")
    p.add_argument("--rng", action="store_true", help="add a virtio-rng device (host entropy)")
    p.add_argument(
        "--cpu",
        default="rv64",
        help="rv64[,EXT=on|off...] as QEMU's -cpu: turn extensions beyond RV64GC off "
        "(e.g. rv64,zba=false,sstc=off); all are on by default",
    )
    p.add_argument(
        "--clock",
        choices=("instructions", "host"),
        default="instructions",
        help="time source: retired instructions (deterministic, default) or host time",
    )


def machine_from(args: argparse.Namespace, echo: bool):
    from . import Machine

    return Machine(
        memory=args.memory,
        echo=echo,
        disk=args.disk,
        net=args.net,
        bios=args.bios,
        append=args.append,
        initrd=args.initrd,
        clock=args.clock,
        rng=args.rng,
        cpu=args.cpu,
    )


def cmd_boot(args: argparse.Namespace) -> int:
    if args.api_sock:  # a thin client: the server has the machine (and numpy, and Numba)
        from .apiclient import boot

        return boot(args)
    from . import firmware

    firmware.check(args.elf, args.bios)  # a bad image is reported before anything is set up
    if args.wait and not args.gdb:
        print("rvemu: --wait needs --gdb", file=sys.stderr)
        return 2
    if args.gdb and args.trace:
        print("rvemu: --gdb and --trace cannot be used together", file=sys.stderr)
        return 2
    machine = machine_from(args, echo=True)
    machine.load(args.elf)
    if args.gdb:
        from .gdbstub import GdbServer

        result = GdbServer(machine, args.gdb, args.wait).serve()
        if result is None:  # GDB killed the guest
            return 0
    elif args.trace:
        result = run_traced(machine, args)
    elif args.save_at:
        result = run_and_save(machine, args)
    else:
        profile = None
        if args.profile:
            from .profile import Profile

            profile = Profile(machine)
        result = machine.run(max_instructions=args.max_instructions)
        if profile is not None:
            profile.stop()
            print(profile.table(), file=sys.stderr)
    return finish(machine, result, args)


def run_and_save(machine, args: argparse.Namespace):  # noqa: ANN201 (a RunResult)
    """Run to the mark or instruction count --save-at names, save there, run on."""
    where, path = args.save_at
    if where == "main":
        machine.stop_at.add("main")
        result = machine.run(max_instructions=args.max_instructions)
        machine.stop_at.discard("main")
        if result.reason != "mark":
            print(f"rvemu: the guest never reached main: nothing saved to {path}", file=sys.stderr)
            return result
    else:
        try:
            count = int(where, 0)
        except ValueError:
            print(f"rvemu: --save-at {where!r}: use main or a number of instructions",
                  file=sys.stderr)  # fmt: skip
            raise SystemExit(2) from None
        result = machine.run(max_instructions=count)
        if result.reason != "limit":
            return result
    machine.save(path)
    left = None if args.max_instructions is None else args.max_instructions - result.instructions
    return machine.run(max_instructions=left)


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(args.api_sock, args.workers)


def cmd_resume(args: argparse.Namespace) -> int:
    from . import Machine

    machine = Machine.from_snapshot(args.snapshot, echo=True)
    return finish(machine, machine.run(max_instructions=args.max_instructions), args)


def finish(machine, result, args: argparse.Namespace) -> int:  # noqa: ANN001
    """The exit status for how the run ended (and --stats)."""
    if args.stats:
        print_stats(machine, result)
    if result.reason == "poweroff":
        return result.exit_code
    if result.reason == "tohost":
        if result.exit_code:
            print(f"rvemu: tohost reports failure {result.exit_code}", file=sys.stderr)
        return result.exit_code
    if result.reason == "limit":
        print(
            f"rvemu: stopped at the instruction limit ({args.max_instructions}) "
            f"at pc={machine.hart.pc:#x}",
            file=sys.stderr,
        )
        return EXIT_LIMIT
    if result.reason == "halt":
        print(
            f"rvemu: the guest waits for an interrupt that nothing can raise "
            f"(wfi at pc={machine.hart.pc:#x})",
            file=sys.stderr,
        )
        return 1
    if result.reason == "quit":  # Ctrl-A x on the console, as in QEMU
        return 0
    print("rvemu: the guest asked for a reset, which rvemu does not do yet", file=sys.stderr)
    return 1


def run_traced(machine, args: argparse.Namespace):  # noqa: ANN201 (a RunResult)
    from .trace import Tracer

    start, end = args.trace_range or (0, 1 << 64)
    out = sys.stderr if args.trace == "-" else open(args.trace, "w")  # noqa: SIM115
    try:
        tracer = Tracer(machine, out, args.trace_format, args.trace_limit, start, end)
        return tracer.run(args.max_instructions)
    finally:
        if out is not sys.stderr:
            out.close()


def address_range(text: str) -> tuple[int, int]:
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start, 0), int(end, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not START:END (e.g. 0x80000000:0x80001000)"
        ) from None


def print_stats(machine, result) -> None:
    from .cpu.state import INSNS_PER_TICK, MTIME_BASE, TIMEBASE_FREQ

    n = result.instructions
    # mtime since reset: retired instructions plus any time WFI skipped ahead
    mtime = int(machine.hart.st[MTIME_BASE]) + machine.hart.instret // INSNS_PER_TICK
    guest_seconds = mtime / TIMEBASE_FREQ
    mips = n / result.seconds / 1e6 if result.seconds > 0 else 0.0
    lines = [
        f"instructions retired  {n}",
        f"guest time            {guest_seconds * 1e3:.3f} ms (mtime since reset, 10 MHz)",
        f"host wall time        {result.seconds * 1e3:.3f} ms",
        f"speed                 {mips:.1f} MIPS",
    ]
    tier2 = machine.hart.tier2
    lines.append(
        f"compiled code         {tier2.regions} regions ({tier2.cached} from the code cache), "
        f"{tier2.instructions} instructions, {tier2.seconds * 1e3:.1f} ms compiling or loading "
        f"(RVEMU_HOT_THRESHOLD={machine.hart.hot_threshold})"
    )
    for name in ("main", "first_output"):
        if name in machine.marks:
            insns, secs = machine.marks[name]
            label = f"reset -> {name.replace('_', ' ')}"
            lines.append(f"{label:<22}{insns} instructions, {secs * 1e3:.3f} ms")
    print("\n".join("rvemu: " + line for line in lines), file=sys.stderr)


def cmd_test(args: argparse.Namespace) -> int:
    from .testrunner import collect, run_tests

    try:
        paths = collect(args.paths, args.filter)
    except FileNotFoundError as e:
        print(f"rvemu: {one_line(e)}", file=sys.stderr)
        return 2
    if not paths:
        print("rvemu: no test ELFs found (ELF files with a tohost symbol)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = []
    for r in run_tests(paths, jobs=args.jobs, limit=args.limit):
        results.append(r)
        status = "PASS" if r["passed"] else f"FAIL  {r['detail']}"
        print(f"{os.path.basename(r['path']):<32} {status}", flush=True)
    passed = sum(r["passed"] for r in results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "seconds": time.perf_counter() - start}, f, indent=1)
    return 0 if failed == 0 else 1


def cmd_dtb(args: argparse.Namespace) -> int:
    if args.elf:
        from . import firmware

        firmware.check(args.elf, args.bios)
    machine = machine_from(args, echo=False)
    if args.elf:  # the initrd and kernel placement go into the tree only with an image
        machine.load(args.elf)
    blob = machine.board.dtb()
    if args.output in (None, "-"):
        sys.stdout.buffer.write(blob)
    else:
        with open(args.output, "wb") as f:
            f.write(blob)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .bench import bench

    return bench(Path(args.images), args.only, args.runs, args.json, Path(args.sv39_images))


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="rvemu", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    boot = sub.add_parser("boot", help="boot a kernel (ELF or Linux Image) on the virt machine")
    boot.add_argument("elf", metavar="KERNEL", help="a RISC-V ELF, or a Linux Image (or Image.gz)")
    add_machine_options(boot)
    boot.add_argument("--max-instructions", type=int, default=None, metavar="N")
    boot.add_argument("--stats", action="store_true", help="print run statistics to stderr")
    boot.add_argument("--profile", action="store_true", help="print where host time went to stderr")
    boot.add_argument(
        "--save-at",
        nargs=2,
        metavar=("WHERE", "FILE"),
        help="save a snapshot to FILE at main (the boot mark) or after N instructions, "
        "then run on (rvemu resume FILE goes on from there)",
    )
    boot.add_argument(
        "--api-sock",
        metavar="PATH",
        help="boot on the rvemu serve listening there: this process only streams the "
        "console and exits with the guest's status",
    )
    debug = boot.add_argument_group("debugging (see README: Debugging a guest)")
    debug.add_argument(
        "--gdb",
        metavar="[HOST:]PORT",
        help="serve GDB's remote protocol there (QEMU's -gdb tcp::PORT; 1234 is QEMU's -s)",
    )
    debug.add_argument(
        "--trace",
        metavar="FILE",
        help="write each executed instruction (pc, privilege, disassembly, registers and "
        "memory written) and each trap to FILE ('-': stderr)",
    )
    debug.add_argument(
        "--trace-format",
        choices=("rvemu", "spike"),
        default="rvemu",
        help="rvemu's lines, or Spike's commit log (spike -l --log-commits) to diff against",
    )
    debug.add_argument(
        "--trace-limit",
        type=positive,
        metavar="N",
        help="stop tracing after N instructions (the guest runs on, at full speed)",
    )
    debug.add_argument(
        "--trace-range",
        type=address_range,
        metavar="START:END",
        help="trace only instructions with START <= pc < END",
    )
    debug.add_argument(
        "--wait",
        action="store_true",
        help="with --gdb: hold the hart at reset until GDB continues it (QEMU's -S)",
    )
    boot.set_defaults(func=cmd_boot)

    serve = sub.add_parser(
        "serve",
        help="serve machines over an HTTP API on a Unix socket (Firecracker's style)",
        description="An HTTP/1.1 API with JSON bodies on a Unix socket: create machines, "
        "start, pause and stop them, stream their consoles, take snapshots (see "
        "rvemu/serve.py, and README: Booting many unikernels quickly).",
    )
    serve.add_argument("--api-sock", required=True, metavar="PATH", help="the socket to create")
    serve.add_argument(
        "--workers",
        type=positive,
        default=len(os.sched_getaffinity(0)),
        metavar="N",
        help="worker processes that run the machines (default: one per CPU)",
    )
    serve.set_defaults(func=cmd_serve)

    resume = sub.add_parser("resume", help="go on from a snapshot (rvemu boot --save-at)")
    resume.add_argument("snapshot", metavar="FILE")
    resume.add_argument("--max-instructions", type=int, default=None, metavar="N")
    resume.add_argument("--stats", action="store_true", help="print run statistics to stderr")
    resume.set_defaults(func=cmd_resume)

    test = sub.add_parser("test", help="run riscv-tests style ELFs (HTIF tohost)")
    test.add_argument("paths", nargs="+", metavar="PATH", help="ELF files or folders")
    test.add_argument("--filter", default=None, metavar="GLOB", help="only names matching")
    test.add_argument("-j", "--jobs", type=positive, default=1, metavar="N")
    test.add_argument("--json", metavar="FILE", help="write results as JSON")
    test.add_argument(
        "--limit",
        "--max-instructions",
        dest="limit",
        type=positive,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"instructions a test may run before it fails (default {DEFAULT_LIMIT:,})",
    )
    test.set_defaults(func=cmd_test)

    dtb = sub.add_parser("dtb", help="write the machine's device tree blob (for dtc)")
    dtb.add_argument("elf", nargs="?", help="the image to place (for initrd and bootargs)")
    add_machine_options(dtb)
    dtb.add_argument("-o", "--output", metavar="FILE", help="where to write it (default stdout)")
    dtb.set_defaults(func=cmd_dtb)

    initramfs.add_command(sub)

    bench = sub.add_parser("bench", help="guest MIPS, boot latency and sizes beside QEMU")
    bench.add_argument(
        "--only",
        metavar="NAME",
        help="only benchmarks whose name has NAME; 'http' the network figures; 'guests' "
        "xv6 and Linux beside QEMU ('guests:xv6-boot,xv6-usertests,linux-init' picks rows)",
    )
    bench.add_argument("--runs", type=int, default=3, metavar="N", help="median of N runs")
    bench.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    bench.add_argument(
        "--images", default="build/unikernel", metavar="DIR", help="where bench-*.elf are"
    )
    bench.add_argument(
        "--sv39-images",
        default="build/unikernel-sv39",
        metavar="DIR",
        help="the same benchmarks built to run in S-mode with Sv39 paging (make apps-sv39)",
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:
        print(f"rvemu: {one_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:
        loader = sys.modules.get("rvemu.loader")  # (if it is not loaded, nothing raised one)
        if loader is None or not isinstance(e, loader.LoadError):
            raise
        print(f"rvemu: {one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
