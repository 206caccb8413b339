"""The VS Code extension in editors/vscode/: its TextMate grammar colours every token of
every spec (read by a small TextMate tokenizer below), keywords, kinds and combinators get
their scopes, the grammar is what tools/vscode_grammar.py writes from the registry, and
package.json, the language configuration and the client hold together."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pygments.lexers import get_lexer_by_name
from pygments.token import Comment, Keyword, Name, Number

from archdsl.fmt import tokens
from archdsl.layers import REGISTRY
from archdsl.layers.merge import combinator_names

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "editors" / "vscode"
GRAMMAR_FILE = EXTENSION / "syntaxes" / "arch.tmLanguage.json"
SPECS = sorted((ROOT / "specs").glob("*.arch"))


# ----------------------------------------------------------------------------- a TextMate tokenizer

_KEYS = {"match", "name", "captures", "begin", "end", "beginCaptures", "endCaptures",
         "patterns", "contentName", "include", "comment", "$comment"}


class TextMate:
    """The part of TextMate's tokenizing that the grammar uses: `match` rules with `captures`,
    `begin`/`end` regions with their captures and inner `patterns`, `#name` includes from
    the repository. At each position the rule matching earliest wins, the first listed on a
    tie, and a region's `end` is tried before its patterns (as vscode-textmate does). Lines
    are matched one at a time with their "\\n", as VS Code passes them."""

    def __init__(self, grammar: dict):
        self.grammar, self.repository = grammar, grammar.get("repository", {})
        self._compiled: dict[str, re.Pattern] = {}
        for rule in [grammar, *self.repository.values()]:
            self._check(rule)

    def _check(self, rule: dict):
        unknown = set(rule) - _KEYS - {"scopeName", "fileTypes", "repository"}
        assert not unknown, f"the test's tokenizer does not implement {unknown}"
        for inner in rule.get("patterns", []):
            self._check(inner)

    def regex(self, source: str) -> re.Pattern:
        if source not in self._compiled:
            self._compiled[source] = re.compile(source)
        return self._compiled[source]

    def rules(self, patterns: list[dict], seen: frozenset = frozenset()) -> list[dict]:
        """`patterns` with their includes replaced by the rules they name."""
        out = []
        for rule in patterns:
            include = rule.get("include")
            if include is None:
                out.append(rule)
                continue
            assert include.startswith("#"), f"unsupported include {include}"
            target = self.repository[include[1:]]
            if "match" in target or "begin" in target:
                out.append(target)
            elif include not in seen:
                out += self.rules(target["patterns"], seen | {include})
        return out

    def scopes(self, text: str) -> list[tuple[str, ...]]:
        """The scopes of each character of `text`, outermost first."""
        out: list[tuple[str, ...]] = []
        stack: list[dict] = []  # the open begin/end regions
        for line in text.split("\n"):
            line_scopes = self._line(line + "\n", stack)
            out += line_scopes
        return out[:len(text)]

    def _line(self, line: str, stack: list[dict]) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        pos = 0
        while pos < len(line):
            base = self._base(stack)
            candidates = [({"end": stack[-1]["end"]}, "end")] if stack else []
            patterns = stack[-1].get("patterns", []) if stack else self.grammar["patterns"]
            candidates += [(rule, "rule") for rule in self.rules(patterns)]
            best = None
            for rule, role in candidates:
                source = rule["end"] if role == "end" else rule.get("match", rule.get("begin"))
                m = self.regex(source).search(line, pos)
                if m and (best is None or m.start() < best[0].start()):
                    best = (m, rule, role)
            if best is None:
                out += [base] * (len(line) - pos)
                break
            m, rule, role = best
            out += [base] * (m.start() - pos)
            if role == "end":
                region = stack.pop()
                out += self._captured(m, base, None, region.get("endCaptures",
                                                                region.get("captures", {})))
            elif "begin" in rule:
                out += self._captured(m, base, rule.get("name"),
                                      rule.get("beginCaptures", rule.get("captures", {})))
                stack.append(rule)
            else:
                out += self._captured(m, base, rule.get("name"), rule.get("captures", {}))
            if m.end() == m.start() and role != "end" and "begin" not in rule:
                out.append(base)  # an empty match: step over one character
                pos = m.end() + 1
            else:
                pos = m.end()
        return out

    def _base(self, stack: list[dict]) -> tuple[str, ...]:
        scopes = [self.grammar["scopeName"]]
        for region in stack:
            scopes += [s for s in (region.get("name"), region.get("contentName")) if s]
        return tuple(scopes)

    @staticmethod
    def _captured(m: re.Match, base, name, captures) -> list[tuple[str, ...]]:
        chars = [list(base) + ([name] if name else []) for _ in range(m.end() - m.start())]
        for group in sorted(captures, key=int):
            start, end = m.span(int(group))
            if start >= 0 and "name" in captures[group]:
                for i in range(start, end):
                    chars[i - m.start()].append(captures[group]["name"])
        return [tuple(c) for c in chars]


def meaningful(scopes: tuple[str, ...]) -> list[str]:
    """The scopes that colour: not the file's own scope nor a meta.* scope."""
    return [s for s in scopes[1:] if not s.startswith("meta.")]


