"""The README says what edgeq does: its op list and its commands must match the code."""
from __future__ import annotations

import re
from pathlib import Path

import edgeq

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_op_list_is_supported_ops():
    text = README.read_text()
    block = re.search(r"<!-- ops:[^>]*-->\n(.*?)\n<!-- /ops -->", text, re.S)
    assert block, "README.md lost its <!-- ops --> block"
    listed = [op.strip() for op in block.group(1).replace("\n", " ").split(",")]
    assert listed == edgeq.supported_ops()
    count = re.search(r"<!-- /ops -->\n\((\d+) ops\)", text)
    assert count and int(count.group(1)) == len(listed)


def test_ci_runs_the_readme_test_command():
    text = README.read_text()
    command = re.search(r'```sh\n(pip install -e "\.\[test\]" && python3 -m pytest -q)\n```',
                        text)
    assert command, "README.md's quick start lost its test command"
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python3 -m " + command.group(1) in ci
