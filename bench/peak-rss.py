#!/usr/bin/env python3
"""Peak RSS of one process itself, not of the programs it starts.

Usage: bench/peak-rss.py COMMAND [ARGS...]
Runs COMMAND as a traced child (ptrace, PTRACE_O_TRACEEXIT only: its children are not traced)
and, at the exit stop, when the process is leaving but its memory is still mapped, reads
VmHWM from /proc/PID/status: the kernel's high-water mark of that process's resident set.
Signals are passed through unchanged. Writes one JSON line to the file $PEAK_RSS_OUT (appended;
stderr when unset):
  {"self_hwm_kib": ..., "wait4_maxrss_kib": ..., "wall_s": ..., "exit": ...}
wait4_maxrss_kib is what /usr/bin/time -v and wait4 report: the larger of the process's own
peak and that of its largest waited-for descendant (cargo, rustc), kept for contrast.
The exit code is COMMAND's. Linux only.
"""

import ctypes
import json
import os
import signal
import sys
import time

PTRACE_TRACEME = 0
PTRACE_CONT = 7
PTRACE_SETOPTIONS = 0x4200
PTRACE_O_TRACEEXIT = 0x40
PTRACE_EVENT_EXIT = 6


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long

    def ptrace(request: int, pid: int, data: int) -> None:
        if libc.ptrace(request, pid, None, ctypes.c_void_p(data)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"ptrace({request}): {os.strerror(err)}")

    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            if libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
                os._exit(126)
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if not (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP):
        print(f"peak-rss: {sys.argv[1]} did not start (status {status})", file=sys.stderr)
        return 127
    ptrace(PTRACE_SETOPTIONS, pid, PTRACE_O_TRACEEXIT)
    ptrace(PTRACE_CONT, pid, 0)
    hwm = None
    while True:
        _, status, usage = os.wait4(pid, 0)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            break
        sig = os.WSTOPSIG(status)
        if sig == signal.SIGTRAP and status >> 16 == PTRACE_EVENT_EXIT:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1])
            ptrace(PTRACE_CONT, pid, 0)
        else:  # a signal on its way to the process: deliver it
            ptrace(PTRACE_CONT, pid, 0 if sig == signal.SIGTRAP else sig)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    line = json.dumps(
        {
            "self_hwm_kib": hwm,
            "wait4_maxrss_kib": usage.ru_maxrss,
            "wall_s": round(wall, 3),
            "exit": code,
        }
    )
    out = os.environ.get("PEAK_RSS_OUT")
    if out:
        with open(out, "a", encoding="ascii") as f:
            print(line, file=f)
    else:
        print(line, file=sys.stderr)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
