"""Generators of hostile and well-formed .arch text, and the oracle every case must satisfy.

Shared by tests/test_fuzz.py, tests/test_agreement.py (through hypothesis) and
tools/fuzz.py (through random.Random, for long campaigns). Each generator draws its choices
from a `Chooser`, so the same code is a hypothesis strategy (which can shrink a failure to a
small input) and a plain random generator.
"""

from __future__ import annotations

import cProfile
import json
import random
import re
import signal
import threading
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILES = sorted((ROOT / "specs").glob("*.arch"))
SPEC_TEXTS = {p.name: p.read_text() for p in SPEC_FILES}

WORK_FACTOR = 2  # a case may do twice the work of the largest network allowed (work_limit)
MEMORY_LIMIT = 200 << 20  # tracemalloc peak per case
HANG_S = 60  # a watchdog, not a time limit: the largest network takes about 2 s here
FILE = "fuzz.arch"


# ----------------------------------------------------------------------------- choosers


class Chooser:
    """Where the generators' choices come from."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def chance(self, p: float) -> bool:
        return self.int(0, 999) < p * 1000


class RandomChooser(Chooser):
    def __init__(self, rng: random.Random):
        self.rng = rng

    def int(self, lo, hi):
        return self.rng.randint(lo, hi)


class DrawChooser(Chooser):
    """Hypothesis's `draw`: choices it can shrink towards their lower bounds."""

    def __init__(self, draw):
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def int(self, lo, hi):
        return self.draw(self.st.integers(lo, hi))


# ----------------------------------------------------------------------------- grammatical specs

ACTIVATIONS = ["relu", "relu6", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "gelu",
               "softmax", "logsoftmax", "leakyrelu 0.1", "prelu", "prelu perchannel", "elu 1.0",
               "gelu tanh", "gelu approximate=tanh"]
WORDS = ["nobias", "same", "valid", "reflect", "replicate", "circular", "zeros", "ceil",
         "noaffine", "perchannel", "exclude_pad", "tanh", "true", "false"]
KEYWORDS = ["stride", "padding", "dilation", "groups", "bias", "padding_mode", "eps", "momentum",
            "affine", "ceil", "count_include_pad", "kernel", "size", "p", "s", "k", "slope",
            "alpha", "approximate", "init", "per_channel"]
OPS = ["conv", "linear", "bn", "groupnorm", "layernorm", "lrn", "maxpool", "avgpool",
       "adaptiveavgpool", "adaptivemaxpool", "flatten", "dropout", "dropout2d", "identity",
       "relu", "sigmoid", "gelu", "prelu", "leakyrelu", "elu", "softmax"]


