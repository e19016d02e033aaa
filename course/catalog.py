"""What the toolkit knows about GPU instance types and Deep Learning AMIs, to refuse pairs that cannot work.

CUDA 13 dropped Volta (V100, the course's p3.2xlarge), and ARM AMIs do not boot on x86 instances: both
fail only after an instance is paid for, so they are rejected at config time instead.
"""

from __future__ import annotations

from dataclasses import dataclass

# Service Quotas codes for "Running On-Demand <family> instances", counted in vCPUs.
QUOTA_CODES = {"G": "L-DB2E81BA", "P": "L-417A185B"}


@dataclass(frozen=True)
class GpuInstance:
    arch: str
    gpu: str
    vcpus: int
    quota_family: str
    max_cuda: int
    usd_per_hour: float  # us-east-1 on-demand Linux, for estimates only


@dataclass(frozen=True)
class Dlami:
    ssm_name: str
    arch: str
    cuda: int
    frameworks: tuple[str, ...]
    root_device: str = "/dev/sda1"  # Ubuntu images; Amazon Linux boots from /dev/xvda
    login_user: str = "ubuntu"

    @property
    def ssm_parameter(self) -> str:
        """The public SSM parameter AWS updates with each DLAMI release."""
        return f"/aws/service/deeplearning/ami/{self.arch}/{self.ssm_name}/latest/ami-id"


INSTANCES: dict[str, GpuInstance] = {
    # The course text names p3.2xlarge; AWS is retiring P3, so current types are offered beside it.
    "p3.2xlarge": GpuInstance("x86_64", "V100 16 GB (Volta)", 8, "P", 12, 3.06),
    "g4dn.xlarge": GpuInstance("x86_64", "T4 16 GB", 4, "G", 13, 0.526),
    "g4dn.2xlarge": GpuInstance("x86_64", "T4 16 GB", 8, "G", 13, 0.752),
    "g5.xlarge": GpuInstance("x86_64", "A10G 24 GB", 4, "G", 13, 1.006),
    "g5.2xlarge": GpuInstance("x86_64", "A10G 24 GB", 8, "G", 13, 1.212),
    "g6.xlarge": GpuInstance("x86_64", "L4 24 GB", 4, "G", 13, 0.805),
    "g6.2xlarge": GpuInstance("x86_64", "L4 24 GB", 8, "G", 13, 0.978),
    "g5g.xlarge": GpuInstance("arm64", "T4G 16 GB", 4, "G", 13, 0.42),
}

DLAMIS: dict[str, Dlami] = {
    "base-ubuntu-22.04": Dlami("base-oss-nvidia-driver-gpu-ubuntu-22.04", "x86_64", 13, ()),
    "base-ubuntu-24.04": Dlami("base-oss-nvidia-driver-gpu-ubuntu-24.04", "x86_64", 13, ()),
    "base-al2023": Dlami("base-oss-nvidia-driver-gpu-amazon-linux-2023", "x86_64", 13, (), "/dev/xvda", "ec2-user"),
    "pytorch-2.7-ubuntu-22.04": Dlami("oss-nvidia-driver-gpu-pytorch-2.7-ubuntu-22.04", "x86_64", 12, ("pytorch",)),
    "base-arm64-ubuntu-22.04": Dlami("base-oss-nvidia-driver-gpu-ubuntu-22.04", "arm64", 13, ()),
}


def incompatibility(instance_type: str, ami_type: str) -> str | None:
    """Why this instance type cannot run this DLAMI, or None when the pair works."""
    instance, ami = INSTANCES[instance_type], DLAMIS[ami_type]
    if instance.arch != ami.arch:
        return f"{ami_type} is an {ami.arch} AMI and {instance_type} is {instance.arch}"
    if ami.cuda > instance.max_cuda:
        working = sorted(name for name, d in DLAMIS.items() if d.cuda <= instance.max_cuda and d.arch == ami.arch)
        return (
            f"{instance_type} has {instance.gpu} GPUs, which CUDA {ami.cuda} no longer supports; use a CUDA "
            f"{instance.max_cuda} DLAMI ({', '.join(working)}) or a current GPU type (g4dn, g5, g6)"
        )
    return None


DEFAULT_REGISTRY = "763104351884"
# Regions with DLCs, and the AWS account that holds them there (github.com/aws/deep-learning-containers,
# available_images.md). Regions not listed have no DLC registry.
DLC_REGISTRIES: dict[str, str] = {
    **{
        region: DEFAULT_REGISTRY
        for region in (
            "us-east-1 us-east-2 us-west-1 us-west-2 ca-central-1 sa-east-1 eu-west-1 eu-west-2 eu-west-3 "
            "eu-central-1 eu-north-1 ap-south-1 ap-northeast-1 ap-northeast-2 ap-southeast-1 ap-southeast-2"
        ).split()
    },
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896",
    "eu-south-1": "692866216735",
    "me-south-1": "217643126080",
    "me-central-1": "914824155844",
}

# The Rekognition calls the image-labelling lab can make (lab.toml [rekognition] features); the function maps each
# to its API (lab_scripts/rekognition_fn/handler.py FEATURES, checked equal by a test).
REKOGNITION_FEATURES = ("labels", "text", "moderation", "faces")
