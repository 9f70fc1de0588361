"""A non-editable install into a fresh venv works from anywhere and shadows nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import RECORDER, ROOT, clean_env


def test_wheel_install_runs_from_another_directory(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # The program has a package called `cli` of its own: ours must not shadow it.
    project = tmp_path / "project"
    (project / "cli").mkdir(parents=True)
    (project / "cli" / "__init__.py").write_text("WHO = 'the user'\n")
    (project / "app.py").write_text("import cli\n\ndef main():\n    print(cli.WHO)\n\nmain()\n")
    for command in ([str(venv / "bin" / "hotpath")], [str(python), "-m", "hotpath"]):
        result = subprocess.run(
            [*command, "run", "--no-mcp", "app.py"],
            cwd=project,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "the user\n"
        assert "app.main" in result.stderr
        # The install built the compiled recorder (under HOTPATH_RECORDER=c a missing one
        # would have been exit 2).
        assert f"| {RECORDER} recorder" in result.stderr
    site = subprocess.run(
        [
            str(python),
            "-c",
            "import hotpath_cli, hotpath; print(hotpath_cli.__file__, hotpath.__file__)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages" in site and str(ROOT) not in site
    assert not list((venv / "lib").glob("python3*/site-packages/cli"))
