"""What each diagnostic code means: the language server shows it when the pointer rests on a
diagnostic. The codes and their meaning are those of docs/language.md and docs/cli.md."""

from __future__ import annotations

CODES: dict[str, str] = {
    "E-SYNTAX": "The text does not follow the grammar: a character or word where the "
                "language expects something else (statements are separated by `;` or new "
                "lines, arguments by spaces, branches by `|`).",
    "E-NESTING": "The spec nests too deeply (or an expression chains too many operations) to "
                 "be checked; define a `block` for the inner part.",
    "E-PLACEMENT": "`arch`, `input`, `init` and `block` belong at the top level of the file, "
                   "not inside a block, repeat or combinator.",
    "E-DUPLICATE": "Something that may appear once appears twice: a block defined twice, two "
                   "`arch` headers, two `input` or `init` lines, or a block named like a kind.",
    "E-INIT": "`init` takes a scheme (`pytorch`, `resnet`) and that scheme's options only.",
    "E-FILE": "The file cannot be read, or is too large to be a spec.",
    "E-INPUT": "`input` is one sample's shape: CxHxW or a feature count, each at least 1.",
    "E-NO-INPUT": "The spec has no `input` line, so no shape can be checked; add e.g. "
                  "`input 3x224x224`.",
    "E-PARAM": "An `arch` parameter is missing a value, or a value was set for a name the "
               "header does not declare.",
    "E-UNKNOWN-LAYER": "The statement names neither a layer kind nor a block defined in the "
                       "file.",
    "E-UNKNOWN-NAME": "A name that is no parameter in scope, no flag and no word the kind "
                      "declares.",
    "E-UNKNOWN-ARG": "A keyword the layer kind (or block) does not take.",
    "E-ARG-MISSING": "A required argument is not given (e.g. `conv` needs its output "
                     "channels and a kernel).",
    "E-ARG-COUNT": "More positional values than the kind or block takes, or a block "
                   "parameter without a default left out.",
    "E-ARG-DUPLICATE": "The same argument is given twice (`k3 kernel=5`).",
    "E-ARG-TYPE": "A value of the wrong type: a shape where a number belongs, a fraction "
                  "where a whole number belongs, a word the argument does not take.",
    "E-ARG-RANGE": "A value outside what the argument accepts (a kernel of 0, a negative "
                   "padding, `same` with a stride).",
    "E-EXPR": "An expression that cannot be computed: a division by zero, arithmetic on a "
              "shape or a boolean, a product beyond 10^15.",
    "E-CHANNELS": "A channel count that is not a whole number (`c/3` with c = 10).",
    "E-SHAPE": "The layer cannot take the shape it is given (PyTorch would raise here): e.g. "
               "a merge of branches whose shapes differ, or a window larger than the input.",
    "E-RANK": "A layer that needs a feature map gets a vector, or the other way round "
              "(`flatten` turns a map into a vector).",
    "E-GROUPS": "`groups` must divide both the input and the output channels.",
    "E-KERNEL": "The (dilated) kernel is larger than the padded input.",
    "E-PADDING": "`reflect` padding must be smaller than the input, `circular` at most its "
                 "size.",
    "E-CONCAT": "concat joins along channels: the branches must agree on height and width.",
    "E-COMBINATOR": "A combinator with the wrong number of branches, or an empty branch.",
    "E-RECURSION": "A block that calls itself, directly or through other blocks.",
    "E-TOO-BIG": "The network expands to more than 5,000 layers.",
    "E-INTERNAL": "archdsl itself failed on this spec: a bug; please report it with the spec.",
    "E-API": "The Python API was called with a value of the wrong type.",
    "W-BIAS-BEFORE-BN": "A convolution or linear layer's bias is cancelled by the batch norm "
                        "right after it: write `nobias` to save the parameters.",
    "W-NO-NONLINEARITY": "Two weighted layers with nothing nonlinear between them collapse "
                         "into one linear map.",
    "W-DEEP-PLAIN": "A deep chain of weighted layers without normalisation or shortcuts: "
                    "hard to train.",
    "W-FINAL-ACTIVATION": "The network ends in an activation; a classifier usually ends in "
                          "the last linear layer's scores.",
    "W-SOFTMAX-LOSS": "The network ends in softmax, but the cross-entropy loss applies it "
                      "already: training sees softmax twice.",
    "W-STRIDE-DROP": "A strided window skips input rows or columns: some of the input never "
                     "reaches the output.",
    "W-HUGE": "The network is very large (parameters, MACs or memory).",
}


def explain_code(code: str) -> str | None:
    """The one-paragraph explanation of a diagnostic code, or None for an unknown one."""
    return CODES.get(code)
