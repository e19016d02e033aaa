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
        + render_gpu_monitoring()
    )
    return _checked(script, "user data")


# The CloudWatch agent's configuration: CPU and GPU utilisation and the terminal-input gauge, once a minute,
# under one dimension (InstanceId) so the idle alarm's metric math can name them. Names are the guard's
# (lab_scripts/guard_fn/handler.py: AGENT_NAMESPACE, CPU_METRIC, GPU_METRIC, INPUT_METRIC); a test keeps them equal.
AGENT_CONFIG = {
    "agent": {"metrics_collection_interval": 60, "run_as_user": "root"},
    "metrics": {
        "namespace": "LabKit/GPU",
        "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
        "aggregation_dimensions": [["InstanceId"]],
        "force_flush_interval": 60,
        "metrics_collected": {
            "cpu": {"measurement": ["usage_active"], "totalcpu": True, "drop_original_metrics": ["usage_active"]},
            "nvidia_gpu": {"measurement": ["utilization_gpu"], "drop_original_metrics": ["utilization_gpu"]},
            "statsd": {"service_address": "127.0.0.1:8125", "metrics_collection_interval": 60,
                       "metrics_aggregation_interval": 60},
        },
    },
}
AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
# 1 when a Session Manager or SSH terminal (a pseudo-terminal) had input in the last 90 s: a tty's access time
# is its last input, as `w` shows it. Sent to the agent's StatsD listener, so it needs no AWS CLI.
TERMINAL_INPUT = """#!/bin/bash
now=$(date +%s); busy=0
for tty in /dev/pts/[0-9]*; do
  [ -e "$tty" ] && [ $((now - $(stat -c %X "$tty"))) -lt 90 ] && busy=1
done
echo "labkit_terminal_input:${busy}|g" > /dev/udp/127.0.0.1/8125
"""


def render_gpu_monitoring() -> str:
    """User data lines that make the instance publish what its idle alarm reads (GPU-aware idle).

    The CloudWatch agent is used where the AMI ships it; otherwise it is installed at first boot from AWS's
    own sources (Amazon Linux's package repository, or the regional agent bucket for Ubuntu): nothing is
    downloaded at synth time, and a failed install leaves the alarm without data, which never stops the
    machine (the guard's spend cap and after-hours stop still apply). A systemd timer, not cron, samples
    the terminals: Amazon Linux 2023 has no cron.
    """
    import json

    config = json.dumps(AGENT_CONFIG, separators=(",", ":"))
    return (
        "# GPU-aware idle: the CloudWatch agent publishes CPU, GPU and terminal input for the idle alarm.\n"
        f"if [ ! -x {AGENT_CTL} ]; then\n"
        "  (if command -v dnf >/dev/null; then dnf install -y amazon-cloudwatch-agent; else\n"
        '    T=$(curl -sfX PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")\n'
        '    R=$(curl -sf -H "X-aws-ec2-metadata-token: $T" http://169.254.169.254/latest/meta-data/placement/region)\n'
        '    curl -sfo /tmp/cwagent.deb "https://amazoncloudwatch-agent-$R.s3.$R.amazonaws.com/ubuntu/'
        '$(dpkg --print-architecture)/latest/amazon-cloudwatch-agent.deb" && dpkg -i -E /tmp/cwagent.deb; fi)'
        ' || echo "labkit: CloudWatch agent not installed; the idle alarm gets no data and never stops"\n'
        "fi\n"
        f"cat > /opt/labkit/cloudwatch-agent.json <<'LABKIT_AGENT_EOF'\n{config}\nLABKIT_AGENT_EOF\n"
        f"cat > /opt/labkit/terminal-input.sh <<'LABKIT_TTY_EOF'\n{TERMINAL_INPUT}LABKIT_TTY_EOF\n"
        "chmod 0755 /opt/labkit/terminal-input.sh\n"
        "printf '[Service]\\nType=oneshot\\nExecStart=/opt/labkit/terminal-input.sh\\n' "
        "> /etc/systemd/system/labkit-terminal-input.service\n"
        "printf '[Timer]\\nOnBootSec=60\\nOnUnitActiveSec=60\\nAccuracySec=5\\n[Install]\\nWantedBy=timers.target\\n' "
        "> /etc/systemd/system/labkit-terminal-input.timer\n"
        "systemctl daemon-reload && systemctl enable --now labkit-terminal-input.timer\n"
        f"[ -x {AGENT_CTL} ] && {AGENT_CTL} -a fetch-config -m ec2 -s -c file:/opt/labkit/cloudwatch-agent.json "
        '|| echo "labkit: CloudWatch agent not started"\n'
    )
