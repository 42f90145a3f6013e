"""Check results for machines: JSON records, JUnit XML and GitHub Actions annotations.

One record per case and variable (and per hand-derived gradient and expected value), each carrying
the worst entry over the case's points and elements, so a reader sees what is wrong and where.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from ..checking.records import failure_text, records
from ..checking.runner import CaseResult
from ..language.source import GradcliError, error_location, printable, xml_safe

EXIT_PASSED, EXIT_FAILED, EXIT_ERROR, EXIT_EMPTY = 0, 1, 2, 5


def exit_code(results: list[CaseResult], errors: list[GradcliError]) -> int:
    """As pytest and ruff: 0 passed, 1 something failed, 2 unusable input, 5 nothing collected."""
    if errors or any(r.status == "error" for r in results):
        return EXIT_ERROR
    if not results:
        return EXIT_EMPTY
    return EXIT_FAILED if any(r.status == "failed" for r in results) else EXIT_PASSED


def summary(results: list[CaseResult], errors: list[GradcliError], files: int) -> dict[str, Any]:
    statuses = Counter(r.status for r in results)
    verdicts: Counter[str] = Counter()
    for outcome in results:
        for vc in outcome.checks:
            verdicts.update(vc.counts())
    return {
        "files": files,
        "cases": len(results),
        "passed": statuses["passed"],
        "failed": statuses["failed"],
        "errors": statuses["error"] + len(errors),
        "verdicts": dict(sorted(verdicts.items())),
        "seconds": round(sum(r.seconds for r in results), 6),
        "exit_code": exit_code(results, errors),
    }


def json_document(
    results: list[CaseResult], errors: list[GradcliError], files: int
) -> dict[str, Any]:
    return {
        "summary": summary(results, errors, files),
        "records": records(results),
        "errors": [_error_record(e) for e in errors],
    }


def _detail(err: GradcliError) -> str:
    """The message without the location that machine formats carry in fields of their own."""
    return getattr(err, "detail", err.message)


def _error_record(err: GradcliError) -> dict[str, Any]:
    record: dict[str, Any] = {"message": _detail(err)}
    where = error_location(err)
    if where is not None:
        record |= {"file": where[0], "line": where[1], "column": where[2]}
    if getattr(err, "key", None):
        record["key"] = err.key
    if err.hint:
        record["hint"] = err.hint
    return record


def junit_xml(results: list[CaseResult], errors: list[GradcliError], path: Path) -> None:
    """Write a JUnit XML report, valid under the Jenkins junit-10 schema that CI systems read,
    atomically."""
    suites: dict[str, list[CaseResult]] = {}
    for outcome in results:
        suites.setdefault(str(outcome.case.file or "<command line>"), []).append(outcome)
    root = ET.Element("testsuites", name="gradcli")
    totals = Counter()
    for name, outcomes in suites.items():
        suite = ET.SubElement(root, "testsuite", name=name)
        counts = Counter(o.status for o in outcomes)
        suite.set("tests", str(len(outcomes)))
        suite.set("failures", str(counts["failed"]))
        suite.set("errors", str(counts["error"]))
        suite.set("skipped", "0")
        suite.set("time", f"{sum(o.seconds for o in outcomes):.6f}")
        for outcome in outcomes:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=name,
                name=outcome.case.name,
                time=f"{outcome.seconds:.6f}",
            )
            if outcome.status != "passed":
                tag = "error" if outcome.status == "error" else "failure"
                # The junit-10 schema has no file or line attribute: the place goes in the text.
                text = f"{outcome.case.where}: {failure_text(outcome)}"
                node = ET.SubElement(
                    case,
                    tag,
                    message=text.splitlines()[0] if text else outcome.status,
                    type="gradient check" if tag == "failure" else "error",
                )
                node.text = text
        totals.update(tests=len(outcomes), failures=counts["failed"], errors=counts["error"])
    if errors:
        suite = ET.SubElement(
            root,
            "testsuite",
            name="check files",
            tests=str(len(errors)),
            failures="0",
            errors=str(len(errors)),
            skipped="0",
            time="0",
        )
        for err in errors:
            case = ET.SubElement(
                suite,
                "testcase",
                classname="check files",
                name=":".join(str(part) for part in (error_location(err) or ("input",))[:2]),
            )
            node = ET.SubElement(case, "error", message=err.message, type="unusable input")
            node.text = str(err)
        totals.update(tests=len(errors), errors=len(errors))
    for key in ("tests", "failures", "errors"):
        root.set(key, str(totals[key]))
    for element in root.iter():  # a case name or message may hold what XML cannot (\x00)
        element.text = None if element.text is None else xml_safe(element.text)
        for key, value in element.attrib.items():
            element.set(key, xml_safe(value))
    ET.indent(root)
    write_atomically(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write a report so that no reader ever sees half of it and nothing else is lost.

    A regular file (or a new one) is written beside itself and renamed over. A symlink is
    followed, and its target replaced the same way. A character device or a FIFO (/dev/null,
    /dev/stdout, a named pipe) is written in place, since replacing it would destroy it
    (as root, /dev/null became a file); a folder or other kind of file is refused. A missing
    parent folder is made, as pytest does for its reports."""
    path = Path(os.path.realpath(path))
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        kind = path.stat().st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        if stat.S_ISCHR(kind) or stat.S_ISFIFO(kind):
            with open(path, "wb") as handle:  # no O_CREAT race: it exists, and is not replaced
                handle.write(data)
            return
        if not stat.S_ISREG(kind):
            what = "a folder" if stat.S_ISDIR(kind) else "not a regular file"
            raise IsADirectoryError(errno.EISDIR, f"{what}, so it is not replaced", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename, so a crash cannot empty it
        os.chmod(tmp, _mode_for(path))  # mkstemp makes it private; a report is not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The mode of the file being replaced, or what a new file would get under the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _escape_data(text: str) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return printable(text)  # the log viewer obeys the other controls (escape sequences)


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(results: list[CaseResult], errors: list[GradcliError]) -> list[str]:
    """`::error` workflow commands at the file and line of each failing case and broken file."""
    lines = []
    for outcome in results:
        if outcome.status == "passed":
            continue
        case = outcome.case
        props = [f"title={_escape_property('gradcli: ' + case.name)}"]
        if case.file is not None:
            props = [f"file={_escape_property(str(case.file))}", f"line={case.line}", *props]
        lines.append(f"::error {','.join(props)}::{_escape_data(failure_text(outcome))}")
    for err in errors:
        props = [f"title={_escape_property('gradcli: unusable input')}"]
        where = error_location(err)
        if where is not None:
            file, line, col = where
            props = [f"file={_escape_property(file)}", f"line={line}", f"col={col}", *props]
        lines.append(f"::error {','.join(props)}::{_escape_data(_detail(err))}")
    return lines
