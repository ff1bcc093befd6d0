"""The generated Python code matches protos/, and the protos pass buf lint and format.

One Python copy of the stubs, the client's (`driftwise_client.v1`, clients/python), serves the
server too; `scripts/check_generated.py` regenerates it aside with the root buf.gen.yaml's Python
plugin (the one `scripts/gen_protos.sh` runs) and compares."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_generated.py"


def test_generated_code_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(CHECK), "clients/python/src/driftwise_client/v1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, "stale stubs, run scripts/gen_protos.sh:\n" + result.stdout + result.stderr


@pytest.mark.parametrize("args", [["lint"], ["format", "-d", "--exit-code"]])
def test_buf(args: list[str]) -> None:
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    result = subprocess.run([buf, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
