"""Boot scripts with lab code inlined: the notebook's on-start lifecycle script and the GPU instance's user data.

The widely copied auto-stop sample downloads its script from the internet at every start; inlining keeps
instances working without internet access and pins exactly what runs as root on them.
"""

from __future__ import annotations

from pathlib import Path

# SageMaker rejects lifecycle scripts over this many characters; EC2 rejects user data over 16 KB.
MAX_SCRIPT_CHARS = 16_384

_HERE = Path(__file__).parent


def _install(source: str, target: str) -> str:
    """Shell lines that write `source` (a file next to this module) to `target` on the instance."""
    body = (_HERE / source).read_text(encoding="utf-8")
    marker = "LABKIT_" + source.upper().replace(".", "_") + "_EOF"
    return f"cat > {target} <<'{marker}'\n{body}{marker}\n"


def _checked(script: str, what: str) -> str:
    if len(script) > MAX_SCRIPT_CHARS:
        raise ValueError(f"{what} is {len(script)} characters; AWS allows {MAX_SCRIPT_CHARS}")
    return script


def render_on_start(idle_minutes: int) -> str:
    """Notebook on-start script: install the idle checker and run it from cron every five minutes."""
    script = (
        "#!/bin/bash\n"
        f"# labkit: stop this notebook after {idle_minutes} idle minutes. Generated; edit lab.toml, not this.\n"
        "set -euo pipefail\n"
        "mkdir -p /opt/labkit /var/lib/labkit\n"
        "touch /var/lib/labkit/started\n"
        + _install("notebook_autostop.py", "/opt/labkit/autostop.py")
        + "PY=/home/ec2-user/anaconda3/envs/JupyterSystemEnv/bin/python\n"
        '[ -x "$PY" ] || PY=/usr/bin/python3\n'
        f'echo "*/5 * * * * root $PY /opt/labkit/autostop.py --idle-minutes {idle_minutes} '
        '>> /var/log/labkit-autostop.log 2>&1" \\\n'
        "  > /etc/cron.d/labkit-autostop\n"
        "chmod 0644 /etc/cron.d/labkit-autostop\n"
    )
    return _checked(script, "on-start script")


def render_gpu_user_data() -> str:
    """GPU instance user data: put the smoke test where students find it (`python3 /opt/labkit/...`)."""
    script = (
        "#!/bin/bash\n"
        "# labkit: GPU lab instance setup. Generated; edit lab.toml, not this.\n"
        "set -euo pipefail\n"
        "mkdir -p /opt/labkit\n"
        + _install("gpu_smoke_test.py", "/opt/labkit/gpu_smoke_test.py")
        + "chmod 0755 /opt/labkit/gpu_smoke_test.py\n"
    )
    return _checked(script, "user data")
