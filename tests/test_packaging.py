"""The wheel carries the parse tables: a non-editable install into a fresh virtual environment
works from any directory, without the source tree and without Lark."""

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_in_a_fresh_venv_parses_without_the_source_tree(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
    )
    (wheel,) = dist.glob("gradcli-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The runtime dependencies come from this interpreter's site-packages (a plain path entry:
    # the .pth files there, such as an editable install of gradcli, are not processed).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [
            python,
            "-c",
            "import sys, gradcli.language.parser as p; p.parse('x*y'); "
            "assert 'lark' not in sys.modules; print(p.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where
    assert (Path(where).parent / "_tables.py").is_file()
    # type checkers read the API's hints
    assert (Path(where).parent.parent / "py.typed").is_file()
    entry_points = next(Path(where).parents[2].glob("gradcli-*.dist-info")) / "entry_points.txt"
    assert "gradcli = gradcli.pytest_plugin" in entry_points.read_text()

    out = subprocess.run(
        [env_dir / "bin" / "gradcli", "eval", "x*y + x/y", "--x", "5", "--y", "2", "--json"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        check=True,
    )
    assert json.loads(out.stdout)["gradient"] == {"x": 2.5, "y": 3.75}


def test_the_installed_package_imports_from_any_directory(tmp_path):
    """An install (editable in development) is a regular package wherever Python starts."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gradcli; print(gradcli.__file__); "
            "print(gradcli.evaluate('x*y + x/y', {'x': 5, 'y': 2}).gradient['y'])",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.split()
    assert out[0].endswith("__init__.py") and out[1] == "3.75"
