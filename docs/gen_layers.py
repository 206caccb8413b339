"""Writes the layer-kind reference of docs/language.md from the layer registry.

    .venv/bin/python docs/gen_layers.py          # rewrite the section
    .venv/bin/python docs/gen_layers.py --check  # exit 1 if the section is out of date

Everything a layer kind declares (its arguments, how each is written, types, defaults,
ranges, words, family, whether lints treat it as nonlinear, its one-line summary) is read
from `archdsl.layers.REGISTRY`. The rules that live in code (shape, parameters, buffers,
MACs, receptive field, errors) are written out in RULES below, one entry per kind; the
script refuses to run when a registered kind has no entry or an entry names no kind, so a
new layer cannot be added without documenting it.

The section lies between `<!-- gen_layers:start -->` and `<!-- gen_layers:end -->`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archdsl import layers  # noqa: E402
from archdsl.layers.base import BOOL, CHOICE, FLOAT, INT, PADDING, PAIR  # noqa: E402

DOC = ROOT / "docs" / "language.md"
START, END = "<!-- gen_layers:start -->", "<!-- gen_layers:end -->"

FAMILIES = [
    ("conv", "Convolution"),
    ("linear", "Fully connected"),
    ("norm", "Normalisation"),
    ("pool", "Pooling"),
    ("activation", "Activations"),
    ("shape", "Flatten, dropout, identity"),
    ("merge", "Merges (written as combinators)"),
]

UNCHANGED = "the output has the input's shape (feature map or vector)"
RF_SAME = "kernel 1, stride 1: the receptive field passes through unchanged"

# What each kind's code does, in words and formulas. Keys: input, shape, params, buffers,
# macs, rf, errors (all optional except shape). I, O: sizes along one axis (H or W);
# K, S, P, D: kernel, stride, padding, dilation along that axis; C: input channels.
WINDOW_SHAPE = (
    "C × H_out × W_out; per axis `O = floor((I + 2P − D·(K−1) − 1 + (ceil ? S−1 : 0)) / S) + 1`, "
    "and with `ceil`, `O` is reduced by 1 when `(O−1)·S ≥ I + P` (the last window would start "
    "in the padding) — PyTorch's `pooling_output_shape`")
RULES: dict[str, dict[str, str]] = {
    "conv": {
        "input": "a C×H×W feature map",
        "shape": "out × H_out × W_out; per axis `O = floor((I + P_l + P_r − D·(K−1) − 1) / S) + 1`. "
                 "A number pads `P_l = P_r = P`; `valid` is 0; `same` pads `D·(K−1)` in total, "
                 "`floor` of half before and the rest after (PyTorch's rule, so an even kernel pads "
                 "one more at the bottom/right) and keeps the size",
        "params": "`out·(C/groups)·Kh·Kw`, plus `out` with a bias",
        "macs": "`out·H_out·W_out·(C/groups)·Kh·Kw`",
        "rf": "kernel `D·(K−1)+1`, stride `S`",
        "errors": "E-RANK (input is a vector), E-GROUPS (groups must divide C and out), "
                  "E-ARG-RANGE (`same` with a stride other than 1), E-PADDING (`reflect` padding "
                  "must be smaller than the input size, `circular` at most the input size), "
                  "E-KERNEL (`D·(K−1)+1` larger than `I + P_l + P_r`)",
    },
    "linear": {
        "input": "a vector of N features, or a sequence of T tokens of N channels (T×N)",
        "shape": "a vector of `out` features; on a sequence, each token: T × `out`",
        "params": "`N·out`, plus `out` with a bias",
        "macs": "`N·out`, times T on a sequence",
        "rf": "a vector keeps the receptive field it arrived with",
        "errors": "E-RANK (input is a feature map: add `flatten`)",
    },
    "bn": {
        "input": "a feature map (torch.nn.BatchNorm2d) or a vector (torch.nn.BatchNorm1d)",
        "shape": UNCHANGED,
        "params": "`2C` (scale and shift) when affine, else 0",
        "buffers": "`2C + 1` (running mean, running variance, num_batches_tracked)",
    },
    "groupnorm": {
        "input": "a feature map or a vector; C is its first dimension",
        "shape": UNCHANGED,
        "params": "`2C` when affine, else 0",
        "errors": "E-GROUPS (groups must divide C)",
    },
    "layernorm": {
        "input": "a feature map or a vector; normalises over the whole sample",
        "shape": UNCHANGED,
        "params": "`2·C·H·W` (or `2N` on a vector) when affine, else 0",
    },
    "lrn": {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED,
        "errors": "E-RANK (input is a vector)",
    },
    "maxpool": {
        "input": "a C×H×W feature map",
        "shape": WINDOW_SHAPE + "; the stride defaults to the kernel",
        "rf": "kernel `D·(K−1)+1`, stride `S` (the kernel when not given)",
        "errors": "E-RANK, E-ARG-RANGE (padding more than `floor(K/2)`, as PyTorch refuses), "
                  "E-EMPTY (`O < 1`: the window does not fit)",
    },
    "avgpool": {
        "input": "a C×H×W feature map",
        "shape": WINDOW_SHAPE + " with `D = 1`; the stride defaults to the kernel",
        "rf": "kernel `K`, stride `S` (the kernel when not given)",
        "errors": "E-RANK, E-ARG-RANGE (padding more than `floor(K/2)`), E-EMPTY (`O < 1`)",
    },
    "adaptiveavgpool": {
        "input": "a C×H×W feature map",
        "shape": "C × size_h × size_w, whatever the input size (a size larger than the input is "
                 "allowed, as in PyTorch)",
        "rf": "PyTorch's window `i` spans `floor(i·I/O)` to `ceil((i+1)·I/O)`: kernel = the widest "
              "window, `max_i(ceil((i+1)·I/O) − floor(i·I/O))`; stride `max(floor(I/O), 1)`",
        "errors": "E-RANK",
    },
    "adaptivemaxpool": {
        "input": "a C×H×W feature map",
        "shape": "C × size_h × size_w",
        "rf": "as adaptiveavgpool",
        "errors": "E-RANK",
    },
    "flatten": {
        "input": "a feature map (a vector passes through unchanged)",
        "shape": "a vector of `C·H·W` features",
        "rf": "kernel `H×W`, stride 1: whatever reads the vector sees the whole map",
    },
    "dropout": {"shape": UNCHANGED},
    "dropout2d": {"input": "a C×H×W feature map", "shape": UNCHANGED, "errors": "E-RANK"},
    "identity": {"shape": UNCHANGED},
    "prelu": {"shape": UNCHANGED, "params": "1, or C with `perchannel`"},
    "softmax": {"shape": UNCHANGED + "; over dimension 1 (channels, or features)"},
    "logsoftmax": {"shape": UNCHANGED + "; over dimension 1 (channels, or features)"},
    "add": {
        "shape": "PyTorch broadcasting over branches of equal rank: along each dimension the "
                 "sizes must be equal or 1, and the output takes the size that is not 1",
        "rf": "per axis, the largest receptive-field size and the largest stride of the branches",
        "errors": "E-SHAPE (shapes neither match nor broadcast; `residual` needs equal shapes)",
    },
    "mul": {
        "shape": "as add: broadcasting, so a C×1×1 gate scales a C×H×W map",
        "rf": "as add",
        "errors": "E-SHAPE",
    },
    "concat": {
        "shape": "channels (or features) summed; every branch must have the same rank and the "
                 "same H×W",
        "rf": "as add",
        "errors": "E-CONCAT",
    },
    "attention": {
        "input": "a sequence of N tokens of C channels (N×C)",
        "shape": UNCHANGED + "; `heads` must divide C",
        "params": "`4·C·C` (query, key, value and output projections), plus `4C` with biases",
        "macs": "`4·N·C·C` (the projections) + `2·N·N·C` (Q·Kᵀ and the weighted sum of V)",
        "rf": "every output token sees every input token: the whole input",
        "errors": "E-RANK (input is not a sequence: add `tokens`), E-GROUPS (heads do not "
                  "divide C)",
    },
    "tokens": {
        "input": "a C×H×W feature map",
        "shape": "a sequence of `H·W` tokens of C channels (H·W × C), row by row",
        "errors": "E-RANK (input is not a feature map)",
    },
    "classtoken": {
        "input": "anything (it reads no values; written as a branch of `concat`)",
        "shape": "a sequence of one token of `dim` channels (1 × dim)",
        "params": "`dim`",
    },
    "posembed": {
        "input": "a sequence of N tokens of C channels",
        "shape": UNCHANGED,
        "params": "`N·C`",
        "errors": "E-RANK (input is not a sequence)",
    },
    "token": {
        "input": "a sequence of N tokens of C channels",
        "shape": "a vector of C features (token `index`)",
        "errors": "E-RANK (input is not a sequence), E-ARG-RANGE (`index` ≥ N)",
    },
    "split": {
        "input": "a feature map or a vector; C is its first dimension",
        "shape": "`torch.chunk`'s chunk `index`: chunks of `ceil(C/chunks)` channels, the last "
                 "one smaller; the other dimensions unchanged",
        "errors": "E-ARG-RANGE (`index` past the last chunk torch.chunk makes)",
    },
    "shuffle": {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED,
        "errors": "E-RANK, E-GROUPS (groups must divide C)",
    },
    "layernorm2d": {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED,
        "params": "`2C` when affine, else 0",
        "errors": "E-RANK",
    },
    "pointwise": {
        "input": "a C×H×W feature map",
        "shape": "out × H × W",
        "params": "`C·out`, plus `out` with a bias",
        "macs": "`H·W·C·out`",
        "errors": "E-RANK",
    },
    "layerscale": {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED,
        "params": "`C`",
        "errors": "E-RANK",
    },
    "stochasticdepth": {"shape": UNCHANGED},
    "windowattention": {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED + "; the map is padded to whole windows inside the layer",
        "params": "`4·C·C` (query, key, value and output projections), plus `4C` with biases; "
                  "then the relative position bias table `(2·Wh−1)·(2·Ww−1)·heads`, or with "
                  "`cosine` the logit scale `heads` and the bias MLP `3·512 + 512·heads`; "
                  "plus `2C` with `postnorm`",
        "buffers": "the relative position index `(Wh·Ww)²`, plus `2·(2·Wh−1)·(2·Ww−1)` "
                   "coordinates with `cosine`",
        "macs": "`Hp·Wp·(4·C·C + 2·Wh·Ww·C)` on the map padded to whole windows (Hp×Wp), plus "
                "`(2·Wh−1)·(2·Ww−1)·(2·512 + 512·heads)` for the `cosine` bias MLP",
        "rf": "kernel `min(window, size)` per axis, stride 1: each position attends within "
              "its window",
        "errors": "E-RANK, E-GROUPS (heads do not divide C), E-ARG-RANGE (a shift not smaller "
                  "than the window; `cosine` with a window under 2)",
    },
    "patchmerging": {
        "input": "a C×H×W feature map",
        "shape": "2C × ceil(H/2) × ceil(W/2) (an odd side is padded by one)",
        "params": "`8·C·C` (Linear(4C, 2C), no bias) plus the layer norm: `8C` over 4C, or "
                  "`4C` over 2C with `postnorm`",
        "macs": "`H_out·W_out·8·C·C`",
        "rf": "kernel 2, stride 2",
        "errors": "E-RANK",
    },
    "mlp": {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED,
        "params": "`2·C·hidden + hidden + C`, plus `2C` with `postnorm`",
        "macs": "`H·W·2·C·hidden`",
        "errors": "E-RANK",
    },
    "partitionattention": {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED,
        "params": "`4·C·C + 4C` (query, key, value and merge projections) plus the bias "
                  "table `(2·size−1)²·(C/head_dim)`",
        "buffers": "the relative position index, `size⁴`",
        "macs": "`H·W·(4·C·C + 2·size²·C)`",
        "rf": "`window`: kernel `size`; `grid`: `(size−1)·(H/size)+1` per axis (the whole "
              "map at size×size); stride 1",
        "errors": "E-RANK, E-GROUPS (head_dim does not divide C), E-SHAPE (H or W not a "
                  "multiple of size; `grid` on a map that is not square)",
    },
}
for _name in ("relu", "relu6", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "leakyrelu",
              "elu", "gelu"):
    RULES[_name] = {"shape": UNCHANGED}


def type_text(arg) -> str:
    return {
        INT: "whole number", FLOAT: "number", BOOL: "`true` / `false`", PAIR: "`N` or `HxW`",
        PADDING: "`N`, `HxW`, `same` or `valid`",
        CHOICE: " / ".join(f"`{c}`" for c in arg.choices),
    }[arg.type]


def value_text(v) -> str:
    if isinstance(v, bool):
        return "`true`" if v else "`false`"
    if isinstance(v, float):
        return f"`{v:g}`"
    return f"`{v}`"


def default_text(arg) -> str:
    if arg.required:
        return "required"
    if arg.default is None:
        return "the kernel"
    return value_text(arg.default)


def range_text(arg) -> str:
    lo, hi = arg.min, arg.max
    if lo is not None and hi is not None:
        return f"{lo:g} … {hi:g}"
    if lo is not None:
        return f"≥ {lo:g}"
    if hi is not None:
        return f"≤ {hi:g}"
    return ""


def written_text(kind, arg) -> str:
    forms = []
    if arg.name in kind.positional:
        i = kind.positional.index(arg.name)
        forms.append(f"positional{'' if len(kind.positional) == 1 else f' #{i + 1}'}: "
                     f"`{kind.name} {_example(arg)}`")
    if arg.flag:
        forms.append(f"`{arg.flag}N`" + (" / `{0}HxW`".format(arg.flag) if arg.type in (PAIR, PADDING)
                                          else ""))
        forms.append(f"`{arg.flag}=…`")
    forms.append(f"`{arg.name}=…`")
    return ", ".join(forms)


def _example(arg) -> str:
    return {"out": "64", "kernel": "3", "size": "7" if arg.type == PAIR else "5", "p": "0.5",
            "slope": "0.2", "alpha": "1.0", "groups": "32"}.get(arg.name, "…")


def summary_sentence(summary: str) -> str:
    """The summary as a sentence. One that starts with maths (`max(0, x)`, `x·sigmoid(x)`,
    `x for x > 0, …`) keeps its case, after `Output: `; words get a capital."""
    first = summary.split(" ", 1)[0]
    if first in ("x", "y") or any(c in first for c in "()·/^+"):
        return f"Output: {summary}."
    return f"{summary[0].upper()}{summary[1:]}."


def render_kind(kind) -> list[str]:
    rules = RULES[kind.name]
    out = [f"#### `{kind.name}`", "", summary_sentence(kind.summary)]
    out.append("")
    facts = []
    if kind.family != "merge":
        facts.append(f"Input: {rules.get('input', 'a feature map or a vector')}.")
    lint_role = []
    if kind.weighted:
        lint_role.append("weighted (W-NO-NONLINEARITY, W-BIAS-BEFORE-BN and W-DEEP-PLAIN count it)")
    lint_role.append("nonlinear (it breaks a chain of linear maps)" if kind.nonlinear
                     else "not nonlinear")
    if kind.family == "norm":
        lint_role.append("normalisation (it resets W-DEEP-PLAIN's count)")
    facts.append("For the lints: " + "; ".join(lint_role) + ".")
    out += [" ".join(facts), ""]
    if kind.args:
        out += ["| argument | written as | type | default | range | meaning |",
                "|---|---|---|---|---|---|"]
        for a in kind.args:
            out.append(f"| `{a.name}` | {written_text(kind, a)} | {type_text(a)} | "
                       f"{default_text(a)} | {range_text(a)} | {a.doc} |")
        out.append("")
    elif kind.family != "merge":
        out += ["No arguments.", ""]
    if kind.words:
        words = ", ".join(f"`{w}` = `{target}={value_text(v).strip('`')}`"
                          for w, (target, v) in kind.words.items())
        out += [f"Words: {words}.", ""]
    out.append(f"- **Shape:** {rules['shape']}.")
    out.append(f"- **Parameters:** {rules.get('params', '0')}.")
    out.append(f"- **Buffers:** {rules.get('buffers', '0')}.")
    out.append(f"- **MACs:** {rules.get('macs', '0')}.")
    out.append(f"- **Receptive field:** {rules.get('rf', RF_SAME)}.")
    if "errors" in rules:
        out.append(f"- **Errors:** {rules['errors']}.")
    out.append("")
    return out


def render() -> str:
    registry = layers.REGISTRY
    missing = sorted(set(registry) - set(RULES))
    stale = sorted(set(RULES) - set(registry))
    if missing or stale:
        raise SystemExit(f"docs/gen_layers.py is out of step with the registry: no RULES for "
                         f"{missing or 'none'}; RULES for unknown kinds {stale or 'none'}")
    known = {f for f, _ in FAMILIES}
    odd = sorted({k.family for k in registry.values()} - known)
    if odd:
        raise SystemExit(f"docs/gen_layers.py knows no family {odd}")
    out = ["<!-- Generated by docs/gen_layers.py from archdsl/layers/: edit the code or the "
           "script, not this section. -->", "",
           "### All layer kinds at a glance", "",
           "| kind | family | positional | flags | words | what it is |", "|---|---|---|---|---|---|"]
    for family, _ in FAMILIES:
        for kind in registry.values():
            if kind.family != family:
                continue
            flags = " ".join(f"`{f}`" for f in kind.flags()) or ""
            pos = " ".join(f"`{p}`" for p in kind.positional)
            words = " ".join(f"`{w}`" for w in kind.words)
            name = f"`{kind.name}`" if family != "merge" else f"`{kind.name}<…>`"
            out.append(f"| {name} | {family} | {pos} | {flags} | {words} | {kind.summary} |")
    out.append("")
    for family, title in FAMILIES:
        out += [f"### {title}", ""]
        if family == "merge":
            out += ["These kinds are where the branches of `residual< >`, `add< >`, `mul< >` and "
                    "`concat< >` meet; they cannot be written as layers (`add 3` is E-COMBINATOR). "
                    "`residual< >` merges with `add`.", ""]
        for kind in registry.values():
            if kind.family == family:
                out += render_kind(kind)
    return "\n".join(out).rstrip("\n") + "\n"


def splice(doc: str, section: str) -> str:
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC} has no {START} … {END} markers")
    before, rest = doc.split(START, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{section}{END}{after}"


def main(argv: list[str]) -> int:
    doc = DOC.read_text()
    new = splice(doc, render())
    if "--check" in argv:
        if new != doc:
            print(f"{DOC.relative_to(ROOT)} is out of date: run .venv/bin/python docs/gen_layers.py")
            return 1
        print(f"{DOC.relative_to(ROOT)} is up to date")
        return 0
    DOC.write_text(new)
    print(f"wrote the layer reference into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
