# The in-sandbox test harness of @bdc/reward-python (see executor.ts for the host side).
#
# Started as `python3 -I -S -c <this file>` inside the sandbox (bubblewrap, or bare with rlimits in
# sandbox "none" mode). It reads ONE request as JSON from stdin (the host closes stdin after it),
# and streams JSON lines back on stdout:
#
#   {"t": "hello"}                              request read, harness alive
#   {"t": "compiled", "error": null | "..."}    the program compiled once (or its SyntaxError)
#   {"t": "r", "i": k, "status": ..., ...}      one line per finished test, in order
#   {"t": "raw", ...}                           the result of a raw script (mode "raw")
#   {"t": "done"}
#
# Each test runs in a child forked from this process (so the interpreter, the compiled program
# and pre-imported stdlib modules are shared copy-on-write), in its own process group, with its
# own rlimits (CPU, address space, file size, open files), stdin from a pipe, stdout/stderr and a
# small status record captured through pipes with caps. This process enforces the wall-clock limit
# per test (SIGKILL of the child's process group) and, inside the sandbox's PID namespace, kills
# every other process after each test, so nothing a test started survives into the next one.
#
# The harness trusts nothing that comes back from a child: the status record is size-capped,
# parsed defensively and re-encoded. The harness makes itself non-dumpable, so a child (same uid)
# cannot open /proc/<harness>/fd/* or ptrace it to forge result lines; a child CAN kill it, and
# the host then re-runs the remaining tests in a fresh sandbox.

import builtins
import os
import resource
import select
import sys
import time

# `json` and `signal` pull in `re` and `enum` (~8 ms of interpreter start-up per sandbox); the
# harness speaks JSON through the C accelerator `_json` directly and imports `json` only when a
# request has call tests (their arguments and return values need the full codec).
import _json
import _signal as signal


class _DecodeContext:
    strict = False
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def parse_constant(self, name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_DecodeContext())
jstr = _json.encode_basestring_ascii


def jloads(text):
    """json.loads for one document (str), via the C scanner."""
    n = len(text)
    i = 0
    while i < n and text[i] in " \t\r\n":
        i += 1
    try:
        obj, end = _scan(text, i)
    except StopIteration:
        raise ValueError("invalid JSON") from None
    while end < n and text[end] in " \t\r\n":
        end += 1
    if end != n:
        raise ValueError("extra data after JSON")
    return obj


