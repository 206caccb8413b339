"""Every diagnostic code archdsl reports, declared once with its severity and its meaning.

Diagnostic refuses a code that is not declared here; the language server's hover reads the
meanings, and tests/test_codes.py checks this table against the source and docs/language.md.
A leaf module: it imports nothing from archdsl.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Code:
    """A diagnostic code (`E-SHAPE`), the severity it is reported with, and what it means."""

    name: str
    severity: str
    meaning: str


CODES: dict[str, Code] = {code.name: code for code in (
    Code("E-SYNTAX", ERROR,
         "The text does not follow the grammar: a character or word where the language expects "
         "something else (statements are separated by `;` or new lines, arguments by spaces, "
         "branches by `|`)."),
    Code("E-NESTING", ERROR,
         "The spec nests too deeply (or an expression chains too many operations) to be "
         "checked; define a `block` for the inner part."),
    Code("E-PLACEMENT", ERROR,
         "`arch`, `input`, `init` and `block` belong at the top level of the file, not inside a "
         "block, repeat or combinator."),
    Code("E-DUPLICATE", ERROR,
         "Something that may appear once appears twice: a block defined twice, two `arch` "
         "headers, two `input`, `init` or `output` lines, a value named twice (`-> a`), or a "
         "value named like a kind, block or parameter."),
    Code("E-INIT", ERROR,
         "`init` takes a scheme (`pytorch`, `resnet`) and that scheme's options only."),
    Code("E-FILE", ERROR, "The file cannot be read, or is too large to be a spec."),
    Code("E-INPUT", ERROR,
         "`input` is one sample's shape: CxHxW or a feature count, each at least 1."),
    Code("E-NO-INPUT", ERROR,
         "The spec has no `input` line, so no shape can be checked; add e.g. `input 3x224x224`."),
    Code("E-PARAM", ERROR,
         "An `arch` parameter is missing a value, a value was set for a name the header does not "
         "declare, or a value is of another sort than the parameter's default."),
    Code("E-UNKNOWN-LAYER", ERROR,
         "The statement names neither a layer kind nor a block defined in the file."),
    Code("E-UNKNOWN-NAME", ERROR,
         "A name that is no parameter in scope, no flag and no word the kind declares; or a "
         "value's name (`-> a`) used before the statement that makes it, or outside the body "
         "that makes it."),
    Code("E-ARITY", ERROR,
         "Values and what reads them do not agree in number: a layer given several values "
         "(`a, b; conv …`), a block that takes two given one, or `-> a, b` on a statement that "
         "leaves one value."),
    Code("E-UNKNOWN-ARG", ERROR, "A keyword the layer kind (or block) does not take."),
    Code("E-ARG-MISSING", ERROR,
         "A required argument is not given (e.g. `conv` needs its output channels and a "
         "kernel)."),
    Code("E-ARG-COUNT", ERROR,
         "More positional values than the kind or block takes, or a block parameter without a "
         "default left out."),
    Code("E-ARG-DUPLICATE", ERROR, "The same argument is given twice (`k3 kernel=5`)."),
    Code("E-ARG-TYPE", ERROR,
         "A value of the wrong type: a shape where a number belongs, a fraction where a whole "
         "number belongs, a word the argument does not take."),
    Code("E-ARG-RANGE", ERROR,
         "A value outside what the argument accepts (a kernel of 0, a negative padding, `same` "
         "with a stride)."),
    Code("E-EXPR", ERROR,
         "An expression that cannot be computed: a division by zero, arithmetic on a shape or a "
         "boolean, a product beyond 10^15, a number or result beyond a float's range "
         "(about 1.8e308)."),
    Code("E-CHANNELS", ERROR, "A channel count that is not a whole number (`c/3` with c = 10)."),
    Code("E-SHAPE", ERROR,
         "The layer cannot take the shape it is given (PyTorch would raise here): e.g. a merge "
         "of branches whose shapes differ, or a residual body whose change of shape no "
         "projection can bridge."),
    Code("E-RANK", ERROR,
         "A layer that needs a feature map gets a vector, or the other way round (`flatten` "
         "turns a map into a vector)."),
    Code("E-GROUPS", ERROR, "`groups` must divide both the input and the output channels."),
    Code("E-KERNEL", ERROR, "The (dilated) kernel is larger than the padded input."),
    Code("E-PADDING", ERROR,
         "`reflect` padding must be smaller than the input, `circular` at most its size."),
    Code("E-EMPTY", ERROR,
         "A pooling window that leaves no output: with its padding (and dilation) the window "
         "does not fit the input even once; use a smaller window, padding, or less downsampling "
         "before the layer."),
    Code("E-CONCAT", ERROR,
         "concat joins along channels: the branches must agree on height and width."),
    Code("E-COMBINATOR", ERROR,
         "A combinator with the wrong number of branches, or an empty branch."),
    Code("E-RECURSION", ERROR, "A block that calls itself, directly or through other blocks."),
    Code("E-TOO-BIG", ERROR,
         "The network is too big: it expands to more than 5,000 layers (or takes too many steps "
         "to expand), or building it needs more memory for its parameters than the machine "
         "has."),
    Code("E-INTERNAL", ERROR,
         "archdsl itself failed on this spec: a bug; please report it with the spec."),
    Code("E-API", ERROR, "The Python API was called with a value of the wrong type."),
    Code("W-BIAS-BEFORE-BN", WARNING,
         "A convolution or linear layer's bias is cancelled by the batch norm right after it: "
         "write `nobias` to save the parameters."),
    Code("W-NO-NONLINEARITY", WARNING,
         "Two weighted layers with nothing nonlinear between them collapse into one linear map."),
    Code("W-DEEP-PLAIN", WARNING,
         "A deep chain of weighted layers without normalisation or shortcuts: hard to train."),
    Code("W-FINAL-ACTIVATION", WARNING,
         "The network ends in an activation; a classifier usually ends in the last linear "
         "layer's scores."),
    Code("W-SOFTMAX-LOSS", WARNING,
         "The network ends in softmax, but the cross-entropy loss applies it already: training "
         "sees softmax twice."),
    Code("W-STRIDE-DROP", WARNING,
         "A strided window skips input rows or columns: some of the input never reaches the "
         "output."),
    Code("W-HUGE", WARNING,
         "The network is very large: its parameters, or one layer's output for a single sample, "
         "need more than 4 GiB in float32."),
    Code("W-CHANNELS-LAST", WARNING,
         "The input shape looks channels-last (HxWxC, as Keras and images store it: "
         "`input 32x32x3`), but archdsl reads CxHxW: write the channels first (`input 3x32x32`)."),
    Code("W-UNUSED", WARNING,
         "A value nothing reads: a name given with `-> a` and never used, or a layer whose "
         "output goes nowhere (the running value was replaced by a named one before it was "
         "read)."),
    Code("W-SHADOW", WARNING,
         "A block of the spec has the name of a built-in layer kind: in this file the name "
         "means the block (a spec written before the kind existed keeps its meaning)."),
    Code("W-HIDDEN-NAME", WARNING,
         "A name the spec declares hides one of the language's own: `def max(…)` hides the "
         "built-in function, a parameter `true` the value."),
)}


def explain_code(code: str) -> str | None:
    """The one-paragraph meaning of a diagnostic code, or None for an unknown one."""
    declared = CODES.get(code)
    return declared.meaning if declared else None
