"""Block-level execution trace of one program on one test (LDB-style feedback).

Reads a JSON request on stdin:
    {"code": str, "test": TestCase, "preamble": str|null,
     "max_blocks": int, "max_value_chars": int, "max_output_bytes": int,
     optional: "max_steps", "time_budget_ms", "hard_deadline_ms", "keep_first", "keep_last",
               "max_vars", "max_json_bytes"}
where TestCase is {"kind": "stdio", "input"} | {"kind": "call", "fnName", "args"} |
{"kind": "script", "code"}; writes one JSON object on stdout (see `_emit`).

Basic blocks are built from the AST (not from `dis`): block boundaries are then stable
source-line ranges an LLM can read, independent of the bytecode layout of the Python
version. A block is a maximal run of simple statements of one scope (module, function or
class body), ended by
  * the header of an `if` / `with` / `match` / `try` (kept as the block's last line: the
    condition is evaluated at the end of the straight-line run, as in a CFG),
  * return / raise / break / continue (kept as the last statement),
  * the start of any compound statement.
Loop heads (`for` target/iterable, `while` condition) are blocks of their own (they run
once per iteration), and every body (if/elif/else, loop body, loop else, try body, each
except handler with its header, finally, match case with its pattern, function and class
bodies) starts a new block. `def`/`class` header lines belong to no block (they only bind
names, which the snapshots skip). A call into the program's own functions opens the
callee's blocks in a new frame (shown with a greater depth); the caller's block stays open
and is closed when the caller moves on.

Execution: the program runs in a worker thread under sys.settrace; only frames whose code
comes from the program (file name "<program>") are traced, and comprehensions, lambdas and
generator expressions are not traced on their own (their effect is seen in the enclosing
block). A line event opens a new block visit when it maps to a block other than the
frame's current one, or when a backward jump lands on the first line of the current block
(a loop whose body is one block, `for x in y: s += x` on one line). Locals are
snapshotted at block entry (bounded reprs) and the changed variables are recorded at
block exit (with element-level changes `a[i]=v` / `d[k]=v` for lists and dicts whose
shown repr did not change).

Bounds: the first `keep_first` and the last `keep_last` visits of each block are kept
(with the count of visits skipped in between), at most `max_blocks` entries overall, a
step budget (line events) and a time budget stop a hanging program (the trace so far is
reported with `stopped`), and a hard deadline (faulthandler) dumps the stack to stderr and
exits if the program blocks inside a C call. stdout/stderr of the program are captured
(the tail of stdout, bounded); stdin is the test input (sys.stdin and fd 0); sys.exit /
os._exit end the run normally.

Limitations: lines shared by a header and its body (`if x: y = 1` on one line) count as
the header's block; the trace covers the main thread only; a repr that hides a change
(same shown text, nested mutation in a long list) is not reported as changed.
"""

import ast
import collections
import faulthandler
import io
import json
import os
import sys
import threading
import time
import types

PROG = "<program>"
TEST = "<test>"
PRE = "<preamble>"
_SKIP_CODE = {"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<lambda>"}
_GEN_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
_SKIP_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
               types.MethodWrapperType, types.WrapperDescriptorType, type)
_SHADOW_MAX = 4096


class _Stop(BaseException):
    """Raised into the program when a budget is exhausted (not catchable by `except Exception`)."""


# ---------------------------------------------------------------------------------------------
# Basic blocks.

