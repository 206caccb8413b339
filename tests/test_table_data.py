"""CSV and TSV data sets (train/table_data.py) as a demanding user writes them, and predict's
CSV and lines (train/image_files.py): the table cases of the red-team report (issue 26, items
7, 12, 14, 16 and 18), each test carrying its reproducer. A table is never read into a silent
wrong result: a repeated image is one image, a header is read or refused, a label is a name,
and predict's output cannot be turned into a spreadsheet formula or an extra line."""

import csv
import io
from pathlib import Path

import pytest

from archdsl.train import DataError, load_dataset
from archdsl.train.data import printable
from archdsl.train.image_files import predictions_csv, spreadsheet_cell
from helpers import image_files, image_folder, run_cli, tiny_spec


def table(folder: Path, text: str, name: str = "labels.csv") -> str:
    (folder / name).write_text(text)
    return str(folder / name)


# ----------------------------------------------------------------------------- 7: duplicates


def test_rows_repeating_an_image_are_one_image_with_a_warning(tmp_path):
    """Reproducer: 100k rows over two images gave "100% val": the split was taken by row, so
    each image was in training and in validation. Here 2,000 rows, three spellings of each
    path."""
    image_files(tmp_path, ["img/cat.png", "img/dog.png"])
    spellings = ["img/{}.png", "./img/{}.png", "img//x/../{}.png"]
    (tmp_path / "img" / "x").mkdir()
    rows = "".join(f"{spellings[i % 3].format(('cat', 'dog')[i % 2])},{('cat', 'dog')[i % 2]}\n"
                   for i in range(2000))
    data = load_dataset(table(tmp_path, "path,label\n" + rows), val_split=0.5)
    assert data.classes == ["cat", "dog"]
    assert sorted(s.path.name for s in data.train + data.val) == ["cat.png", "dog.png"]
    assert data.val == []  # one image per class: it is kept for training
    assert data.warnings == [f"1,998 row(s) of {tmp_path / 'labels.csv'} repeat an image an "
                             "earlier row lists with the same label (the first: line 4, "
                             "img//x/../cat.png, as on line 2); each image is used once"]


def test_the_split_is_by_image_so_no_image_is_in_both_parts(tmp_path):
    image_files(tmp_path, [f"{i}.png" for i in range(10)])
    rows = "".join(f"{i % 10}.png,{'ab'[i % 2]}\n" for i in range(200))
    data = load_dataset(table(tmp_path, rows), val_split=0.4, seed=3)
    train, val = {s.path for s in data.train}, {s.path for s in data.val}
    assert len(train) == len(data.train) == 6 and len(val) == len(data.val) == 4
    assert not train & val


def test_one_image_under_two_labels_is_refused_naming_both_lines(tmp_path):
    image_files(tmp_path, ["img/a.png", "img/b.png"])
    path = table(tmp_path, "path,label\nimg/a.png,cat\nimg/b.png,dog\n./img/a.png,dog\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    assert str(err.value) == (f"{path}:4: ./img/a.png is labelled 'dog' here and 'cat' on "
                              "line 2 (the same image); an image has one label: remove the "
                              "wrong row")


def test_one_image_for_training_and_for_validation_is_refused(tmp_path):
    image_files(tmp_path, ["a.png", "b.png"])
    path = table(tmp_path, "a.png,cat,train\nb.png,dog,train\na.png,cat,val\n")
    with pytest.raises(DataError, match=r"labels.csv:3: a.png is for validation here and for "
                                        r"training on line 1"):
        load_dataset(path)


# ----------------------------------------------------------------------------- 7: the header


@pytest.mark.parametrize("header", ["path,label", "Path,Label", " FILE , Class ", "image,class",
                                    "filename,label,split", "File_Name,Category,Split"])
def test_a_header_naming_the_columns_in_other_words_is_read(tmp_path, header):
    image_files(tmp_path, ["a.png", "b.png"])
    split = ",train" if "split" in header.lower() else ""
    data = load_dataset(table(tmp_path, f"{header}\na.png,cat{split}\nb.png,dog{split}\n"))
    assert data.classes == ["cat", "dog"] and data.skipped == [] and data.empty_classes == []


@pytest.mark.parametrize("header", ["img,lbl", "path,labels", "label,path", "path,label,fold",
                                    "filename;label"])
def test_a_header_archdsl_does_not_read_is_refused_at_line_1(tmp_path, header):
    """Reproducer: `filename,class` (or any header not spelled `path,label`) was read as a row:
    its file was skipped as missing, and `class` became a class with no images, which the
    network trained an output for."""
    image_files(tmp_path, ["a.png", "b.png"])
    path = table(tmp_path, f"{header}\na.png,cat\nb.png,dog\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    assert str(err.value).startswith(f"{path}:1: the first row, {header!r}, is not a header "
                                     "archdsl reads (`path,label` or `path,label,split`")