@pytest.fixture(scope="module")
def tm():
    """The grammar tools/vscode_grammar.py writes from the registry as it is now: the committed
    file, while test_the_committed_grammar_is_what_the_tool_writes_from_the_registry passes
    (and a kind registered at run time is in it)."""
    return TextMate(json.loads(_tool().text()))


def scope_of(tm: TextMate, text: str, word: str, nth: int = 0) -> str:
    """The innermost colouring scope of the `nth` occurrence of `word` in `text` (at each of
    its characters, which must agree)."""
    pattern = re.escape(word)
    if re.fullmatch(r"\w+", word):  # a whole word, not a piece of a longer one
        pattern = rf"(?<!\w){pattern}(?!\w)"
    starts = [m.start() for m in re.finditer(pattern, text)]
    start = starts[nth]
    found = {(meaningful(s) or ["<default>"])[-1] for s in tm.scopes(text)[start:start + len(word)]}
    assert len(found) == 1, f"{word!r} in {text!r} is coloured in pieces: {found}"
    return found.pop()


# ----------------------------------------------------------------------------- the specs


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_token_of_every_spec_gets_a_scope(tm, path):
    text = path.read_text()
    scopes = tm.scopes(text)
    pieces = [(offset, tok) for kind, tok, offset in tokens(text)
              if kind not in ("space", "newline")]
    pieces += [(offset, tok) for offset, _, tok in
               get_lexer_by_name("arch").get_tokens_unprocessed(text) if tok.strip()]
    bare = sorted({(text.count("\n", 0, offset) + 1, tok) for offset, tok in pieces
                   if any(not meaningful(s) for s in scopes[offset:offset + len(tok)])})
    assert bare == [], f"tokens left in the default colour (line, token): {bare[:20]}"


_LEXICAL = {"comment": "comment.line.number-sign.arch", "shape": "constant.numeric.shape.arch",
            "float": "constant.numeric.float.arch", "int": "constant.numeric.integer.arch"}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_the_grammar_agrees_with_archdsls_tokens_and_the_pygments_lexer(tm, path):
    """Comments and numbers as archdsl's tokenizer cuts them; keywords, kinds, combinators
    and arguments where the Pygments lexer sees them (a parameter named like a short
    argument, `d3` in `(d3-9)` or `d3+6`, is a value here and a flag there)."""
    text = path.read_text()
    scopes = tm.scopes(text)
    wrong = []
    for kind, tok, offset in tokens(text):
        want = _LEXICAL.get(kind)
        if want and want not in scopes[offset]:
            wrong.append((tok, want, scopes[offset]))
    expected = {Keyword: "keyword.", Name.Function: "support.function.layer.arch",
                Name.Builtin: "keyword.control.combinator.arch", Name.Attribute: "variable.",
                Comment.Single: "comment.", Number.Integer: "constant.numeric.",
                Number.Float: "constant.numeric.float.arch", Number: "constant.numeric."}
    for offset, ttype, tok in get_lexer_by_name("arch").get_tokens_unprocessed(text):
        want = expected.get(ttype)
        if want and not any(s.startswith(want) for s in scopes[offset]):
            wrong.append((tok, want, scopes[offset]))
    assert wrong == []


# ----------------------------------------------------------------------------- words and constructs