def build_blocks(tree, lines):
    """Returns (blocks, maps): blocks as dicts {id, start_line, end_line, code, func, scope},
    maps: scope key -> {line: (block id, statement index)}."""
    raw = []  # [scope key, func name, [(start, end), ...]]

    def scope_key(node):
        decos = getattr(node, "decorator_list", None) or []
        return min([node.lineno] + [d.lineno for d in decos])

    def walk(stmts, key, fname, lead=None):
        run = [key, fname, [lead] if lead else []]

        def close():
            nonlocal run
            if run[2]:
                raw.append(run)
            run = [key, fname, []]

        for s in stmts:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                close()
                walk(s.body, scope_key(s), s.name)
            elif isinstance(s, ast.If):
                run[2].append((s.lineno, s.test.end_lineno))
                close()
                walk(s.body, key, fname)
                if s.orelse:
                    walk(s.orelse, key, fname)
            elif isinstance(s, (ast.For, ast.AsyncFor)):
                close()
                raw.append([key, fname, [(s.lineno, s.iter.end_lineno)]])
                walk(s.body, key, fname)
                if s.orelse:
                    walk(s.orelse, key, fname)
            elif isinstance(s, ast.While):
                close()
                raw.append([key, fname, [(s.lineno, s.test.end_lineno)]])
                walk(s.body, key, fname)
                if s.orelse:
                    walk(s.orelse, key, fname)
            elif isinstance(s, (ast.With, ast.AsyncWith)):
                run[2].append((s.lineno, max(i.context_expr.end_lineno for i in s.items)))
                close()
                walk(s.body, key, fname)
            elif isinstance(s, (ast.Try, getattr(ast, "TryStar", ast.Try))):
                run[2].append((s.lineno, s.lineno))
                close()
                walk(s.body, key, fname)
                for h in s.handlers:
                    walk(h.body, key, fname, (h.lineno, h.type.end_lineno if h.type else h.lineno))
                if s.orelse:
                    walk(s.orelse, key, fname)
                if s.finalbody:
                    walk(s.finalbody, key, fname)
            elif isinstance(s, getattr(ast, "Match", ())):
                run[2].append((s.lineno, s.subject.end_lineno))
                close()
                for c in s.cases:
                    end = (c.guard or c.pattern).end_lineno
                    walk(c.body, key, fname, (c.pattern.lineno, end))
            else:
                run[2].append((s.lineno, s.end_lineno))
                if isinstance(s, (ast.Return, ast.Raise, ast.Break, ast.Continue)):
                    close()
        close()

    walk(tree.body, 0, "<module>")
    raw.sort(key=lambda r: (r[2][0][0], r[2][0][1]))
    blocks, maps = [], {}
    for i, (key, fname, spans) in enumerate(raw, 1):
        start = min(s for s, _ in spans)
        end = max(e for _, e in spans)
        blocks.append({"id": i, "start_line": start, "end_line": end, "func": fname,
                       "code": "\n".join(lines[start - 1:end])})
        m = maps.setdefault(key, {})
        for idx, (s, e) in enumerate(spans):
            for ln in range(s, e + 1):
                m.setdefault(ln, (i, idx))
    return blocks, maps


# ---------------------------------------------------------------------------------------------
# Bounded reprs and snapshots.