def test_a_first_row_naming_an_image_needs_no_header(tmp_path):
    image_files(tmp_path, ["label.png", "b.png"])  # a file may be named like a column, too
    data = load_dataset(table(tmp_path, "label.png,cat\nb.png,dog\n"))
    assert sorted(s.path.name for s in data.train + data.val) == ["b.png", "label.png"]


# ----------------------------------------------------------------------------- 7: missing files


def test_a_label_whose_files_are_all_missing_is_no_class(tmp_path):
    """Reproducer: a row naming a missing file turned its label into a class with no images,
    and the network trained an output for it."""
    image_files(tmp_path, [f"{i}.png" for i in range(4)])
    data = load_dataset(table(tmp_path, "0.png,a\n1.png,a\n2.png,b\n3.png,b\ngone.png,c\n"
                                        "gone.png,c\n"))
    assert data.classes == ["a", "b"]
    assert data.empty_classes == ["c"]  # said like a folder's: "left out 1 class … 'c'"
    assert data.skipped == [(str(tmp_path / "gone.png"), "no such file")]  # listed once


def test_a_training_class_whose_images_are_missing_is_refused_when_it_has_val_rows(tmp_path):
    image_files(tmp_path, ["a.png", "b.png", "c.png", "d.png"])
    path = table(tmp_path, "a.png,x,train\nb.png,y,train\ngone.png,z,train\nc.png,z,val\n")
    with pytest.raises(DataError, match=r"labels.csv has validation images of 'z' but no "
                                        r"usable training image of it"):
        load_dataset(path)


# ----------------------------------------------------------------------------- 12, 18: labels


def test_labels_are_names_any_text_is_a_class(tmp_path):
    """Reproducer: the labels `--5` and `²` gave an internal error (`int('--5')`: isdigit took
    them for integers)."""
    image_files(tmp_path, ["a.png", "b.png", "c.png"])
    data = load_dataset(table(tmp_path, "a.png,--5\nb.png,²\nc.png,3\n"))
    assert data.classes == ["--5", "3", "²"]  # not all integers: ordered as text


def test_labels_through_the_command_line_are_no_internal_error(tmp_path, capsys):
    image_files(tmp_path, [f"{i}.png" for i in range(4)])
    path = table(tmp_path, "0.png,--5\n1.png,²\n2.png,--5\n3.png,²\n")
    code, out, err = run_cli(capsys, "train", tiny_spec(tmp_path), path, "--epochs", "1",
                             "--out", tmp_path / "r", "--quiet")
    assert code == 0 and "internal error" not in err


def test_integer_labels_are_ordered_as_numbers(tmp_path):
    image_files(tmp_path, ["a.png", "b.png", "c.png"])
    data = load_dataset(table(tmp_path, "a.png,10\nb.png,-2\nc.png,+3\n"))
    assert data.classes == ["-2", "+3", "10"]


@pytest.mark.parametrize("labels, first, second", [(("1", "01"), "1", "01"),
                                                    (("7", "+7"), "7", "+7"),
                                                    (("cat", "0", "-0"), "0", "-0")])
def test_one_number_written_two_ways_is_refused(tmp_path, labels, first, second):
    """Reproducer: the labels `1` and `01` became two classes (a spreadsheet that dropped the
    zeros of some cells trains a network with an output too many)."""
    image_files(tmp_path, [f"{i}.png" for i in range(len(labels))])
    path = table(tmp_path, "path,label\n" + "".join(f"{i}.png,{label}\n"
                                                    for i, label in enumerate(labels)))
    with pytest.raises(DataError) as err:
        load_dataset(path)
    line = 2 + labels.index(second)
    assert str(err.value) == (
        f"{path}:{line}: the label {second!r} is the number {first!r} of line {line - 1} "
        "written another way; labels are compared as written, so they would be two classes: "
        "write each class one way")


def test_a_label_with_a_line_break_is_refused(tmp_path):
    image_files(tmp_path, ["a.png", "b.png"])
    path = table(tmp_path, 'a.png,cat\nb.png,"dog\nb.png,x"\n')  # an unbalanced quote
    with pytest.raises(DataError, match=r"labels.csv:2: the label 'dog\\nb.png,x' holds a "
                                        r"control character"):
        load_dataset(path)


# ----------------------------------------------------------------------------- 18: paths


def test_rows_leaving_the_tables_folder_are_counted_in_a_warning(tmp_path):
    """Reproducer: absolute paths and paths with `..` were accepted without a word."""
    image_files(tmp_path, ["outside/a.png", "outside/b.png", "data/c.png", "data/d.png"])
    rows = (f"{tmp_path / 'outside' / 'a.png'},x\n../outside/b.png,x\nc.png,y\n"
            "sub/../d.png,y\n")
    (tmp_path / "data" / "sub").mkdir()
    data = load_dataset(table(tmp_path / "data", rows))
    assert len(data.train + data.val) == 4
    assert data.warnings == [f"2 row(s) of {tmp_path / 'data' / 'labels.csv'} name images "
                             "outside its folder (an absolute path or `..`; the first: line 1, "
                             f"{tmp_path / 'outside' / 'a.png'}), so the data set is not only "
                             "that folder: moving it would lose them"]


