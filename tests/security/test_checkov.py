"""checkov's findings on every template are exactly the trade-offs README "Security" lists, each with its reason.

checkov is not a dependency (it is large and CI does not need it): the test runs where it is installed, on PATH
or named by LABKIT_CHECKOV, and is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.security.test_cfn_lint import templates_of

CHECKOV = os.environ.get("LABKIT_CHECKOV") or shutil.which("checkov")
FIXED = {"CKV_AWS_51"}


def documented() -> dict[str, str]:
    """check id -> reason, from the README's checkov table."""
    section = (ROOT / "README.md").read_text().split("## Security", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (CKV_\w+) [^|]*\| [^|]*\| (.+) \|$", section, re.MULTILINE)
    return dict(rows)


def test_every_documented_finding_has_a_reason() -> None:
    table = documented()
    assert FIXED <= set(table) and len(table) >= 10
    assert all(len(reason.split()) >= 5 for reason in table.values()), table


@pytest.mark.skipif(CHECKOV is None, reason="checkov is not installed (pip install checkov, or set LABKIT_CHECKOV)")
def test_checkov_finds_only_the_documented_trade_offs(app: Any, per_account_app: Any, tmp_path: Path) -> None:
    assert CHECKOV is not None
    for label, built in (("single", app), ("per-account", per_account_app)):
        for name, template in templates_of(built).items():
            (tmp_path / f"{label}-{name}.json").write_text(json.dumps(template))
    result = subprocess.run([CHECKOV, "-d", str(tmp_path), "--framework", "cloudformation", "--quiet", "--compact",
                             "-o", "json"], capture_output=True, text=True, check=False, timeout=600)
    report = json.loads(result.stdout)
    failed = {check["check_id"] for part in (report if isinstance(report, list) else [report])
              for check in part["results"]["failed_checks"]}
    assert failed == set(documented()) - FIXED
