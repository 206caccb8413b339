"""The reference docs stay in step with the code."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_layer_reference_is_generated_from_the_registry():
    run = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_layers.py"), "--check"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_diagnostic_code_is_documented():
    source = "".join(p.read_text() for p in (ROOT / "archdsl").rglob("*.py"))
    codes = set(re.findall(r'"([EW]-[A-Z-]+[A-Z])"', source))
    doc = (ROOT / "docs" / "language.md").read_text()
    assert {c for c in codes if f"| {c} |" not in doc} == set()


def test_layer_summaries_keep_the_case_of_their_maths():
    sys.path.insert(0, str(ROOT / "docs"))
    from gen_layers import summary_sentence

    assert summary_sentence("max(0, x)") == "Output: max(0, x)."
    assert summary_sentence("x·sigmoid(x), also called swish") == \
        "Output: x·sigmoid(x), also called swish."
    assert summary_sentence("x for x > 0, slope·x otherwise") == \
        "Output: x for x > 0, slope·x otherwise."
    assert summary_sentence("max pooling (torch.nn.MaxPool2d)") == \
        "Max pooling (torch.nn.MaxPool2d)."
    doc = (ROOT / "docs" / "language.md").read_text()
    assert "Max(0, x)" not in doc and "X·sigmoid(x)" not in doc


def test_readme_and_docs_name_only_files_that_exist():
    """A path such as `specs/mynet.arch` or `LANGUAGE.md` in the docs must be in the project."""
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                *sorted((ROOT / "specs").glob("*.arch"))]:
        for path in re.findall(r"(?<![\w/.-])((?:specs|docs|tests|archdsl|tools|benchmarks)/"
                               r"[\w./-]*\w\.(?:arch|md|py|toml))\b", doc.read_text()):
            if "*" not in path and not (ROOT / path).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
        if re.search(r"\bLANGUAGE\.md\b", doc.read_text()):
            missing.append(f"{doc.relative_to(ROOT)}: LANGUAGE.md")
    assert missing == []


def test_architecture_md_names_every_test_file():
    """The table "Tests, by stage" of docs/architecture.md names every test file, and only
    files that exist (a file renamed after what it tests is renamed there too)."""
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("## Tests, by stage", 1)[1]
    named = set(re.findall(r"`(test_\w+\.py)`", table))
    files = {p.name for p in (root / "tests").glob("test_*.py")}
    assert sorted(files - named) == [] and sorted(named - files) == []


def test_architecture_md_names_every_module():
    """docs/architecture.md maps the whole package: a module added without a line there fails
    here (issue 21: 30% of the package was not mentioned)."""
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(root / "archdsl")) for p in sorted((root / "archdsl").rglob("*.py"))
               if p.name != "__init__.py" and str(p.relative_to(root / "archdsl")) not in text]
    assert missing == []
