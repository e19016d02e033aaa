"""The emulator process: moto's server, seeded with what AWS has and moto lacks.

AWS publishes Deep Learning AMI ids as public SSM parameters under /aws/service/...; moto knows none of
them and refuses to create parameters under /aws. Seeding its backend in-process, before the server starts,
lets the LabDLAMI template resolve its AMI the same way it does in AWS. The seeded images are stand-ins
registered in the emulator's EC2, named so that nobody mistakes them for the real DLAMI.
"""

from __future__ import annotations

import argparse
import datetime as dt

from moto.ec2.models import ec2_backends
from moto.server import main as moto_main
from moto.ssm.models import Parameter, ssm_backends

from labkit.catalog import DLAMIS

EMULATOR_ACCOUNT = "123456789012"


def seed(region: str, account: str = EMULATOR_ACCOUNT) -> dict[str, str]:
    """Register a stand-in image per DLAMI type and publish its id under the public parameter name."""
    ec2, ssm = ec2_backends[account][region], ssm_backends[account][region]
    published: dict[str, str] = {}
    for ami_type, dlami in DLAMIS.items():
        image = ec2.register_image(
            name=f"labkit emulator stand-in for DLAMI {ami_type}", description=dlami.ssm_parameter
        )
        ssm._parameters[dlami.ssm_parameter].append(
            Parameter(
                account_id=account,
                name=dlami.ssm_parameter,
                value=image.id,
                parameter_type="String",
                description=f"labkit emulator stand-in for {ami_type}",
                allowed_pattern=None,
                keyid=None,
                last_modified_date=dt.datetime.now(dt.timezone.utc),
                version=1,
                data_type="aws:ec2:image",
            )
        )
        published[dlami.ssm_parameter] = image.id
    return published


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args()
    seed(args.region)
    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])


if __name__ == "__main__":
    main()