def jdumps(obj):
    """JSON (ASCII) of the harness's own flat messages: str, int, float, bool, None, flat dicts/lists of them."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        return jstr(obj)
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, float):
        return float.__repr__(obj) if obj == obj and obj not in (float("inf"), float("-inf")) else "null"
    if isinstance(obj, dict):
        return "{" + ",".join(jstr(str(k)) + ":" + jdumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(jdumps(v) for v in obj) + "]"
    raise TypeError(f"cannot encode {type(obj).__name__}")


RESULT_FD = os.dup(1)
HARNESS_ERR_FD = os.dup(2)  # the harness's own diagnostics (a crash traceback) for the host
# The harness's own stdout/stderr now point at /dev/null: a stray print cannot corrupt the stream.
_devnull = os.open("/dev/null", os.O_RDWR)
os.dup2(_devnull, 1)
os.dup2(_devnull, 2)
os.close(_devnull)

STDERR_KEEP = 8192  # bytes of a test's stderr kept (the tail), for error messages
TB_LINES = 5
PROGRAM_FILE = "<solution>"
PREAMBLE_FILE = "<preamble>"
TEST_FILE = "<test>"

# Stdlib modules that may be imported once in the harness (before forking the tests) when the
# program or the preamble imports them: they come from the read-only /usr and have no side
# effects at import. Anything else is imported by the program itself, in its child.
PRELOADABLE = frozenset(
    """abc array bisect calendar cmath collections copy dataclasses datetime decimal enum
    fractions functools heapq io itertools json math numbers operator queue random re
    statistics string struct sys textwrap time typing""".split()
)


def emit(obj):
    data = (jdumps(obj) + "\n").encode("ascii")
    view = memoryview(data)
    while view:
        try:
            n = os.write(RESULT_FD, view)
        except InterruptedError:
            continue
        view = view[n:]


def _prctl():
    """libc's prctl through _ctypes alone (the `ctypes` package costs ~1 ms more to import)."""
    try:
        import _ctypes

        class c_int(_ctypes._SimpleCData):
            _type_ = "i"

        class Lib:
            _handle = _ctypes.dlopen(None, os.RTLD_NOW)

        class Fn(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = c_int

        return Fn(("prctl", Lib()))
    except Exception:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl


def set_nondumpable(prctl):
    """PR_SET_DUMPABLE 0: /proc/<pid>/{fd,mem,maps,...} become root-owned and ptrace is refused,
    so a test (same uid) cannot reach the harness's result pipe or memory."""
    return prctl(4, 0, 0, 0, 0) == 0 and prctl(3, 0, 0, 0, 0) == 0


def set_subreaper(prctl):
    return prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def site_lite(paths):
    """The harness runs with -S (no `site`: ~4 ms less start-up per sandbox). What programs need of
    it: the interpreter's normal sys.path (computed by the host with site enabled; .pth files are
    not executed) and the builtins exit/quit/help/copyright/credits/license."""
    if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
        sys.path[:] = [p for p in paths if p]
    try:
        import _sitebuiltins

        builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
        builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
        builtins.help = _sitebuiltins._Helper()
        builtins.copyright = _sitebuiltins._Printer("copyright", sys.copyright)
        builtins.credits = _sitebuiltins._Printer("credits", "Thanks to CWI, CNRI, BeOpen.com, Zope Corporation and a cast of thousands\nfor supporting Python development.  See www.python.org for more information.")
        builtins.license = _sitebuiltins._Printer("license", "See https://www.python.org/psf/license/")
    except Exception:
        pass


def tail_lines(text, n=TB_LINES):
    lines = text.rstrip("\n").split("\n")
    return "\n".join(lines[-n:])


def decode(b):
    return b.decode("utf-8", "replace")


def preload_for(source):
    """Imports (in the harness) the PRELOADABLE modules that `source` imports at line starts."""
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("import "):
            names = line[7:].split(";")[0].split(",")
        elif line.startswith("from "):
            names = line[5:].split(" ", 1)[:1]
        else:
            continue
        for name in names:
            parts = name.strip().split()
            top = parts[0].split(".")[0] if parts else ""
            if top in PRELOADABLE and top not in sys.modules:
                try:
                    __import__(top)
                except Exception:
                    pass


# ---------------------------------------------------------------------------------------------
# The child: runs the program on one test, reports through the record pipe, and _exits.

MEM_RECORD = b'{"s":"memory"}\n'
FAIL_RECORD = b'{"s":"exc","error":"the test wrapper failed to report the exception"}\n'


def child_setup(limits, fds, raw):
    in_r, out_w, err_w, rec_w = fds
    os.setpgid(0, 0)
    cpu = max(1, -(-int(limits["timeMs"]) // 1000))
    mem = int(limits["memoryMb"]) * 1024 * 1024

    def lower(res, value):
        _, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(res, (value, value))

    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    hard = cpu + 1 if hard == resource.RLIM_INFINITY else min(hard, cpu + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (min(cpu, hard), hard))
    lower(resource.RLIMIT_AS, mem)
    lower(resource.RLIMIT_FSIZE, int(limits["fileSizeBytes"]))
    lower(resource.RLIMIT_NOFILE, int(limits["openFiles"]))
    lower(resource.RLIMIT_CORE, 0)
    os.dup2(in_r, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    keep = 3
    if rec_w is not None:
        os.dup2(rec_w, 3)
        keep = 4
    os.closerange(keep, 1 << 16)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if raw:
        return
    import io

    sys.stdin = sys.__stdin__ = io.open(0, "r", encoding="utf-8", errors="surrogateescape", closefd=False)
    sys.stdout = sys.__stdout__ = io.open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)
    sys.stderr = sys.__stderr__ = io.open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
    if "random" in sys.modules:
        sys.modules["random"].seed()


def write_record(obj):
    try:
        data = (jdumps(obj) + "\n").encode("ascii")
    except MemoryError:
        data = MEM_RECORD
    except Exception:
        data = FAIL_RECORD
    view = memoryview(data)
    while view:
        view = view[os.write(3, view):]


def format_exc(e, skip_frames):
    import linecache
    import traceback

    for name, text in SOURCES.items():
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    tb = e.__traceback__
    for _ in range(skip_frames):
        if tb is not None:
            tb = tb.tb_next
    return tail_lines("".join(traceback.format_exception(type(e), e, tb)))


def finish_threads():
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:
            pass


def flush_std():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except BaseException:
            pass


class MissingCallable(Exception):
    pass


def resolve_callable(ns, name):
    """A top-level function `name`, else the method `name` of `Solution()`."""
    f = ns.get(name)
    if f is not None and callable(f) and not isinstance(f, type):
        return f
    sol = ns.get("Solution")
    if isinstance(sol, type) and hasattr(sol, name):
        return getattr(sol(), name)
    if f is not None and callable(f):
        return f
    raise MissingCallable(f"the program defines neither a function {name!r} nor a method Solution.{name}")


# Bound at import, before any program runs: a program that replaces builtins.exec/compile/repr
# does not silently disable the test code run after it in the same process.
_exec, _compile, _repr = exec, compile, repr


def child_main(test, prog_code, pre_code, limits):
    kind = test["kind"]
    cap = int(limits["outputBytes"])
    ns = {"__name__": "__main__" if kind == "stdio" else "solution", "__builtins__": builtins}
    try:
        try:
            if pre_code is not None:
                _exec(pre_code, ns)
            _exec(prog_code, ns)
            if kind == "call":
                fn = resolve_callable(ns, test["fnName"])
                ret = fn(*test["args"])
                flush_std()
                try:
                    text = _repr(ret)
                except Exception as e:
                    text = f"<repr failed: {type(e).__name__}>"
                if len(text) > cap:
                    text = text[:cap] + "..."
                rec = {"s": "ok", "repr": text}
                try:
                    js = sys.modules["json"].dumps(ret, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
                    if len(js.encode("utf-8")) > cap:
                        rec = {"s": "olim", "error": f"the returned value's JSON exceeds the output limit of {cap} bytes"}
                    else:
                        rec["ret"] = js
                except (TypeError, ValueError, RecursionError):
                    pass
            elif kind == "script":
                SOURCES[TEST_FILE] = test["code"]
                _exec(_compile(test["code"], TEST_FILE, "exec", dont_inherit=True), ns)
                rec = {"s": "ok"}
            else:
                rec = {"s": "ok"}
            finish_threads()
            flush_std()
            write_record(rec)
        except SystemExit as e:
            finish_threads()
            flush_std()
            code = e.code
            if code is None or code == 0:
                write_record({"s": "exit0"})
            else:
                if not isinstance(code, int):
                    try:
                        sys.stderr.write(f"{code}\n")
                        sys.stderr.flush()
                    except BaseException:
                        pass
                write_record({"s": "exit", "code": code if isinstance(code, int) else 1, "error": f"SystemExit: {code!r}"[:2000]})
        except MemoryError:
            os.write(3, MEM_RECORD)
        except MissingCallable as e:
            write_record({"s": "exc", "etype": "NameError", "error": f"NameError: {e}"})
        except BaseException as e:
            flush_std()
            try:
                write_record({"s": "exc", "etype": type(e).__name__, "error": format_exc(e, 1)})
            except MemoryError:
                os.write(3, MEM_RECORD)
    except MemoryError:
        try:
            os.write(3, MEM_RECORD)
        except BaseException:
            pass
    except BaseException:
        pass
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# The parent side of one test: feed stdin, collect output with caps, enforce the wall limit.

PIDNS = False
SOURCES = {}  # file name -> source text, for tracebacks (put into linecache when one is formatted)


def kill_strays(pid):
    """After a test: kill everything the test left behind."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if PIDNS:
        # Inside our PID namespace kill(-1) reaches every process but init (bwrap) and us.
        for _ in range(500):
            reap_any()
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                return
            except OSError:
                return
            reap_any()
            time.sleep(0.001)
    else:
        # No PID namespace (sandbox "none"): we are a child subreaper; kill what was re-parented to us.
        me = os.getpid()
        for _ in range(200):
            kids = children_of(me)
            if not kids:
                return
            for k in kids:
                try:
                    os.killpg(k, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.002)
            reap_any()


def reap_any():
    while True:
        try:
            p, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if p == 0:
            return


def children_of(ppid):
    try:
        with open(f"/proc/{ppid}/task/{ppid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        if len(rest) > 1 and int(rest[1]) == ppid:
            out.append(int(name))
    return out


def run_child(limits, wall_s, stdin_bytes, out_cap, err_cap, rec_cap, target):
    """Forks `target()` (which never returns) and supervises it. Returns a dict of observations."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if rec_cap:
        rec_r, rec_w = os.pipe()
    else:
        rec_r = rec_w = None
    t0 = time.monotonic()
    for attempt in range(20):
        try:
            pid = os.fork()
            break
        except BlockingIOError:  # EAGAIN: processes of the previous test not reaped yet
            if attempt == 19:
                for fd in (in_r, in_w, out_r, out_w, err_r, err_w, rec_r, rec_w):
                    if fd is not None:
                        os.close(fd)
                raise
            reap_any()
            time.sleep(0.005 * (attempt + 1))
    if pid == 0:
        try:
            for fd in (in_w, out_r, err_r, rec_r, RESULT_FD):
                if fd is not None:
                    os.close(fd)
            child_setup(limits, (in_r, out_w, err_w, rec_w), rec_cap == 0)
            target()
        except BaseException:
            pass
        os._exit(121)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    for fd in (in_r, out_w, err_w, rec_w):
        if fd is not None:
            os.close(fd)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None

    out = bytearray()
    err = bytearray()
    rec = bytearray()
    killed = None  # "time" | "output" | "record"
    stdin_view = memoryview(stdin_bytes)
    poller = select.poll()
    readers = {out_r: "out", err_r: "err"}
    if rec_r is not None:
        readers[rec_r] = "rec"
    for fd in readers:
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    if stdin_view:
        os.set_blocking(in_w, False)
        poller.register(in_w, select.POLLOUT)
    else:
        os.close(in_w)
        in_w = None
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    deadline = t0 + wall_s
    exited_at = None
    status = None
    ru = None

    def kill():
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def read_fd(fd):
        nonlocal killed
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            poller.unregister(fd)
            del readers[fd]
            os.close(fd)
            return False
        which = readers[fd]
        if which == "out":
            room = out_cap - len(out)
            out.extend(chunk[: max(room, 0)])
            if len(chunk) > room and killed is None:
                killed = "output"
                kill()
        elif which == "err":
            err.extend(chunk)
            if len(err) > 2 * err_cap:
                del err[: len(err) - err_cap]
        else:
            room = rec_cap - len(rec)
            rec.extend(chunk[: max(room, 0)])
            if len(chunk) > room and killed is None:
                killed = "record"
                kill()
        return True

    while exited_at is None:
        now = time.monotonic()
        if now >= deadline:
            if killed is None:
                killed = "time"
            kill()
            break
        try:
            events = poller.poll(max(1, int((deadline - now) * 1000) + 1) if pidfd is not None else 10)
        except InterruptedError:
            continue
        for fd, ev in events:
            if fd == pidfd:
                exited_at = time.monotonic()
            elif fd == in_w:
                if ev & (select.POLLERR | select.POLLHUP):
                    poller.unregister(in_w)
                    os.close(in_w)
                    in_w = None
                    continue
                try:
                    n = os.write(in_w, stdin_view[:65536])
                    stdin_view = stdin_view[n:]
                except BlockingIOError:
                    pass
                except OSError:
                    stdin_view = stdin_view[:0]
                if not stdin_view:
                    poller.unregister(in_w)
                    os.close(in_w)
                    in_w = None
            elif fd in readers:
                read_fd(fd)
        if killed is not None:
            break
        if pidfd is None:
            p, st, r = os.wait4(pid, os.WNOHANG)
            if p == pid:
                exited_at = time.monotonic()
                status, ru = st, r
    if exited_at is None:
        exited_at = time.monotonic()
    if in_w is not None:
        os.close(in_w)
    # Everything the test started dies now; then collect the child's exit status and usage.
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if status is None:
        while True:
            try:
                _, status, ru = os.wait4(pid, 0)
                break
            except InterruptedError:
                continue
    kill_strays(pid)
    if pidfd is not None:
        os.close(pidfd)
    # Drain what is left in the pipes (every writer is dead now; bounded in time regardless).
    drain_until = time.monotonic() + 0.2
    while readers:
        left = drain_until - time.monotonic()
        if left <= 0:
            break
        try:
            ready = select.select(list(readers), [], [], left)[0]
        except InterruptedError:
            continue
        if not ready:
            break
        for fd in ready:
            read_fd(fd)
    for fd in list(readers):
        os.close(fd)
    if len(err) > err_cap:
        del err[: len(err) - err_cap]
    cpu_s = (ru.ru_utime + ru.ru_stime) if ru is not None else None
    if status is None:
        status = 0
    return {
        "killed": killed,
        "status": status,
        "cpu_s": cpu_s,
        "wall_ms": (exited_at - t0) * 1000.0,
        "out": bytes(out),
        "err": bytes(err),
        "rec": bytes(rec),
    }


_SIGNAMES = {getattr(signal, n): n for n in dir(signal) if n.startswith("SIG") and not n.startswith("SIG_") and n not in ("SIGIOT", "SIGPOLL", "SIGCLD")}


def signame(sig):
    return _SIGNAMES.get(sig, f"signal {sig}")


MEMORY_HINTS = ("MemoryError", "Cannot allocate memory", "out of memory", "std::bad_alloc", "memory allocation failed")


def verdict(obs, kind, limits):
    """Turns the observations of one test into a result line (without "t"/"i")."""
    time_ms = round(obs["wall_ms"], 1)
    stdout = decode(obs["out"])
    res = {"timeMs": time_ms, "stdout": stdout}
    err_tail = tail_lines(decode(obs["err"]), 8)
    tlim = int(limits["timeMs"])
    if obs["killed"] == "output":
        res.update(status="output_limit", error=f"output exceeded the limit of {limits['outputBytes']} bytes")
        return res
    if obs["killed"] == "record":
        res.update(status="output_limit", error="the returned value or the error is larger than the output limit")
        return res
    if obs["killed"] == "time":
        res.update(status="time_limit", error=f"wall-clock time limit exceeded (killed after {time_ms:.0f} ms; limit {tlim} ms CPU)")
        return res
    st = obs["status"]
    cpu = obs["cpu_s"]
    if os.WIFSIGNALED(st):
        sig = os.WTERMSIG(st)
        if sig in (signal.SIGXCPU,) or (sig == signal.SIGKILL and cpu is not None and cpu * 1000 >= tlim):
            res.update(status="time_limit", error=f"CPU time limit exceeded ({signame(sig)})")
        elif any(h in err_tail for h in MEMORY_HINTS):
            res.update(status="memory_limit", error=f"killed by {signame(sig)} while out of memory (limit {limits['memoryMb']} MiB)\n{err_tail}".rstrip())
        elif sig == signal.SIGXFSZ:
            res.update(status="runtime_error", error=f"file size limit exceeded ({signame(sig)})")
        else:
            res.update(status="runtime_error", error=f"killed by {signame(sig)}" + (f"\n{err_tail}" if err_tail else ""))
        return res
    code = os.WEXITSTATUS(st) if os.WIFEXITED(st) else -1
    rec = None
    if code == 0 and obs["rec"]:
        try:
            # The wrapper writes one record, last; a program writing its own "records" first does not win.
            line = obs["rec"].rstrip(b"\n").rsplit(b"\n", 1)[-1]
            rec = jloads(decode(line))
            if not isinstance(rec, dict):
                rec = None
        except Exception:
            rec = None
    if cpu is not None and cpu * 1000 > tlim:
        res.update(status="time_limit", error=f"CPU time limit exceeded ({cpu * 1000:.0f} ms > {tlim} ms)")
        return res
    if code != 0:
        res.update(status="runtime_error", error=f"exit code {code}" + (f"\n{err_tail}" if err_tail else ""))
        return res
    if rec is None:
        if kind == "stdio":  # os._exit(0) without a record
            res.update(status="ok")
        else:
            res.update(status="runtime_error", error="the program exited before the test finished" + (f"\n{err_tail}" if err_tail else ""))
        return res
    s = rec.get("s")
    if s == "ok":
        res["status"] = "ok"
        if kind == "call":
            r = rec.get("repr")
            res["returnedRepr"] = r if isinstance(r, str) else ""
            if isinstance(rec.get("ret"), str):
                try:
                    res["returned"] = jloads(rec["ret"])
                except Exception:
                    pass
    elif s == "exit0":
        if kind == "stdio":
            res["status"] = "ok"
        else:
            res.update(status="runtime_error", error="SystemExit: 0 (the program exited before the test finished)")
    elif s == "exit":
        e = rec.get("error")
        res.update(status="runtime_error", error=(e if isinstance(e, str) else "SystemExit") + (f"\n{err_tail}" if err_tail else ""))
    elif s == "memory":
        res.update(status="memory_limit", error=f"MemoryError (limit {limits['memoryMb']} MiB)")
    elif s == "olim":
        e = rec.get("error")
        res.update(status="output_limit", error=e if isinstance(e, str) else "output limit exceeded")
    else:
        e = rec.get("error")
        res.update(status="runtime_error", error=e if isinstance(e, str) else "runtime error")
    return res


def wall_seconds(limits):
    return (2 * int(limits["timeMs"]) + 500) / 1000.0


# ---------------------------------------------------------------------------------------------


def apps_function_wrap(code):
    """The APPS reference harness runs a standard-input program as the body of `def code():`
    (top-level imports stay outside). Programs written for it may `return` at the top level or
    use `nonlocal` on top-level names - a SyntaxError as a plain script. Such a program gets a
    second chance in that form, so that it scores as it does in the reference harness; any
    other program runs unchanged, as a script."""
    body, started = [], False
    for line in code.split("\n"):
        is_import = line.startswith("from ") or line.startswith("import ")
        if not is_import and not started:
            body.append("def code():")
            started = True
        body.append("\t" + line if started else line)
    return "\n".join(body) + "\ncode()\n"


def run_tests(req):
    limits = req["limits"]
    code = req["code"]
    preamble = req.get("preamble")
    try:
        try:
            prog_code = compile(code, PROGRAM_FILE, "exec", dont_inherit=True)
        except SyntaxError as first:
            if not all(t["kind"] == "stdio" for t in req["tests"]):
                raise
            try:
                wrapped = apps_function_wrap(code)
                prog_code = compile(wrapped, PROGRAM_FILE, "exec", dont_inherit=True)
                code = wrapped
            except SyntaxError:
                raise first from None
        pre_code = compile(preamble, PREAMBLE_FILE, "exec", dont_inherit=True) if preamble else None
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as e:
        import traceback

        msg = tail_lines("".join(traceback.format_exception_only(type(e), e)), 8)
        emit({"t": "compiled", "error": msg})
        return
    emit({"t": "compiled", "error": None})
    SOURCES[PROGRAM_FILE] = code
    if preamble:
        SOURCES[PREAMBLE_FILE] = preamble
        preload_for(preamble)
    preload_for(code)
    if any(t["kind"] == "call" for t in req["tests"]):
        import json  # noqa: F401  (argument/return-value codec of call tests, shared by the children)
    out_cap = int(limits["outputBytes"])
    rec_cap = 2 * out_cap + 65536
    wall = wall_seconds(limits)
    for i, test in enumerate(req["tests"]):
        kind = test["kind"]
        stdin = test["input"].encode("utf-8", "surrogateescape") if kind == "stdio" else b""
        try:
            obs = run_child(limits, wall, stdin, out_cap, STDERR_KEEP, rec_cap, lambda: child_main(test, prog_code, pre_code, limits))
            line = verdict(obs, kind, limits)
        except Exception as e:  # the harness could not run this test (e.g. fork failed)
            line = {"status": "runtime_error", "timeMs": 0.0, "stdout": "", "error": f"the test harness could not run this test: {type(e).__name__}: {e}"}
        line["t"] = "r"
        line["i"] = i
        emit(line)


def run_raw(req):
    limits = req["limits"]
    cwd = os.getcwd()
    for name, content in (req.get("files") or {}).items():
        with open(os.path.join(cwd, name), "w", encoding="utf-8") as f:
            f.write(content)
    script = os.path.join(cwd, req["scriptName"])
    with open(script, "w", encoding="utf-8") as f:
        f.write(req["script"])
    python = req["python"]
    cap = int(limits["outputBytes"])

    def target():
        os.execv(python, [python, "-s", "-E", script])

    obs = run_child(limits, int(limits["timeMs"]) / 1000.0, req["stdin"].encode("utf-8", "surrogateescape"), cap, cap, 0, target)
    st = obs["status"]
    timed_out = obs["killed"] == "time"
    exit_code = None
    sig = None
    if obs["killed"] is not None:
        sig = "SIGKILL"
    elif os.WIFSIGNALED(st):
        sig = signame(os.WTERMSIG(st))
        if os.WTERMSIG(st) == signal.SIGXCPU:
            timed_out = True
    else:
        exit_code = os.WEXITSTATUS(st)
    if obs["cpu_s"] is not None and obs["cpu_s"] * 1000 > int(limits["timeMs"]):
        timed_out = True
    err = obs["err"]
    emit(
        {
            "t": "raw",
            "exitCode": exit_code,
            "signal": sig,
            "stdout": decode(obs["out"]),
            "stderr": decode(err),
            "timedOut": timed_out,
            "outputTruncated": obs["killed"] == "output",
        }
    )


def main():
    global PIDNS
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    del chunks
    req = jloads(data.decode("utf-8", "surrogateescape"))
    del data
    fd = os.open("/dev/null", os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    prctl = _prctl()
    set_nondumpable(prctl)
    if "sysPath" in req:
        site_lite(req["sysPath"])
    # In bubblewrap (--as-pid-1) the harness is PID 1 of a fresh PID namespace: the init of the
    # sandbox. Signals from processes inside the namespace reach an init only for signals it has a
    # handler for, and the harness installs none (SIGINT is ignored below), so a program can
    # neither kill nor stop it; orphans are re-parented to it (reaped after each test); when it
    # exits the kernel kills everything left in the namespace.
    PIDNS = bool(req.get("pidns")) and os.getpid() == 1
    if not PIDNS:
        set_subreaper(prctl)
    nproc = req.get("nproc")
    if nproc:
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
            v = int(nproc) if hard == resource.RLIM_INFINITY else min(int(nproc), hard)
            resource.setrlimit(resource.RLIMIT_NPROC, (v, v))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    emit({"t": "hello", "pid": os.getpid(), "pidns": PIDNS})
    if req.get("mode") == "raw":
        run_raw(req)
    else:
        run_tests(req)
    emit({"t": "done"})


try:
    main()
except BaseException:
    import traceback

    os.write(HARNESS_ERR_FD, traceback.format_exc().encode("utf-8", "replace"))
    os._exit(1)
os._exit(0)  # skip interpreter finalisation; everything was written with os.write