class Reprs:
    def __init__(self, max_chars):
        self.max = max(8, max_chars)

    def __call__(self, v):
        try:
            r = self._r(v, self.max, 0)
        except BaseException as e:  # noqa: BLE001 - a user __repr__ may do anything
            if isinstance(e, _Stop):
                raise
            r = "<repr failed: %s>" % type(e).__name__
        if len(r) > self.max:
            r = r[: self.max - 1] + "\u2026"
        return r

    def _seq(self, items, n, budget, depth, opn, cls, tail_ok):
        parts, used, shown = [], len(opn) + len(cls), 0
        full_budget = budget
        if n > 2:
            budget = max(8, budget - 8 - len(str(n)))  # room for " (len n)"
        head_budget = budget * 0.65 if tail_ok else budget
        for x in items:
            if used >= head_budget:
                break
            s = self._r(x, max(4, budget - used), depth + 1)
            if parts and used + len(s) > head_budget:
                break
            parts.append(s)
            used += len(s) + 2
            shown += 1
        if shown >= n:
            return opn + ", ".join(parts) + cls
        tail = []
        if tail_ok:
            seq = items if isinstance(items, (list, tuple)) else None
            j = n - 1
            while seq is not None and j >= shown and used < budget:
                s = self._r(seq[j], max(4, budget - used), depth + 1)
                if used + len(s) > budget:
                    break
                tail.append(s)
                used += len(s) + 2
                j -= 1
            tail.reverse()
            if len(tail) + shown >= n:
                return opn + ", ".join(parts + tail) + cls
        suffix = " (len %d)" % n
        while True:
            r = opn + ", ".join(parts + ["\u2026"] + tail) + cls + suffix
            if len(r) <= full_budget or (not tail and len(parts) <= 1):
                return r
            if tail:
                tail.pop(0)
            else:
                parts.pop()

    def _r(self, v, budget, depth):
        t = type(v)
        if t is int:
            if -10**30 < v < 10**30:
                return repr(v)
            return "<int of %d bits>" % v.bit_length() if v.bit_length() > 12000 else repr(v)
        if v is None or t is bool or t is float or t is complex:
            return repr(v)
        if t is str or t is bytes:
            if len(v) <= budget:
                return repr(v)
            k = max(2, budget // 2)
            return repr(v[:k]) + "\u2026" + repr(v[-max(1, budget // 4):]) + " (len %d)" % len(v)
        if depth > 4:
            return "\u2026"
        if isinstance(v, (list, tuple, collections.deque)):
            name = "" if t in (list, tuple) else t.__name__
            if isinstance(v, collections.deque):
                v = list(v) if len(v) <= 64 else list(v)[:32] + list(v)[-32:]
            opn, cls = ("[", "]") if isinstance(v, list) else ("(", ",)" if len(v) == 1 else ")")
            return (name + "(" if name else "") + self._seq(v, len(v), budget, depth, opn, cls, True) + (")" if name else "")
        if isinstance(v, (set, frozenset)):
            if not v:
                return t.__name__ + "()"
            body = self._seq(v, len(v), budget, depth, "{", "}", False)
            return body if t is set else t.__name__ + "(" + body + ")"
        if isinstance(v, dict):
            items = []
            used = 2
            n = len(v)
            if n > 2:
                budget = max(8, budget - 10 - len(str(n)))
            for k, x in v.items():
                if used >= budget:
                    break
                ks = self._r(k, max(4, (budget - used) // 2), depth + 1)
                xs = self._r(x, max(4, budget - used - len(ks)), depth + 1)
                items.append(ks + ": " + xs)
                used += len(ks) + len(xs) + 4
            body = "{" + ", ".join(items) + ("" if len(items) >= n else ", \u2026} (len %d)" % n)
            if len(items) >= n:
                body += "}"
            return body if t is dict else t.__name__ + "(" + body + ")"
        rep = getattr(t, "__repr__", None)
        if rep is object.__repr__:
            d = getattr(v, "__dict__", None)
            if isinstance(d, dict) and d:
                parts, used = [], len(t.__name__) + 2
                for k, x in list(d.items())[:8]:
                    if used >= budget:
                        parts.append("\u2026")
                        break
                    s = "%s=%s" % (k, self._r(x, max(4, budget - used), depth + 1))
                    parts.append(s)
                    used += len(s) + 2
                return "%s(%s)" % (t.__name__, ", ".join(parts))
            return "<%s>" % t.__name__
        r = repr(v)
        return r if len(r) <= budget else r[: max(1, budget - 1)] + "\u2026"


def _shadow(v):
    """A cheap copy of a container for element-level change detection."""
    t = type(v)
    try:
        if t is list and len(v) <= _SHADOW_MAX:
            if v and type(v[0]) is list and len(v) * len(v[0]) <= _SHADOW_MAX:
                return ("L2", tuple(tuple(r) if type(r) is list else r for r in v))
            return ("L", tuple(v))
        if t is dict and len(v) <= _SHADOW_MAX:
            return ("D", dict(v))
        if (t is set) and len(v) <= _SHADOW_MAX:
            return ("S", frozenset(v))
    except Exception:  # noqa: BLE001
        return None
    return None


# ---------------------------------------------------------------------------------------------
# Tracer.

class _Entry:
    __slots__ = ("seq", "block", "visit", "fid", "fseq", "func", "depth", "before", "after",
                 "returned", "raised", "closed")


class _Frame:
    __slots__ = ("fid", "map", "entry", "block", "first_line", "lasti", "snap", "fseq", "pending",
                 "depth", "func", "gen")


class Tracer:
    def __init__(self, req, blocks, maps, hidden):
        self.blocks = {b["id"]: b for b in blocks}
        self.maps = maps
        self.hidden = hidden  # name -> object from the preamble (not shown)
        self.repr = Reprs(int(req.get("max_value_chars") or 80))
        self.k_first = max(1, int(req.get("keep_first") or 3))
        self.k_last = max(1, int(req.get("keep_last") or 3))
        self.max_steps = int(req.get("max_steps") or 200_000)
        self.max_vars = int(req.get("max_vars") or 16)
        self.steps = 0
        self.seq = 0
        self.fids = 0
        self.visits = collections.Counter()
        self.first = collections.defaultdict(list)
        self.last = collections.defaultdict(lambda: collections.deque(maxlen=self.k_last))
        self.frames = {}
        self.stop_request = None  # set by the main thread ("time")
        self.deadline = float("inf")  # also checked here, in case the watchdog cannot run
        self.stopped = None
        self.last_line = None

    # snapshots: name -> (shown repr, shadow or None)
    def snapshot(self, frame):
        out = {}
        hidden = self.hidden if frame.f_code.co_name == "<module>" else None
        for name, v in list(frame.f_locals.items()):
            if name[:2] == "__" and name[-2:] == "__":
                continue
            if isinstance(v, _SKIP_TYPES) or getattr(type(v), "__module__", "") == "typing":
                continue
            if hidden is not None and name in hidden and hidden[name] is v:
                continue
            out[name] = (self.repr(v), _shadow(v))
            if len(out) >= 40:
                break
        return out

    def diff(self, before, after):
        ch = {}
        for name, (shown, sh) in after.items():
            old = before.get(name)
            if old is None or old[0] != shown:
                ch[name] = shown
                continue
            osh = old[1]
            if sh is None or osh is None or osh[0] != sh[0]:
                continue
            try:
                if osh[1] == sh[1]:
                    continue
            except Exception:  # noqa: BLE001
                continue
            ch.update(self._elem_diff(name, osh, sh))
        for name in before:
            if name not in after:
                ch[name] = "<unbound>"
        return ch

    def _elem_diff(self, name, osh, sh):
        out, more = {}, 0
        kind, a, b = sh[0], osh[1], sh[1]
        try:
            if kind in ("L", "L2"):
                for i, (x, y) in enumerate(zip(a, b)):
                    if x is not y and x != y:
                        if len(out) < 6:
                            out["%s[%d]" % (name, i)] = self.repr(list(y) if type(y) is tuple and kind == "L2" else y)
                        else:
                            more += 1
            elif kind == "D":
                for k in b:
                    if k not in a or (a[k] is not b[k] and a[k] != b[k]):
                        if len(out) < 6:
                            out["%s[%s]" % (name, self.repr(k))] = self.repr(b[k])
                        else:
                            more += 1
                for k in a:
                    if k not in b:
                        if len(out) < 6:
                            out["%s[%s]" % (name, self.repr(k))] = "<deleted>"
                        else:
                            more += 1
            elif kind == "S":
                out[name + " added"] = self.repr(set(b - a))
                out[name + " removed"] = self.repr(set(a - b))
        except Exception:  # noqa: BLE001
            return {name: "<changed>"}
        if more:
            out[name + "[\u2026]"] = "%d more changed" % more
        return out or {name: "<changed>"}

    def open(self, st, frame, bid):
        self.visits[bid] += 1
        e = _Entry()
        e.seq = self.seq
        self.seq += 1
        e.block, e.visit, e.fid, e.fseq = bid, self.visits[bid], st.fid, st.fseq
        st.fseq += 1
        e.func, e.depth = st.func, st.depth
        if st.snap is None:
            st.snap = self.snapshot(frame)
        e.before = st.snap
        e.after = None
        e.returned = e.raised = None
        e.closed = False
        if e.visit <= self.k_first:
            self.first[bid].append(e)
        else:
            self.last[bid].append(e)
        st.entry, st.block = e, bid
        st.first_line = self.blocks[bid]["start_line"]

    def close(self, st, frame):
        e = st.entry
        if e is None:
            return
        snap = self.snapshot(frame)
        e.after = self.diff(e.before, snap)
        e.closed = True
        st.snap = snap
        st.entry = None

    def stop(self, reason, frame):
        self.stopped = {"reason": reason, "steps": self.steps,
                        "line": frame.f_lineno if frame is not None and frame.f_code.co_filename == PROG else self.last_line}
        for f, st in list(self.frames.items()):
            try:
                self.close(st, f)
            except Exception:  # noqa: BLE001
                pass
        self.frames.clear()
        sys.settrace(None)
        raise _Stop()

    def global_trace(self, frame, event, arg):
        if event != "call":
            return None
        code = frame.f_code
        if code.co_filename != PROG or code.co_name in _SKIP_CODE:
            return None
        if self.stop_request:
            self.stop(self.stop_request, frame)
        st = _Frame()
        self.fids += 1
        st.fid = self.fids
        key = 0 if code.co_name == "<module>" else code.co_firstlineno
        st.map = self.maps.get(key, {})
        st.entry = None
        st.block = None
        st.first_line = None
        st.lasti = -1
        st.snap = None
        st.fseq = 0
        st.pending = None
        st.depth = len(self.frames)
        st.func = code.co_name
        st.gen = bool(code.co_flags & _GEN_FLAGS)
        self.frames[frame] = st
        return self.local_trace

    def local_trace(self, frame, event, arg):
        st = self.frames.get(frame)
        if st is None:
            return None
        if event == "line":
            self.steps += 1
            if self.steps > self.max_steps:
                self.stop("steps", frame)
            if self.stop_request:
                self.stop(self.stop_request, frame)
            if not self.steps & 1023 and time.monotonic() > self.deadline:
                self.stop("time", frame)
            line = frame.f_lineno
            self.last_line = line
            st.pending = None
            loc = st.map.get(line)
            lasti = frame.f_lasti
            if loc is not None:
                bid, idx = loc
                if st.entry is None or bid != st.block or (
                        idx == 0 and line == st.first_line and lasti <= st.lasti):
                    self.close(st, frame)
                    self.open(st, frame, bid)
            st.lasti = lasti
        elif event == "exception":
            st.pending = getattr(arg[0], "__name__", "exception")
        elif event == "return":
            e = st.entry
            self.close(st, frame)
            if e is not None:
                if st.pending is not None:
                    e.raised = st.pending
                elif st.func != "<module>" and not (st.gen and arg is None):
                    e.returned = ("yields " if st.gen else "") + self.repr(arg)
            self.frames.pop(frame, None)
        return self.local_trace

    def entries(self, max_blocks):
        kept = [e for lst in self.first.values() for e in lst]
        kept += [e for dq in self.last.values() for e in dq]
        kept.sort(key=lambda e: e.seq)
        dropped = len(kept) > max_blocks
        if dropped:
            h = max_blocks // 2
            kept = kept[:h] + kept[len(kept) - (max_blocks - h):]
        out, prev_seq, prev_fseq = [], -1, {}
        for e in kept:
            d = {"block": e.block, "visit": e.visit, "total_visits": self.visits[e.block],
                 "func": e.func, "depth": e.depth}
            if e.seq - prev_seq - 1 > 0:
                d["skipped_before"] = e.seq - prev_seq - 1
            prev_seq = e.seq
            if prev_fseq.get(e.fid) != e.fseq - 1:
                d["locals_before"] = self._shown(e.before)
            prev_fseq[e.fid] = e.fseq
            d["locals_after"] = self._cap(e.after or {})
            if not e.closed:
                d["incomplete"] = True
            if e.returned is not None:
                d["returned"] = e.returned
            if e.raised is not None:
                d["raised"] = e.raised
            out.append(d)
        return out, dropped or self.seq > len(kept)

    def _shown(self, snap):
        return self._cap({k: v[0] for k, v in snap.items()})

    def _cap(self, d):
        if len(d) <= self.max_vars:
            return dict(d)
        items = list(d.items())
        out = dict(items[: self.max_vars])
        out["\u2026"] = "%d more" % (len(items) - self.max_vars)
        return out


# ---------------------------------------------------------------------------------------------
# I/O capture.

class _Sink(io.RawIOBase):
    def __init__(self, keep):
        super().__init__()
        self.keep = max(0, keep)
        self.buf = bytearray()
        self.total = 0

    def writable(self):
        return True

    def write(self, b):
        n = len(b)
        self.total += n
        if self.keep:
            self.buf += bytes(b[-self.keep:]) if n > self.keep else b
            if len(self.buf) > 2 * self.keep:
                del self.buf[: len(self.buf) - self.keep]
        return n

    def tail(self):
        return bytes(self.buf[-self.keep:]) if self.keep else b""


def _text_out(sink):
    return io.TextIOWrapper(io.BufferedWriter(sink), encoding="utf-8", errors="replace",
                            write_through=True)


class _ExitCalled(SystemExit):
    pass


def _fake_os_exit(code=0):
    raise _ExitCalled(code)


# ---------------------------------------------------------------------------------------------
# Main.

def _exc_info(e, max_chars):
    line, where, tb = None, None, e.__traceback__
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if fn == PROG:
            line, where = tb.tb_lineno, "program"
        elif fn in (TEST, PRE) and where != "program":
            where = "test" if fn == TEST else "preamble"
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(e, SyntaxError) and e.filename in (PROG, TEST, PRE):
        line, where = e.lineno, {PROG: "program", TEST: "test", PRE: "preamble"}[e.filename]
    try:
        msg = str(e)
    except Exception:  # noqa: BLE001
        msg = "<unprintable>"
    if len(msg) > max_chars:
        msg = msg[: max_chars - 1] + "\u2026"
    return {"type": type(e).__name__, "message": msg, "line": line, "where": where or "harness"}


def main():
    raw = sys.stdin.buffer.read()
    req = json.loads(raw.decode("utf-8"))
    out_fd = os.dup(1)
    real_exit = os._exit
    t_start = time.monotonic()
    time_budget = float(req.get("time_budget_ms") or 2500) / 1000.0
    hard = req.get("hard_deadline_ms")
    if hard:
        # Last resort when the program blocks in C code holding the GIL: dump stacks, exit.
        faulthandler.dump_traceback_later(float(hard) / 1000.0, exit=True, file=sys.__stderr__)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
    except OSError:
        pass

    code = req.get("code") or ""
    test = req.get("test") or {"kind": "stdio", "input": ""}
    max_value = int(req.get("max_value_chars") or 80)
    max_blocks = max(2, int(req.get("max_blocks") or 60))
    max_out = int(req.get("max_output_bytes") or 2000)
    max_json = int(req.get("max_json_bytes") or 400_000)

    lines = code.splitlines()
    result = {"blocks": [], "trace": [], "truncated": False, "exception": None, "stopped": None,
              "exit_code": None, "stdout_tail": "", "stdout_bytes": 0, "returned_repr": None,
              "steps": 0, "notes": []}
    try:
        tree = ast.parse(code, PROG)
        blocks, maps = build_blocks(tree, lines)
    except SyntaxError as e:
        result["exception"] = _exc_info(e, 4 * max_value)
        _emit(out_fd, result, max_json)
        real_exit(0)
    result["blocks"] = blocks

    stdin_text = test.get("input", "") if test.get("kind") == "stdio" else ""
    stdin_bytes = stdin_text.encode("utf-8")
    try:  # fd 0 too, for open(0) / os.read(0)
        import tempfile
        tf = tempfile.TemporaryFile()
        tf.write(stdin_bytes)
        tf.flush()
        tf.seek(0)
        os.dup2(tf.fileno(), 0)
    except Exception:  # noqa: BLE001
        pass
    out_sink, err_sink = _Sink(max_out), _Sink(4096)
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_bytes), encoding="utf-8", errors="replace")
    sys.stdout = _text_out(out_sink)
    sys.stderr = _text_out(err_sink)
    os._exit = _fake_os_exit

    ns = {"__name__": "__main__" if test.get("kind") != "call" else "solution",
          "__builtins__": __builtins__, "__file__": PROG}
    try:
        import random
        random.seed(0)
    except Exception:  # noqa: BLE001
        pass
    pre_err = None
    try:
        if req.get("preamble"):
            exec(compile(req["preamble"], PRE, "exec"), ns)
    except BaseException as e:  # noqa: BLE001
        pre_err = _exc_info(e, 4 * max_value)
    hidden = {k: v for k, v in ns.items()}
    tracer = Tracer(req, blocks, maps, hidden)
    state = {"done": False, "exc": pre_err, "returned": None, "exit": None}

    def run():
        if state["exc"] is not None:
            state["done"] = True
            return
        try:
            prog = compile(code, PROG, "exec")
            sys.settrace(tracer.global_trace)
            try:
                exec(prog, ns)
                kind = test.get("kind")
                if kind == "call":
                    fn_name = test.get("fnName")
                    sol = ns.get("Solution")
                    if isinstance(sol, type) and hasattr(sol, fn_name):
                        fn = getattr(sol(), fn_name)
                    elif callable(ns.get(fn_name)):
                        fn = ns[fn_name]
                    else:
                        raise NameError("function %r not found in the program" % fn_name)
                    state["value"] = fn(*list(test.get("args") or []))
                    state["has_value"] = True
                elif kind == "script":
                    exec(compile(test.get("code") or "", TEST, "exec"), ns)
            finally:
                sys.settrace(None)
            if state.get("has_value"):
                state["returned"] = Reprs(max(4 * max_value, 200))(state.pop("value"))
        except _Stop:
            pass
        except SystemExit as e:
            c = e.code
            state["exit"] = c if isinstance(c, int) or c is None else str(c)
        except BaseException as e:  # noqa: BLE001
            state["exc"] = _exc_info(e, 4 * max_value)
        finally:
            state["done"] = True

    try:
        threading.stack_size(64 * 1024 * 1024)
    except Exception:  # noqa: BLE001
        pass
    deadline = t_start + time_budget
    tracer.deadline = deadline
    worker = threading.Thread(target=run, daemon=True)
    try:
        worker.start()
    except RuntimeError:  # no thread available (process limit): run here, budgets still apply
        run()
    stop_seen = None
    while worker.is_alive():
        worker.join(0.02)
        now = time.monotonic()
        if now >= deadline and tracer.stop_request is None:
            tracer.stop_request = "time"
        if tracer.stopped is not None or tracer.stop_request is not None:
            stop_seen = stop_seen or now
            if now - stop_seen > 0.3:  # the program swallowed _Stop or blocks: report anyway
                break
    if worker.is_alive():
        result["notes"].append("the program kept running after the trace stopped")
        if tracer.stopped is None:
            tracer.stopped = {"reason": "time", "steps": tracer.steps, "line": tracer.last_line}

    for _ in range(3):  # the worker may still run (swallowed _Stop): retry on a concurrent change
        try:
            trace, dropped = tracer.entries(max_blocks)
            break
        except RuntimeError:
            time.sleep(0.01)
    else:
        trace, dropped = [], True
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    result["trace"] = trace
    result["stopped"] = tracer.stopped
    result["truncated"] = bool(dropped or tracer.stopped)
    result["exception"] = state["exc"]
    result["exit_code"] = state["exit"]
    result["returned_repr"] = state["returned"]
    result["steps"] = tracer.steps
    result["stdout_tail"] = out_sink.tail().decode("utf-8", errors="replace")
    result["stdout_bytes"] = out_sink.total
    if tracer.stopped:
        result["notes"].append("%s budget exhausted after %d steps; the program was stopped"
                               % ("step" if tracer.stopped["reason"] == "steps" else "time", tracer.steps))
    faulthandler.cancel_dump_traceback_later()
    _emit(out_fd, result, max_json)
    real_exit(0)


def _emit(fd, result, max_json):
    data = json.dumps(result, ensure_ascii=False)
    while len(data.encode("utf-8")) > max_json:
        trace = result["trace"]
        if any("locals_before" in t for t in trace[1:]):
            for t in trace[1:]:
                t.pop("locals_before", None)
        elif len(trace) > 4:
            q = len(trace) // 4
            dropped = sum(1 + t.get("skipped_before", 0) for t in trace[q:len(trace) - q])
            rest = trace[len(trace) - q:]
            rest[0]["skipped_before"] = rest[0].get("skipped_before", 0) + dropped
            result["trace"] = trace[:q] + rest
            result["truncated"] = True
        elif result["stdout_tail"] or any(b["code"] for b in result["blocks"]):
            result["stdout_tail"] = ""
            for b in result["blocks"]:
                b["code"] = b["code"][:80]
        else:
            result["trace"] = []
            result["blocks"] = []
            result["truncated"] = True
            data = json.dumps(result, ensure_ascii=False)
            break
        data = json.dumps(result, ensure_ascii=False)
    b = data.encode("utf-8")
    view = memoryview(b)
    while view:
        n = os.write(fd, view)
        view = view[n:]


if __name__ == "__main__":
    main()