def test_every_keyword_is_coloured_as_a_keyword(tm):
    text = ("arch net(c=8)\ninput 3x32x32\ninit resnet\ndef half(v) = v // 2\n"
            "block b(c) { repeat (2 if c > 4 else 1) { conv c k3 } }\nb 8\n")
    for word in ("arch", "input", "init", "def", "block", "repeat", "if", "else"):
        assert scope_of(tm, text, word).startswith("keyword."), word
    assert scope_of(tm, text, "net") == "entity.name.type.arch"
    assert scope_of(tm, text, "half") == "entity.name.function.def.arch"
    assert scope_of(tm, text, "b", 0) == "entity.name.function.block.arch"
    assert scope_of(tm, text, "b", 1) == "entity.name.function.call.arch"
    assert scope_of(tm, "x; b 8\n", "b") == "entity.name.function.call.arch"


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_registered_kind_is_coloured_as_a_kind(tm, kind):
    for text in (f"{kind} 8\n", f"conv 8; {kind}\n", f"residual< {kind} | {kind} >\n",
                 f"repeat 2 {{ {kind} }}\n", f"block b(act={kind}) {{ act }}\n"):
        assert scope_of(tm, text, kind) == "support.function.layer.arch", text


@pytest.mark.parametrize("name", combinator_names())
def test_every_combinator_and_its_brackets_are_coloured(tm, name):
    text = f"{name}< conv 8 | identity >\n"
    assert scope_of(tm, text, name) == "keyword.control.combinator.arch"
    assert scope_of(tm, text, "<") == "punctuation.section.combinator.begin.arch"
    assert scope_of(tm, text, "|") == "punctuation.separator.branch.arch"
    assert scope_of(tm, text, ">") == "punctuation.section.combinator.end.arch"


def test_arguments_numbers_and_operators(tm):
    text = "conv c*4 k3 s2 p1 k1x7 s=2 nobias bias=false eps=0.001 p=(k-1)//2  # note\n"
    scopes = tm.scopes(text)
    for short in ("k3", "s2", "p1", "k1x7"):
        at = text.index(short)
        assert scopes[at][-1] == "variable.parameter.short.arch"
        assert {s[-1] for s in scopes[at + 1:at + len(short)]} == {"constant.numeric.integer.arch"}
    assert scope_of(tm, text, "c") == "variable.other.arch"
    assert tm.scopes(text)[text.index("s=2")][-1] == "variable.parameter.keyword.arch"
    assert tm.scopes(text)[text.index("s=2") + 1][-1] == "keyword.operator.assignment.arch"
    assert scope_of(tm, text, "nobias") == "constant.language.flag.arch"
    assert scope_of(tm, text, "false") == "constant.language.boolean.arch"
    assert scope_of(tm, text, "0.001") == "constant.numeric.float.arch"
    assert scope_of(tm, text, "*") == "keyword.operator.arithmetic.arch"
    assert scope_of(tm, text, "//") == "keyword.operator.arithmetic.arch"
    assert scope_of(tm, text, "note") == "comment.line.number-sign.arch"
    assert scope_of(tm, text, "#") == "punctuation.definition.comment.arch"
    assert scope_of(tm, "input 3x224x224\n", "3x224x224") == "constant.numeric.shape.arch"
    assert scope_of(tm, "linear 10\n", "10") == "constant.numeric.integer.arch"


def test_angle_brackets_inside_parentheses_compare_and_outside_close_a_combinator(tm):
    text = "residual< repeat (1 if c > 8 else 0) { relu } >\n"
    assert scope_of(tm, text, ">", 0) == "keyword.operator.comparison.arch"
    assert scope_of(tm, text, ">", 1) == "punctuation.section.combinator.end.arch"
    assert scope_of(tm, "x = (a <= b)\n", "<=") == "keyword.operator.comparison.arch"
    # a parenthesis left open carries on to the next line, as a parameter list does
    text = "arch net(width=1.0,\n         classes=10)\nrelu\n"
    assert scope_of(tm, text, "classes") == "variable.parameter.keyword.arch"
    assert scope_of(tm, text, "relu") == "support.function.layer.arch"
    text = "def f(v) = max(8, floor(v)) + g(v)\n"
    assert scope_of(tm, text, "max") == "support.function.builtin.arch"
    assert scope_of(tm, text, "floor") == "support.function.builtin.arch"
    assert scope_of(tm, text, "g") == "entity.name.function.call.arch"
    assert scope_of(tm, "resnet< relu >\n", "resnet") == "invalid.illegal.combinator.arch"


# ----------------------------------------------------------------------------- generated, packaged