class _Grammatical:
    """Random text of every construct of the language: mostly well-formed, rarely valid."""

    def __init__(self, c: Chooser):
        self.c = c
        self.params: list[str] = []
        self.blocks: list[tuple[str, int]] = []

    def number(self) -> str:
        c = self.c
        kind = c.int(0, 9)
        if kind <= 5:
            return str(c.choice([1, 2, 3, 4, 8, 16, 0, 5, 7, 32, 64]))
        if kind == 6:
            return c.choice(["0.5", "1e-5", "0.1", ".5", "2.", "1e3"])
        if kind == 7:
            return c.choice(["99999999999", "99999999999999999999", "1e309", "100000"])
        if kind == 8:
            return f"{c.int(1, 9)}x{c.int(1, 9)}"
        return str(c.int(0, 300))

    def atom(self) -> str:
        if self.params and self.c.chance(0.4):
            return self.c.choice(self.params)
        if self.c.chance(0.1):
            return self.c.choice(["undefined", "true", "same"])
        return self.number()

    def expr(self, depth: int = 0) -> str:
        c = self.c
        if depth > 2 or c.chance(0.6):
            return self.atom()
        op = c.choice(["+", "-", "*", "/", "//", "%"])
        left, right = self.expr(depth + 1), self.expr(depth + 1)
        if c.chance(0.3):
            return f"({left} {op} {right})"
        return f"{left}{op}{right}" if c.chance(0.5) else f"{left} {op} {right}"

    def value(self) -> str:
        """After `=`: a unary minus is allowed here."""
        return ("-" if self.c.chance(0.15) else "") + self.expr()

    def argument(self) -> str:
        c = self.c
        kind = c.int(0, 5)
        if kind == 0:
            return self.expr()
        if kind == 1:
            flag = c.choice("kspdgx")
            if c.chance(0.2):
                return f"{flag}{c.int(1, 7)}x{c.int(1, 7)}"  # rectangular
            return f"{flag}{c.choice([1, 2, 3, 5, 7, 0, 11])}"
        if kind == 2:
            return f"{c.choice(KEYWORDS)}={self.value()}"
        if kind == 3:
            return f"{c.choice(KEYWORDS)}={c.choice(WORDS)}"
        return c.choice(WORDS)

    def layer(self) -> str:
        c = self.c
        if self.blocks and c.chance(0.25):
            name, n = c.choice(self.blocks)
            args = [self.expr() for _ in range(c.int(0, n + 1))]
            if c.chance(0.3):
                args.append(f"{c.choice(['c', 's', 'n', 'k'])}={self.value()}")
            return " ".join([name] + args)
        if c.chance(0.2):
            return c.choice(ACTIVATIONS)
        op = c.choice(OPS)
        args = [self.argument() for _ in range(c.int(0, 4))]
        if op == "conv" and c.chance(0.7):
            args = [self.expr(), f"k{c.choice([1, 3, 5])}"] + args
        return " ".join([op] + args)

    def statement(self, depth: int) -> str:
        c = self.c
        kind = c.int(0, 12) if depth < 3 else 0
        if kind <= 6:
            return self.layer()
        if kind == 7:
            return f"repeat {self.expr()} {{ {self.body(depth + 1)} }}"
        if kind == 8:
            body = self.body(depth + 1)
            if c.chance(0.5):
                return f"residual< {body} | {self.body(depth + 1)} >"
            return f"residual< {body} >"
        if kind == 9:
            branches = [self.body(depth + 1) for _ in range(c.int(2, 4))]
            return "concat< " + " | ".join(branches) + " >"
        if kind == 10:
            return f"add< {self.body(depth + 1)} | {c.choice(['identity', self.body(depth + 1)])} >"
        if kind == 11:
            return f"mul< identity | {self.body(depth + 1)} >"
        return "identity"

    def separator(self) -> str:
        c = self.c
        sep = c.choice(["; ", "\n", ";", "\n\n", " ;\n", "\n  "])
        if c.chance(0.1):
            sep = f"  # {c.choice(['note', 'conv 8 k3', '<|>', ''])}\n"
        return sep

    def body(self, depth: int) -> str:
        n = self.c.int(1, 3 if depth else 6)
        text = ""
        for i in range(n):
            text += self.statement(depth) + (self.separator() if i < n - 1 else "")
        return text

    def params_decl(self, names: list[str]) -> str:
        parts = []
        for name in names:
            if self.c.chance(0.8):
                parts.append(f"{name}={self.value()}")
            else:
                parts.append(name)
        return "(" + ", ".join(parts) + ")"

    def spec(self) -> str:
        c = self.c
        lines = []
        if c.chance(0.6):
            names = ["c", "n", "width", "classes"][:c.int(0, 4)]
            self.params = list(names)
            lines.append(f"arch net{self.params_decl(names) if names or c.chance(0.5) else ''}")
        if c.chance(0.1):
            lines.append(c.choice(["init resnet", "init resnet zero_residual", "init pytorch"]))
        if c.chance(0.9):
            lines.append("input " + c.choice(["3x8x8", "3x16x16", "1x28x28", "16", "8x5x5",
                                              f"{c.int(1, 8)}x{c.int(1, 20)}x{c.int(1, 20)}",
                                              "3x2", "0x4x4"]))
        for i in range(c.int(0, 2)):
            name = f"b{i}"
            params = ["c", "s", "k"][:c.int(0, 3)]
            outer = self.params
            self.params = outer + params
            body = self.body(1)
            self.params = outer
            lines.append(f"block {name}{self.params_decl(params) if params else ''} {{ {body} }}")
            self.blocks.append((name, len(params)))
        lines.append(self.body(0))
        return "\n".join(lines) + ("\n" if c.chance(0.8) else "")


