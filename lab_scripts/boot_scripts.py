"""Boot scripts with lab code inlined: the notebook's on-start lifecycle script and the GPU instance's user data.

The widely copied auto-stop sample downloads its script from the internet at every start; inlining keeps
instances working without internet access and pins exactly what runs as root on them.
"""

from __future__ import annotations

from pathlib import Path

# SageMaker rejects lifecycle scripts over this many characters; EC2 rejects user data over 16 KB.
MAX_SCRIPT_CHARS = 16_384

_HERE = Path(__file__).parent

# Where Jupyter on a notebook instance saves, and where in the student's bucket its copy goes. The notebook role's
# "SyncNotebookVolume" statement and `lab_scripts.collect` use the same prefix.
NOTEBOOK_VOLUME = "/home/ec2-user/SageMaker"
NOTEBOOK_PREFIX = "notebook/"
# At most this many minutes of saved work on the notebook's volume are not yet in the bucket (README, "Teardown").
SYNC_MINUTES = 5
SYNC_SCRIPT = "/opt/labkit/sync-notebook.sh"
SYNC_LOG = "/var/log/labkit-sync.log"


def _install(source: str, target: str) -> str:
    """Shell lines that write `source` (a file next to this module) to `target` on the instance."""
    body = (_HERE / source).read_text(encoding="utf-8")
    marker = "LABKIT_" + source.upper().replace(".", "_") + "_EOF"
    return f"cat > {target} <<'{marker}'\n{body}{marker}\n"


def _checked(script: str, what: str) -> str:
    if len(script) > MAX_SCRIPT_CHARS:
        raise ValueError(f"{what} is {len(script)} characters; AWS allows {MAX_SCRIPT_CHARS}")
    return script


def render_on_start(idle_minutes: int, *, bucket: str, region: str, sync_minutes: int = SYNC_MINUTES) -> str:
    """Notebook on-start script: the idle checker from cron every five minutes, and the sync of the notebook's
    volume to s3://<bucket>/notebook/ every `sync_minutes`, once now, and before an idle stop.

    Runs as root within SageMaker's five minutes: the first sync is started in the background (nohup), never
    waited for. A notebook without the AWS CLI still starts; its sync log says why nothing is copied.
    """
    if not 1 <= sync_minutes <= 30:
        raise ValueError(f"sync_minutes {sync_minutes} must be between 1 and 30")
    script = (
        "#!/bin/bash\n"
        f"# labkit: stop this notebook after {idle_minutes} idle minutes; copy {NOTEBOOK_VOLUME} to\n"
        f"# s3://{bucket}/{NOTEBOOK_PREFIX} every {sync_minutes} minutes. Generated; edit lab.toml, not this.\n"
        "set -euo pipefail\n"
        "mkdir -p /opt/labkit /var/lib/labkit\n"
        "touch /var/lib/labkit/started\n"
        + _install("notebook_autostop.py", "/opt/labkit/autostop.py")
        + _install("notebook_sync.sh", SYNC_SCRIPT)
        + "AWS_CLI=$(command -v aws || ls /usr/local/bin/aws /usr/bin/aws /home/ec2-user/anaconda3/bin/aws "
        "2>/dev/null | head -n 1 || true)\n"
        "cat > /opt/labkit/sync.env <<LABKIT_SYNC_ENV_EOF\n"
        'AWS="$AWS_CLI"\n'
        f"SOURCE={NOTEBOOK_VOLUME}\n"
        f"BUCKET={bucket}\n"
        f"PREFIX={NOTEBOOK_PREFIX}\n"
        f"REGION={region}\n"
        "LABKIT_SYNC_ENV_EOF\n"
        "PY=/home/ec2-user/anaconda3/envs/JupyterSystemEnv/bin/python\n"
        '[ -x "$PY" ] || PY=/usr/bin/python3\n'
        f'echo "*/5 * * * * root $PY /opt/labkit/autostop.py --idle-minutes {idle_minutes} '
        '>> /var/log/labkit-autostop.log 2>&1" \\\n'
        "  > /etc/cron.d/labkit-autostop\n"
        f'echo "*/{sync_minutes} * * * * root /bin/bash {SYNC_SCRIPT} >> {SYNC_LOG} 2>&1" > /etc/cron.d/labkit-sync\n'
        "chmod 0644 /etc/cron.d/labkit-autostop /etc/cron.d/labkit-sync\n"
        f"nohup /bin/bash {SYNC_SCRIPT} >> {SYNC_LOG} 2>&1 < /dev/null &\n"
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
