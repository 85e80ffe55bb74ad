#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host side of `bench/run --trace`: counts the kernel code one exchange of each case runs.

QEMU's TCG logs every translation block (TB: a straight run of guest code up to a branch)
that the vCPU executes when started with `-d nochain` and told `log exec,nochain` on its
monitor. TB counts repeat to within a block or two between runs, so they compare code
paths where timings under TCG move by +-15%.

  trace.py arm CONSOLE_LOG MONITOR_SOCKET
      waits for the guest's "bench: trace ready", turns the execution log on, waits for
      "bench: trace done" and turns it off (see bench/src/trace.rs for the guest side).
  trace.py analyse EXEC_LOG BENCH_JSON SYSTEM_MAP OUT_JSON [NAME=MODULE.ko]...
      splits the log into system calls, finds the guest's getppid marker runs, attributes
      every TB to a function, prints a table and writes OUT_JSON.
"""

import bisect
import collections
import json
import socket
import statistics
import subprocess
import sys
import time

READY = "bench: trace ready"
DONE = "bench: trace done"
USER_LIMIT = 0xFFFF800000000000
# The kernel's user-copy and clearing routines; everything else of the kernel is "kernel".
COPY_FUNCTIONS = {
    "rep_movs_alternative",
    "rep_stos_alternative",
    "_copy_from_user",
    "_copy_to_user",
    "copy_user_generic",
    "__copy_user_nocache",
    "memcpy",
    "memcpy_orig",
    "memset",
    "memset_orig",
    "__memcpy",
    "__memset",
}


def monitor(path, command):
    """Sends one command to QEMU's human monitor on a Unix socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.settimeout(5)
        time.sleep(0.2)
        s.recv(65536)  # banner and prompt
        s.sendall(command.encode() + b"\n")
        time.sleep(0.2)
        s.recv(65536)


def wait_for(path, line, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path, errors="replace") as f:
                if any(l.rstrip("\r\n") == line for l in f):
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    return False


def arm(console_log, monitor_socket):
    deadline = time.monotonic() + 900
    if not wait_for(console_log, READY, deadline):
        sys.exit("trace.py: the guest never printed its ready line")
    monitor(monitor_socket, "log exec,nochain")
    if not wait_for(console_log, DONE, deadline):
        sys.exit("trace.py: the guest never printed its done line")
    monitor(monitor_socket, "log nochain")