def grammatical_spec(c: Chooser) -> str:
    """A spec using every construct of the language at random; mostly it does not check."""
    return _Grammatical(c).spec()


# ----------------------------------------------------------------------------- valid specs


class _Valid:
    """Specs that are meant to check clean: the generator follows the shape as it goes."""

    def __init__(self, c: Chooser):
        self.c = c
        self.shape: tuple[int, ...] = ()

    def conv(self, out: int, allow_stride: bool = True) -> str:
        c = self.c
        ch, h, w = self.shape
        k = c.choice([1, 3, 3, 5]) if min(h, w) >= 5 else c.choice([1, 3]) if min(h, w) >= 3 else 1
        s = 2 if allow_stride and min(h, w) >= 4 and c.chance(0.25) else 1
        words = []
        if s == 1 and k > 1 and c.chance(0.2):
            pad, total = "p=same", k - 1
        else:
            pad, total = f"p{(k - 1) // 2}", 2 * ((k - 1) // 2)
        if k == 3 and s == 1 and min(h, w) >= 5 and c.chance(0.15):
            words.append("d2")
            pad, total = "p2", 4
        if out == ch and c.chance(0.2):
            words.append(f"g={out}" if c.chance(0.5) else f"g{out}")
        elif ch % 2 == 0 and out % 2 == 0 and c.chance(0.1):
            words.append("g2")
        if c.chance(0.2):
            words.append("nobias")
        if c.chance(0.1) and "p=same" != pad and total // 2 < min(h, w):
            words.append(c.choice(["reflect", "replicate", "padding_mode=circular"]))
        stride = f"s{s}" if c.chance(0.5) or s > 1 else ""
        kernel = f"k{k}" if c.chance(0.9) else f"k{k}x{k}"
        text = " ".join(x for x in [f"conv {out}", kernel, stride, pad] + words if x)
        eff = k + (2 if "d2" in words else 0)
        self.shape = (out, (h + total - eff) // s + 1, (w + total - eff) // s + 1)
        return text

    def width(self) -> int:
        return self.c.choice([4, 8, 8, 16, 6])

    def map_statement(self, depth: int) -> str:
        c = self.c
        ch, h, w = self.shape
        kind = c.int(0, 16) if depth < 2 else c.int(0, 6)
        if kind <= 2:
            return self.conv(self.width())
        if kind == 3:
            return c.choice(ACTIVATIONS[:8] + ["bn", "identity", "dropout 0.1", "dropout2d 0.2",
                                               "prelu", "leakyrelu 0.2", "elu", "gelu tanh"])
        if kind == 4:
            return c.choice(["bn", "bn eps=1e-3", "bn noaffine", f"groupnorm {1 if ch % 2 else 2}",
                             "lrn 3", "layernorm"])
        if kind == 5 and min(h, w) >= 2:
            pool = c.choice(["maxpool 2", "avgpool 2", "maxpool 2 s2", "maxpool 2 ceil"])
            self.shape = (ch, (h - 2) // 2 + 1 if "ceil" not in pool else -(-(h - 2) // 2) + 1,
                          (w - 2) // 2 + 1 if "ceil" not in pool else -(-(w - 2) // 2) + 1)
            return pool
        if kind == 6 and min(h, w) >= 1:
            return c.choice(["maxpool 3 s1 p1", "avgpool 3 s1 p1", "avgpool 3 s1 p1 exclude_pad"])
        if kind == 7:
            n = c.int(0, 3)
            start = self.shape
            body = self.seq(depth + 1, keep_shape=True)
            self.shape = start
            return f"repeat {n} {{ {body} }}"
        if kind == 8:
            start = self.shape
            body = self.seq(depth + 1, keep_shape=True)
            self.shape = start
            return f"residual< {body} >"
        if kind == 9:  # a body that changes the shape: archdsl inserts the projection
            start = self.shape
            body = "; ".join([self.conv(self.width()), "bn", "relu", self.conv(self.shape[0], False)])
            end = self.shape
            if start[1] % end[1] or start[2] % end[2] or (-(-start[1] // (start[1] // end[1])) !=
                                                          end[1]):
                self.shape = start
                return "identity"
            return f"residual< {body} >"
        if kind == 10:  # an explicit shortcut
            start = self.shape
            body = self.conv(self.width())
            end = self.shape
            if end[1:] != start[1:]:
                self.shape = start
                return "identity"
            self.shape = start
            short = self.conv(end[0], False)
            self.shape = end
            return f"residual< {body} | {short}; bn >"
        if kind == 11:
            start, branches, chans = self.shape, [], 0
            for _ in range(c.int(2, 3)):
                self.shape = start
                if c.chance(0.3):
                    branches.append("identity")
                    chans += start[0]
                    continue
                text = self.conv(self.width(), False)
                if c.chance(0.3):
                    text += "; relu; " + self.conv(self.width(), False)
                branches.append(text)
                chans += self.shape[0]
            self.shape = (chans,) + start[1:]
            return "concat< " + " | ".join(branches) + " >"
        if kind == 12:
            start = self.shape
            a = self.conv(start[0], False)
            self.shape = start
            return f"add< {a} | {c.choice(['identity', 'conv %d k1' % start[0]])} >"
        if kind == 13:
            return f"mul< identity | adaptiveavgpool 1; conv {max(ch // 4, 1)} k1; relu; " \
                   f"conv {ch} k1; sigmoid >"
        if kind == 14 and self.blocks:
            name = c.choice(self.blocks)
            out = self.width()
            s = 2 if min(h, w) >= 4 and c.chance(0.3) else 1
            self.shape = (out, (h + 2 - 3) // s + 1, (w + 2 - 3) // s + 1)
            return f"{name} {out}" + (f" s={s}" if s > 1 else c.choice(["", " s=1"]))
        if kind == 15:  # expressions over the arch parameter width=8
            factor = c.choice(["width", "width*2", "width//2", "(width+8)/2"])
            self.shape = ({"width": 8, "width*2": 16, "width//2": 4, "(width+8)/2": 8}[factor],
                          *self.shape[1:])
            return f"conv {factor} k1"
        return "relu"

    def seq(self, depth: int, keep_shape: bool = False) -> str:
        start = self.shape
        parts = [self.map_statement(depth) for _ in range(self.c.int(1, 3))]
        if keep_shape and self.shape != start:
            if self.shape[1:] != start[1:]:
                return "identity"
            parts.append(f"conv {start[0]} k1")
            self.shape = start
        return "; ".join(parts)

    def spec(self) -> str:
        c = self.c
        self.blocks: list[str] = []
        h = c.choice([4, 6, 8, 9, 12, 16])
        self.shape = (c.choice([1, 3, 4]), h, c.choice([h, h, h + 1, 5, 8]))
        lines = [f"arch gen(classes={c.choice([2, 10])}, width=8)",
                 f"input {'x'.join(map(str, self.shape))}"]
        if c.chance(0.4):
            lines.insert(1, c.choice(["init resnet", "init resnet zero_residual"]))
        if c.chance(0.4):
            lines.append("block unit(c, s=1) {\n  conv c k3 s=s p1 nobias; bn\n  relu\n}")
            self.blocks.append("unit")
        for _ in range(c.int(1, 5)):
            lines.append(self.map_statement(0) + (f"  # {self.shape}" if c.chance(0.2) else ""))
        head = c.int(0, 3)
        if head == 0:
            lines.append("adaptiveavgpool 1; flatten; linear classes")
        elif head == 1:
            lines.append("flatten\ndropout 0.5; linear 16; relu\nlinear classes")
        elif head == 2:
            lines.append(c.choice(["adaptivemaxpool 2", "adaptiveavgpool 3x2"]) + "; flatten; "
                         "linear classes nobias")
        return "\n".join(lines) + "\n"


def valid_spec(c: Chooser) -> str:
    """A spec meant to check without errors (warnings allowed): conv, pools, norms,
    activations, repeat, residual with and without shortcut, concat, add, mul, blocks."""
    return _Valid(c).spec()


# ----------------------------------------------------------------------------- mutations

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9][0-9x.eE+-]*|\s+|#[^\n]*|.", re.S)
MUTATIONS = ("delete", "duplicate", "swap", "byteflip", "truncate", "nest", "number", "unicode",
             "crlf", "bom", "nul", "garbage", "empty", "splice")
HUGE_NUMBERS = ["99999999999999999999", "-1", "-99999999999", "0", "1e309", "-0", "1e-320",
                "100000000", "2147483648", "9" * 60, "0x10", "1.5", "00", "3x0x0",
                "99999999999x99999999999"]
UNICODE_NAMES = ["convé", "层", "ñ", "Σ", "relu\u200b", "ｃｏｎｖ", "c\u0301", "🙂", "\u202ereverse"]


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def mutate(c: Chooser, text: str, kind: str | None = None) -> tuple[str, str]:
    """A broken version of `text` and the mutation's name: (text, kind)."""
    kind = kind or c.choice(MUTATIONS)
    toks = tokens(text)
    significant = [i for i, t in enumerate(toks) if not t.isspace()]
    if not significant and kind in ("duplicate", "swap"):
        return text, kind  # nothing to move
    if kind == "delete":
        for _ in range(c.int(1, 4)):
            if toks:
                del toks[c.int(0, len(toks) - 1)]
        return "".join(toks), kind
    if kind == "duplicate":
        i = c.choice(significant)
        toks[i:i] = toks[i:i + c.int(1, 6)]
        return "".join(toks), kind
    if kind == "swap":
        for _ in range(c.int(1, 3)):
            i, j = c.choice(significant), c.choice(significant)
            toks[i], toks[j] = toks[j], toks[i]
        return "".join(toks), kind
    if kind == "byteflip":
        data = bytearray(text.encode())
        for _ in range(c.int(1, 8)):
            if data:
                data[c.int(0, len(data) - 1)] ^= 1 << c.int(0, 7)
        return data.decode("utf-8", errors="replace"), kind
    if kind == "truncate":
        return text[:c.int(0, len(text))], kind
    if kind == "nest":
        lines = text.split("\n")
        i = c.int(0, len(lines) - 1)
        n = c.choice([2, 10, 40, 60, 120, 400])
        opener, closer = c.choice([("residual< ", " >"), ("repeat 1 { ", " }"),
                                   ("add< identity | ", " >"), ("concat< ", " | identity >"),
                                   ("(", ")"), ("-(", ")")])
        lines[i] = opener * n + lines[i] + closer * n
        return "\n".join(lines), kind
    if kind == "number":
        numbers = [i for i, t in enumerate(toks) if t[:1].isdigit()] or [len(toks)]
        for _ in range(c.int(1, 3)):
            i = c.choice(numbers)
            new = c.choice(HUGE_NUMBERS)
            if i < len(toks):
                toks[i] = new
            else:
                toks.append(" " + new)
        return "".join(toks), kind
    if kind == "unicode":
        names = [i for i, t in enumerate(toks) if t[:1].isalpha()] or [len(toks)]
        i = c.choice(names)
        new = c.choice(UNICODE_NAMES)
        if i < len(toks):
            toks[i] = new
        else:
            toks.append(new)
        return "".join(toks), kind
    if kind == "crlf":
        return text.replace("\n", c.choice(["\r\n", "\r", "\n\r"])), kind
    if kind == "bom":
        return "\ufeff" + text.replace("\n", "\r\n" if c.chance(0.5) else "\n"), kind
    if kind == "nul":
        for _ in range(c.int(1, 3)):
            i = c.int(0, len(text))
            text = text[:i] + "\x00" + text[i:]
        return text, kind
    if kind == "garbage":
        data = bytes(c.int(0, 255) for _ in range(c.int(0, 200)))
        garbage = data.decode("utf-8", errors="replace")
        if c.chance(0.5):
            i = c.int(0, len(text))
            return text[:i] + garbage + text[i:], kind
        return garbage, kind
    if kind == "empty":
        return c.choice(["", "\n", "   ", "\ufeff", "#", ";", "\r\n", "\x00"]), kind
    if kind == "splice":  # a line of one spec inside another
        other = SPEC_TEXTS[c.choice(sorted(SPEC_TEXTS))].split("\n")
        lines = text.split("\n")
        lines.insert(c.int(0, len(lines)), c.choice(other))
        return "\n".join(lines), kind
    raise ValueError(kind)


def mutated_spec(c: Chooser) -> tuple[str, str]:
    """A file of specs/, broken by one or two mutations: (text, mutations applied)."""
    name = c.choice(sorted(SPEC_TEXTS))
    text, kind = mutate(c, SPEC_TEXTS[name])
    if c.chance(0.2):
        text, second = mutate(c, text)
        kind += "+" + second
    return text, f"{name}:{kind}"


# ----------------------------------------------------------------------------- the oracle


@dataclass
class Outcome:
    """What one case did: its failure (None when it behaved), work and memory."""

    failure: str | None
    detail: str
    calls: int  # Python function calls made (see count_calls): the work, on any machine
    peak_bytes: int
    checked: bool  # True: a Network came back; False: located errors


def count_calls(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` and the number of Python function calls it made (generators'
    resumptions included), counted by cProfile: a measure of work that is the same on a fast
    machine, a slow one and a busy one. (C functions are not counted: a loop over them alone
    is left to the watchdog.)"""
    profile = cProfile.Profile(builtins=False)
    profile.enable()
    try:
        result = fn(*args, **kwargs)
    finally:
        profile.disable()
    return result, sum(entry.callcount for entry in profile.getstats())


class Hung(BaseException):
    """Raised by the watchdog in a case still running after HANG_S seconds."""


@contextmanager
def watchdog(seconds: float | None = None):
    """Raise Hung in the block if it is still running after `seconds` (default HANG_S): a
    guard against a case that never ends (a loop over a huge range), not a performance
    check, which is work_limit's. Only the main thread receives signals; elsewhere it does
    nothing."""
    seconds = HANG_S if seconds is None else seconds
    if threading.current_thread() is not threading.main_thread() or \
            not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum, frame):
        raise Hung(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def largest_network() -> str:
    """The most costly spec the limits allow: MAX_NODES layers written out one line each."""
    from archdsl.expand import MAX_NODES

    return "input 16x32x32\n" + "conv 16 k3 p1 nobias; bn; relu\n" * ((MAX_NODES - 1) // 3)


_reference: list[Outcome] = []


def largest_work() -> int:
    """The function calls that checking and drawing the largest network allowed makes,
    counted once per process (after a small case has done archdsl's one-time set-up)."""
    if not _reference:
        run_case("input 3x8x8\nconv 8 k3\nbn\nrelu\nflatten\nlinear 2\n", trace_memory=False,
                 limit=None)
        outcome = run_case(largest_network(), trace_memory=False, limit=None)
        _reference.append(outcome)
    outcome = _reference[0]
    # a failure is kept, so that a test drawing many cases does not measure it again each time
    assert outcome.failure is None and outcome.checked, f"the largest network: {outcome}"
    return outcome.calls


def work_limit() -> int:
    """The work a case may do: WORK_FACTOR times the largest network's (largest_work). A
    count of calls, not a time: a slower or busier machine cannot turn a linear cost into a
    finding, and a super-linear blow-up is one on every machine."""
    return WORK_FACTOR * largest_work()


def _exercise(text: str, params: dict | None, draw: bool):
    """Check `text` as archdsl does, and draw it as `archdsl draw` does: (failure, detail,
    network)."""
    from archdsl.diagnostics import render_all
    from archdsl.draw import to_dot
    from archdsl.network import Network, analyse_graph
    from archdsl.syntax import normalise_source

    network = None
    # archdsl.analyse, keeping the graph of a spec with errors as `archdsl draw` does
    spec, graph, diagnostics = analyse_graph(text, FILE, params)
    if graph is not None and not any(d.is_error for d in diagnostics):
        network = Network(graph, diagnostics)
    failure, detail = _judge(normalise_source(text), network, diagnostics)
    render_all(diagnostics, normalise_source(text))
    if network is not None:
        network.summary()
        json.dumps(network.to_dict())
    if draw and graph is not None:  # the DOT source, errors and all (no Graphviz `dot`)
        to_dot(graph, diagnostics).source
    return failure, detail, network


_DEFAULT = object()


def run_case(text: str, params: dict | None = None, draw: bool = True,
             trace_memory: bool = True, limit=_DEFAULT) -> Outcome:
    """Check `text` as archdsl does (and draw it as `archdsl draw` does); say how it failed.

    A case behaves when it ends in a Network or in error diagnostics, each located inside
    the file; it fails on any exception, on E-INTERNAL, on an error without a location, on
    more than `limit` function calls (default: work_limit(); None: no limit), on running
    past the watchdog (HANG_S) or over MEMORY_LIMIT of Python allocations (tracemalloc's
    peak; tracing makes a case about four times slower, so the test suite traces a share of
    its cases; the count of calls is the same traced or not).
    """
    if limit is _DEFAULT:
        limit = work_limit()
    if trace_memory:
        tracemalloc.start()
    failure, detail, network, calls = None, "", None, 0
    try:
        with watchdog():
            (failure, detail, network), calls = count_calls(_exercise, text, params, draw)
    except Hung as exc:
        failure, detail = "hang", str(exc)
    except BaseException as exc:  # noqa: BLE001 - anything escaping is the finding
        if isinstance(exc, KeyboardInterrupt):
            raise
        failure, detail = f"exception:{type(exc).__name__}", f"{type(exc).__name__}: {exc}"[:500]
    peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    if trace_memory:
        tracemalloc.stop()
    if failure is None and limit is not None and calls > limit:
        failure, detail = "work", f"{calls:,} function calls, over the limit of {limit:,}"
    if failure is None and peak > MEMORY_LIMIT:
        failure, detail = "memory", f"{peak / 2**20:.0f} MiB"
    return Outcome(failure, detail, calls, peak, network is not None)


def _judge(source: str, network, diagnostics) -> tuple[str | None, str]:
    lines = source.split("\n")
    for d in diagnostics:
        if d.code == "E-INTERNAL":
            return "internal", d.message
        if not d.is_error:
            continue
        s = d.span
        if s is None or s.file != FILE:
            return "unlocated", f"{d.code}: {d.message}"
        if not (1 <= s.line <= len(lines) and 1 <= s.column <= len(lines[s.line - 1]) + 1):
            return "outside", f"{d.code} at {s.line}:{s.column}: {d.message}"
        if (s.end_line, s.end_column) < (s.line, s.column):
            return "outside", f"{d.code} span ends before it starts"
    if network is None and not any(d.is_error for d in diagnostics):
        return "silent", "no network and no error"
    return None, ""


# ----------------------------------------------------------------------------- strategies


def strategy(generator):
    """The hypothesis strategy of a generator above (which hypothesis can shrink)."""
    from hypothesis import strategies as st

    return st.composite(lambda draw: generator(DrawChooser(draw)))()


def seeded(kind: str, seed: int) -> tuple[str, str]:
    """Case number `seed` of a generator, without hypothesis (cheap, reproducible):
    (text, description). `kind` is grammatical, valid or mutated."""
    c = RandomChooser(random.Random(f"{kind}:{seed}"))
    if kind == "grammatical":
        return grammatical_spec(c), f"grammatical #{seed}"
    if kind == "valid":
        return valid_spec(c), f"valid #{seed}"
    text, how = mutated_spec(c)
    return text, f"mutated #{seed} ({how})"


# ----------------------------------------------------------------------------- minimizing


def minimize(text: str, fails, tries: int = 400) -> str:
    """A smaller text on which `fails(text)` still holds: whole lines, then tokens, are
    dropped while the failure stays (greedy delta debugging, calling `fails` at most `tries`
    times: a budget of work, so the result is the same on any machine)."""
    left = tries
    for split, join in ((lambda t: t.split("\n"), "\n".join), (tokens, "".join)):
        parts = split(text)
        chunk = max(len(parts) // 2, 1)
        while chunk >= 1 and left > 0:
            i, changed = 0, False
            while i < len(parts) and left > 0:
                candidate = parts[:i] + parts[i + chunk:]
                if candidate != parts:
                    left -= 1
                    if fails(join(candidate)):
                        parts, changed = candidate, True
                        continue
                i += chunk
            if not changed:
                chunk //= 2
        text = join(parts)
    return text