def test_a_fingerprint_takes_images_outside_the_folder(tmp_path):
    from archdsl.train.data import fingerprint

    image_files(tmp_path, ["outside/a.png", "data/b.png"])
    data = load_dataset(table(tmp_path / "data", "../outside/a.png,x\nb.png,y\n"))
    assert set(fingerprint(data)["classes"]) == {"x", "y"}


# ----------------------------------------------------------------------------- 16: all val


def test_a_table_of_val_rows_only_says_there_is_nothing_to_train_on(tmp_path, capsys):
    """Reproducer: every row `val`, `--workers 0`: "has 0 training image(s), fewer than the 1
    workers"."""
    image_files(tmp_path, ["a.png", "b.png"])
    path = table(tmp_path, "path,label,split\na.png,x,val\nb.png,y,val\n")
    code, _, err = run_cli(capsys, "train", tiny_spec(tmp_path), path, "--workers", "0",
                           "--out", tmp_path / "r")
    assert code == 1 and "workers" not in err and "no training images" in err


def test_a_table_of_val_rows_only_is_a_test_set_for_eval(tmp_path):
    image_files(tmp_path, ["a.png", "b.png"])
    data = load_dataset(table(tmp_path, "path,label,split\na.png,x,test\nb.png,y,val\n"))
    assert data.train == [] and len(data.val) == 2 and data.split == "table"


def test_a_tables_warnings_reach_stderr(tmp_path, capsys):
    image_files(tmp_path, [f"{i}.png" for i in range(4)])
    path = table(tmp_path, "0.png,a\n1.png,a\n2.png,b\n3.png,b\n0.png,a\n")
    code, _, err = run_cli(capsys, "train", tiny_spec(tmp_path), path, "--epochs", "1",
                           "--out", tmp_path / "r", "--quiet")
    assert code == 0 and "warning: 1 row(s) of" in err


# ----------------------------------------------------------------------------- 14: predict


@pytest.mark.parametrize("text, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+cmd", "'+1+cmd"),
    ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-5", "-5"), ("+3", "+3"), ("-0.25", "-0.25"), ("cat", "cat"), ("a=b", "a=b"), ("", "")])
def test_a_cell_a_spreadsheet_would_run_as_a_formula_starts_with_a_quote(text, cell):
    assert spreadsheet_cell(text) == cell


def test_predictions_csv_quotes_paths_classes_and_errors_that_start_a_formula():
    results = [("=cmd|' /C calc'!A0.png", [("+a", 0.75), ("-5", 0.25)], None),
               ("@x.png", None, "cannot read it as an image (not an image)")]
    rows = list(csv.reader(io.StringIO(predictions_csv(results, 2))))
    assert rows == [["path", "label_1", "prob_1", "label_2", "prob_2", "error"],
                    ["'=cmd|' /C calc'!A0.png", "'+a", "0.750000", "-5", "0.250000", ""],
                    ["'@x.png", "", "", "", "", "cannot read it as an image (not an image)"]]


@pytest.mark.parametrize("name, shown", [("a\nb", "a\\nb"), ("a\rb\tc", "a\\rb\\tc"),
                                         ("\x1b[31mred", "\\x1b[31mred"),
                                         ("x\u2028y\x85", "x\\u2028y\\x85"),
                                         ("été", "été"), (b"b\xff", "b\\xff")])
def test_printable_names_are_one_line_with_control_characters_escaped(name, shown):
    assert printable(name) == shown


def test_predict_prints_one_line_per_image_and_a_csv_a_spreadsheet_cannot_run(
        tmp_path, capsys, monkeypatch):
    """Reproducer: `predict --csv` wrote the class `=cmd` and the file `=z.png` as they are
    (a spreadsheet runs them as formulas), and a file or class named with a newline broke the
    one-line-per-image output."""
    data = image_folder(tmp_path / "d", classes=("=cmd", "b\nc"), per_class=3)
    code, _, err = run_cli(capsys, "train", tiny_spec(tmp_path), data, "--epochs", "1",
                           "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    names = ["=z.png", "@y.png", "two\nlines.png"]
    monkeypatch.chdir(image_files(tmp_path / "in", names))
    code, out, err = run_cli(capsys, "predict", tmp_path / "r", *names, "--top", "2")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["=z.png", "@y.png", "two\\nlines.png"]
    assert all("=cmd" in line and "b\\nc" in line for line in lines)
    code, out, _ = run_cli(capsys, "predict", tmp_path / "r", *names, "--top", "2", "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["path"] for row in rows] == ["'=z.png", "'@y.png", "two\\nlines.png"]
    assert {row["label_1"] for row in rows} | {row["label_2"] for row in rows} == {"'=cmd",
                                                                                  "b\\nc"}
