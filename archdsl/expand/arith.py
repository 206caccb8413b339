"""Arithmetic statements (`y - x`, `(a + b) * 0.5`, `* 1.7015`) -> graph nodes: one node per
operation on a tensor. Two tensors meet in an element-wise merge (add, sub, mul, div:
broadcasting as torch does); a tensor and a number in a `scalar` node; what is only numbers
(parameters, indices, literals) is worked out here, as any argument is."""

from __future__ import annotations

from .. import layers
from ..diagnostics import DiagnosticError, error
from ..graph import LayerNode
from ..layers.arith import WORDS
from ..layers.base import Args
from ..syntax import Arith, BinOp, Name, Neg, Running
from .expressions import evaluate
from .named import Flow, flow_text, use

# each operator's word (layers/arith.py's WORDS) names both its element-wise merge (two
# tensors) and its `scalar` operation (a tensor and a number)


class Lowering:
    """One arithmetic statement of `walk` in `scope`, reading the running value `src`."""

    def __init__(self, walk, st: Arith, src: Flow, scope):
        self.walk, self.st, self.src, self.scope = walk, st, src, scope

    def emit(self) -> str:
        kind, value = self.value(self.st.expr)
        if kind == "number":
            raise DiagnosticError(error(
                "E-EXPR", "this statement is only numbers: arithmetic needs a tensor in it",
                self.st.span, hint="name the values to compute with (`conv 64 -> a`) and use "
                                   "them: `a * 0.5`, or start with an operator: `* 0.5`"))
        return value

    def tensor(self, e) -> bool:
        """Whether `e` reads a tensor: the running value, or a named value."""
        stack = [e]
        while stack:
            e = stack.pop()
            if isinstance(e, Running):
                return True
            if isinstance(e, Name) and e.name not in self.scope.values and (
                    self.scope.names.find(e.name) is not None or e.name in self.walk.known):
                return True
            if isinstance(e, BinOp):
                stack += [e.left, e.right]
            elif isinstance(e, Neg):
                stack.append(e.operand)
        return False

    def value(self, e) -> tuple[str, object]:
        """("number", v) or ("tensor", node) for expression `e`."""
        if not self.tensor(e):
            return "number", evaluate(e, self.scope.values)
        if isinstance(e, Running):
            if isinstance(self.src, tuple):
                raise DiagnosticError(error(
                    "E-ARITY", f"an operator at the start reads the running value, but "
                    f"{flow_text(self.src, self.walk.graph)}", e.span,
                    hint="write the values by name: `a - b`"))
            return "tensor", self.src
        if isinstance(e, Name):
            return "tensor", use(self.scope.names, e, self.walk.graph, self.walk.known)
        if isinstance(e, Neg):
            _, operand = self.value(e.operand)
            return "tensor", self.scalar("*", -1.0, operand, False, e)
        left, right = self.value(e.left), self.value(e.right)
        if left[0] == right[0] == "tensor":
            return "tensor", self.merge(e, [left[1], right[1]])
        number, node = (left[1], right[1]) if left[0] == "number" else (right[1], left[1])
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            side = e.left if left[0] == "number" else e.right
            raise DiagnosticError(error("E-EXPR", "a tensor is computed with numbers only",
                                        side.span, hint="write a number or a parameter"))
        return "tensor", self.scalar(e.op, float(number), node, left[0] == "number", e)

    def scalar(self, op: str, number: float, node: str, reversed_: bool, e) -> str:
        kind = layers.get("scalar")
        args = Args({"op": WORDS[op], "value": number, "reversed": reversed_})
        name = self.walk.add(LayerNode(self.scope.child_name("scalar"), kind, args, e.span,
                                       self.scope.groups))
        self.walk.graph.connect(node, name)
        return name

    def merge(self, e: BinOp, ends: list[str]) -> str:
        kind = layers.get(WORDS[e.op])
        name = self.walk.add(LayerNode(self.scope.child_name(kind.name), kind, Args({}), e.span,
                                       self.scope.groups))
        self.walk.merge_inputs(ends, name, e.span, self.scope)
        self.walk.graph.dataflow = True
        return name