def _tool():
    spec = importlib.util.spec_from_file_location("vscode_grammar",
                                                  ROOT / "tools" / "vscode_grammar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_grammar_is_what_the_tool_writes_from_the_registry():
    tool = _tool()
    assert GRAMMAR_FILE.read_text() == tool.text(), "run tools/vscode_grammar.py"
    kinds = tool.grammar()["repository"]["layer-kind"]["match"]
    assert all(re.search(kinds, f" {kind} ") for kind in REGISTRY)


def test_package_json_declares_the_language_grammar_and_client():
    package = json.loads((EXTENSION / "package.json").read_text())
    for key in ("name", "publisher", "version", "engines", "main"):
        assert package[key], key
    assert (EXTENSION / package["main"]).is_file()
    [language] = package["contributes"]["languages"]
    assert language["id"] == "arch" and language["extensions"] == [".arch"]
    assert (EXTENSION / language["configuration"]).is_file()
    [grammar] = package["contributes"]["grammars"]
    assert grammar["language"] == "arch"
    assert (EXTENSION / grammar["path"]).resolve() == GRAMMAR_FILE
    assert json.loads(GRAMMAR_FILE.read_text())["scopeName"] == grammar["scopeName"]
    assert "vscode-languageclient" in package["dependencies"]
    assert (EXTENSION / "README.md").is_file()


def test_language_configuration_comments_and_brackets():
    config = json.loads((EXTENSION / "language-configuration.json").read_text())
    assert config["comments"] == {"lineComment": "#"}
    pairs = [["{", "}"], ["<", ">"], ["(", ")"]]
    assert config["brackets"] == pairs
    assert [[p["open"], p["close"]] for p in config["autoClosingPairs"]] == pairs
    increase = re.compile(config["indentationRules"]["increaseIndentPattern"])
    decrease = re.compile(config["indentationRules"]["decreaseIndentPattern"])
    assert increase.match("block b(c) {") and increase.match("residual<  # body")
    assert decrease.match("  | conv 8") and decrease.match("}") and not decrease.match("relu")


_ACTIVATE = r"""
const Module = require("module");
const started = [];
class LanguageClient {
  constructor(id, name, server, client) { Object.assign(this, {id, name, server, client}); }
  async start() { started.push(this); }
  stop() {}
}
const fakes = {
  "vscode": {workspace: {getConfiguration: () => ({get: () => process.argv[2] || undefined})},
             window: {showErrorMessage: (m) => { throw new Error(m); }}},
  "vscode-languageclient/node": {LanguageClient, TransportKind: {stdio: 0}},
};
const load = Module._load;
Module._load = function (request, ...rest) {
  return request in fakes ? fakes[request] : load.call(this, request, ...rest);
};
const extension = require(process.argv[1]);
const context = {subscriptions: []};
extension.activate(context).then(() => {
  const c = started[0];
  console.log(JSON.stringify({id: c.id, server: c.server, selector: c.client.documentSelector,
                              subscribed: context.subscriptions.length}));
});
"""


def _activate(server_path: str = "") -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the client cannot be loaded")
    out = subprocess.run([node, "-e", _ACTIVATE, str(EXTENSION / "extension.js"), server_path],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_client_starts_archdsl_lsp_over_stdio_for_arch_files():
    started = _activate()
    assert started["server"] == {"command": "archdsl", "args": ["lsp"], "transport": 0}
    assert {s["language"] for s in started["selector"]} == {"arch"}
    assert started["subscribed"] == 1
    assert _activate("/opt/venv/bin/archdsl")["server"]["command"] == "/opt/venv/bin/archdsl"


def test_the_command_the_client_runs_answers_initialize():
    """`archdsl lsp --stdio`, what vscode-languageclient runs for the stdio transport."""
    archdsl = Path(sys.executable).parent / "archdsl"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    exit_ = json.dumps({"jsonrpc": "2.0", "method": "exit"})
    message = "".join(f"Content-Length: {len(b)}\r\n\r\n{b}" for b in (body, exit_))
    out = subprocess.run([str(archdsl), "lsp", "--stdio"], input=message.encode(),
                         capture_output=True, timeout=120)
    reply = json.loads(out.stdout.split(b"\r\n\r\n", 1)[1].split(b"Content-Length")[0])
    assert reply["id"] == 1 and "hoverProvider" in reply["result"]["capabilities"]
