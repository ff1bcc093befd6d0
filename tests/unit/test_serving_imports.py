"""A serving process (any role) imports no torch: it encodes through Triton, and the two-tower is
trained in the refit's own process. Checked in a fresh interpreter, as a service starts."""

import json
import subprocess
import sys

PROBE = """
import json, sys
import driftwise.server, driftwise.cli, driftwise.cluster.serving
heavy = ("torch", "transformers", "onnxruntime", "matplotlib", "driftwise_triton")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_a_serving_process_imports_no_torch_no_triton_side_code_and_no_plotting() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