class Symbols:
    """Text symbols of the kernel (System.map) and of loaded modules (nm + load address)."""

    def __init__(self, system_map, modules):
        syms = []
        with open(system_map) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tTwW":
                    syms.append((int(parts[0], 16), parts[2], "kernel"))
        for name, (ko, base) in modules.items():
            out = subprocess.run(["nm", "-n", "--defined-only", ko], check=True,
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in "tT":
                    syms.append((base + int(parts[0], 16), parts[2], name))
        syms.sort()
        self.addrs = [a for a, _, _ in syms]
        self.syms = syms

    def lookup(self, pc):
        i = bisect.bisect_right(self.addrs, pc) - 1
        return self.syms[i][1:] if i >= 0 else ("?", "kernel")


def category(function, owner):
    if owner != "kernel":
        return "module"
    return "copy" if function in COPY_FUNCTIONS else "kernel"


def syscalls(exec_log, symbols):
    """The system calls in the log: (handler, Counter of categories) each."""
    calls = []
    current = None
    prev_user = True
    cache = {}
    with open(exec_log, errors="replace") as f:
        for line in f:
            if not line.startswith("Trace "):
                continue
            try:
                pc = int(line.split("[", 1)[1].split("/", 2)[1], 16)
            except (IndexError, ValueError):
                continue
            if pc < USER_LIMIT:
                prev_user = True
                continue
            if pc not in cache:
                cache[pc] = symbols.lookup(pc)
            function, owner = cache[pc]
            if function == "entry_SYSCALL_64" and prev_user:
                current = {"handler": None, "tbs": collections.Counter(),
                           "functions": collections.Counter()}
                calls.append(current)
            prev_user = False
            if current is None:
                continue
            if current["handler"] is None and function.startswith("__x64_sys_"):
                current["handler"] = function[len("__x64_sys_"):]
            current["tbs"][category(function, owner)] += 1
            current["functions"][function] += 1
    return calls


def analyse(exec_log, bench_json, system_map, out_json, module_args):
    with open(bench_json) as f:
        trace = json.load(f)["trace"]
    modules = {}
    for arg in module_args:
        name, ko = arg.split("=", 1)
        if name in trace["module_text"]:
            modules[name] = (ko, int(trace["module_text"][name], 16))
    calls = syscalls(exec_log, Symbols(system_map, modules))
    base, exchanges, cases = trace["marker_base"], trace["exchanges"], trace["cases"]

    # Marker runs: maximal runs of getppid calls; a run of base + i opens case i.
    runs = []
    i = 0
    while i < len(calls):
        if calls[i]["handler"] == "getppid":
            j = i
            while j < len(calls) and calls[j]["handler"] == "getppid":
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    results = []
    for (start, end), (next_start, _) in zip(runs, runs[1:]):
        index = end - start - base
        if not 0 <= index < len(cases):
            continue
        body = calls[end:next_start]
        if not body or len(body) % exchanges:
            sys.exit(f"trace.py: case {cases[index]['name']}: {len(body)} system calls "
                     f"are not {exchanges} equal exchanges")
        per = len(body) // exchanges
        per_exchange = []  # (TBs by part, TBs by function) of each exchange
        for e in range(exchanges):
            tbs, functions = collections.Counter(), collections.Counter()
            for call in body[e * per:(e + 1) * per]:
                tbs += call["tbs"]
                functions += call["functions"]
            per_exchange.append((tbs, functions))
        sizes = [sum(tbs.values()) for tbs, _ in per_exchange]
        cheapest, functions = per_exchange[sizes.index(min(sizes))]
        results.append({
            "name": cases[index]["name"],
            "exchange": cases[index]["exchange"],
            "syscalls": [c["handler"] for c in body[:per]],
            "tbs_min": min(sizes),
            "tbs_median": statistics.median(sizes),
            "tbs_by_part": {k: cheapest.get(k, 0) for k in ("kernel", "copy", "module")},
            "tbs_by_function": dict(functions.most_common()),
        })
    if not results or results[0]["name"] != "floor":
        sys.exit("trace.py: no traced floor case in the log")
    if len(results) != len(cases):
        sys.exit(f"trace.py: found {len(results)} of {len(cases)} cases in the log")
    floor = results[0]["tbs_min"]
    for r in results:
        r["ratio_to_floor"] = round(r["tbs_min"] / floor, 3)

    print()
    print("translation blocks per exchange (TCG execution log; cheapest of "
          f"{exchanges}; repeatable to a block or two)")
    print(f"{'case':<46} {'TBs':>6} {'vs floor':>9} {'kernel':>7} {'copy':>6} {'module':>7}")
    for r in results:
        parts = r["tbs_by_part"]
        print(f"{r['name'] + ': ' + r['exchange']:<46} {r['tbs_min']:>6} "
              f"{r['ratio_to_floor']:>9.2f} {parts['kernel']:>7} {parts['copy']:>6} "
              f"{parts['module']:>7}")
    print("kernel: entry, VFS and any in-kernel driver code; copy: the kernel's user-copy and "
          "clearing routines; module: the module's own code")
    with open(out_json, "w") as f:
        json.dump({
            "method": "QEMU TCG execution log (-d nochain, log exec): translation blocks "
                      "executed in the kernel per exchange, cheapest of the traced exchanges",
            "exchanges_traced": exchanges,
            "cases": results,
        }, f, indent=2)
        f.write("\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "arm":
        arm(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 6 and sys.argv[1] == "analyse":
        analyse(*sys.argv[2:6], sys.argv[6:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
