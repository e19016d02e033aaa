"""The emulator process: moto's server, seeded with what AWS has and moto lacks.

AWS publishes Deep Learning AMI ids as public SSM parameters under /aws/service/...; moto knows none of
them and refuses to create parameters under /aws. Seeding its backend in-process, before the server starts,
lets the LabDLAMI template resolve its AMI the same way it does in AWS. The seeded images are stand-ins
registered in the emulator's EC2, named so that nobody mistakes them for the real DLAMI.

Two CloudFormation gaps of moto are closed here as well, because labkit's safety rule depends on tags:
moto creates SageMaker notebook instances without their template `Tags` (so the guard, which touches only
course-tagged resources, would find no notebook to stop), and it crashes on an `AWS::KMS::Key` with tags in
CloudFormation's Key/Value form (and stores its key policy so that DescribeKey fails). `patch_moto` gives
both resources their tags, and the key a readable policy, as AWS does; it also answers
CreatePresignedNotebookInstanceUrl, which moto lacks (`labctl notebook url`). CloudFormation's update and failed-delete
paths are fixed by `labkit.emulator_cfn`, and `AWS::CloudFormation::StackSet` is implemented by
`labkit.emulator_stackset` (see there). And the server answers one request at a time (`serialize_requests`),
without listing moto's package folder for each (`remember_moto_modules`) or botocore's data folders for each
service model (`share_model_loader`), and reads JSON templates as JSON (`read_json_templates_as_json`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import secrets
import threading
from typing import Any

import yaml
from moto import backends as moto_backends
from moto.cloudformation import models as cfn_models
from moto.cloudformation import responses as cfn_responses
from moto.core import utils as moto_utils
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.kms.models import KmsBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.models import FakeBucket
from moto.sagemaker.models import FakeSagemakerNotebookInstance
from moto.sagemaker.responses import SageMakerResponse
from moto.server import main as moto_main
from moto.ssm.models import Parameter, ssm_backends

from course.catalog import DLAMIS
from labkit.emulator_cfn import Assign, patch_cloudformation
from labkit.emulator_stackset import patch_stack_sets
from labkit.emulator_timing import CFN_BURST, Timing, patch_timing

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


def seed_member(region: str, account: str) -> None:
    """`seed` once per account: a stack set's member account resolves the DLAMI parameter like the class account."""
    if not all(dlami.ssm_parameter in ssm_backends[account][region]._parameters for dlami in DLAMIS.values()):
        seed(region, account)


def patch_moto(assign: Assign = setattr) -> None:
    """Give CloudFormation-created notebooks their template names and tags, KMS keys theirs, and fix CloudFormation
    updates and failed deletes (see the module docstrings).

    `assign` is setattr here; tests pass pytest's monkeypatch.setattr so the patch ends with the test.
    """
    create_notebook = FakeSagemakerNotebookInstance.create_from_cloudformation_json.__func__  # type: ignore

    def notebook_with_tags(cls: type, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        # moto also ignores the template's NotebookInstanceName (it names the notebook after the stack); the guard
        # finds notebooks by the course's name prefix, which a stack set's `StackSet-...` stack name lacks.
        resource_name = cloudformation_json.get("Properties", {}).get("NotebookInstanceName", resource_name)
        notebook = create_notebook(cls, resource_name, cloudformation_json, *args, **kwargs)
        notebook.tags = list(cloudformation_json.get("Properties", {}).get("Tags", []))
        return notebook

    create_key = KmsBackend.create_key

    def key_with_tags(self: KmsBackend, policy: Any, key_usage: str, key_spec: str, description: str, tags: Any,
                      *args: Any, **kwargs: Any) -> Any:
        # KMS's own API spells tags TagKey/TagValue and passes the policy as JSON text; CloudFormation spells
        # tags Key/Value and gives the policy as an object, which moto's DescribeKey cannot read back.
        tags = [{"TagKey": t.get("TagKey", t.get("Key")), "TagValue": t.get("TagValue", t.get("Value"))}
                for t in tags or []]
        policy = json.dumps(policy) if isinstance(policy, dict) else policy
        return create_key(self, policy, key_usage, key_spec, description, tags, *args, **kwargs)

    create_bucket = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore

    def bucket_with_versioning(cls: type, resource_name: str, cloudformation_json: Any, *args: Any,
                               **kwargs: Any) -> Any:
        # moto applies a template bucket's encryption and tags but not its VersioningConfiguration; a lab bucket
        # is versioned in AWS, and the archive and restore of every version depend on it.
        bucket = create_bucket(cls, resource_name, cloudformation_json, *args, **kwargs)
        status = cloudformation_json.get("Properties", {}).get("VersioningConfiguration", {}).get("Status")
        if status:
            bucket.versioning_status = status
        return bucket

    def presigned_notebook_url(self: SageMakerResponse) -> ActionResult:
        # moto does not implement CreatePresignedNotebookInstanceUrl (its server answers 500), which `labctl
        # notebook url` and the students' handouts use. The URL has AWS's form and opens nothing: no Jupyter runs.
        name = self._get_param("NotebookInstanceName")
        self.sagemaker_backend.get_notebook_instance(name)  # ValidationException for a name that does not exist
        return ActionResult({"AuthorizedUrl": f"https://{name}.notebook.{self.region}.sagemaker.aws?authToken="
                                              f"emulator-{secrets.token_hex(16)}"})

    assign(FakeSagemakerNotebookInstance, "create_from_cloudformation_json", classmethod(notebook_with_tags))
    assign(SageMakerResponse, "create_presigned_notebook_instance_url", presigned_notebook_url)
    assign(FakeBucket, "create_from_cloudformation_json", classmethod(bucket_with_versioning))
    assign(KmsBackend, "create_key", key_with_tags)
    patch_cloudformation(assign)
    patch_stack_sets(assign, seed_member)


def serialize_requests(assign: Assign = setattr) -> threading.Lock:
    """One request at a time. moto's server answers each request on a thread of its own, and its backends are plain
    dicts without locks. Seen in a class provision (the CDK CLI deploys stacks at once): one CreateStack failed with
    `RuntimeError: dictionary changed size during iteration` (moto's IAM `get_role_by_arn`, for a Lambda function,
    iterating the roles while another stack added one) after the stack was recorded; the CLI's SDK retried the 500
    and got `AlreadyExistsException`. The backends' work is Python under one GIL anyway, so little is lost."""
    lock = threading.Lock()
    dispatch = DomainDispatcherApplication.__call__

    def one_at_a_time(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        with lock:
            return dispatch(self, environ, start_response)

    assign(DomainDispatcherApplication, "__call__", one_at_a_time)
    return lock


def remember_moto_modules(assign: Assign = setattr) -> tuple[str, ...]:
    """moto's server asks, twice for every request, whether the request's host names a moto module, by listing its
    package folder and stat-ing each entry (`moto.backends.list_of_moto_modules`): about 1.7 ms a request, a fifth
    of the server's time in the demo. The folder does not change while the server runs."""
    modules = tuple(moto_backends.list_of_moto_modules())
    assign(moto_backends, "list_of_moto_modules", lambda: modules)
    return modules


def share_model_loader(assign: Assign = setattr) -> None:
    """moto loads each service's model and pagination with a botocore loader of its own, which lists botocore's
    data folders again every time: 0.9 s of an emulator's first requests in the demo. One loader serves them all
    (the tests do the same for the sessions moto makes in-process)."""
    assign(moto_utils, "create_loader", functools.cache(moto_utils.create_loader))


class _JsonFirst:
    """`yaml` as moto's CloudFormation modules see it: a template that is JSON (every CDK template is) is read as
    JSON. moto reads every template with PyYAML's pure-Python loader first, about 130 ms for a lab's template,
    on every CreateStack, UpdateStack, change set and GetTemplateSummary: an eighth of the server's time in the
    demo. JSON is YAML, so the result is the same; anything else still goes to PyYAML."""

    def __getattr__(self, name: str) -> Any:
        return getattr(yaml, name)

    @staticmethod
    def load(stream: Any, Loader: Any) -> Any:  # noqa: N803 - PyYAML's own keyword
        if isinstance(stream, (str, bytes)):
            try:
                return json.loads(stream)
            except ValueError:
                pass
        return yaml.load(stream, Loader=Loader)


def read_json_templates_as_json(assign: Assign = setattr) -> None:
    for module in (cfn_models, cfn_responses):
        assign(module, "yaml", _JsonFirst())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--aws-timing", action="store_true", help="CloudFormation and notebooks take AWS's time")
    parser.add_argument("--time-scale", type=float, default=0.01, help="emulator seconds per AWS second")
    parser.add_argument("--cfn-rate", type=float, default=None, help="CloudFormation requests a second")
    parser.add_argument("--cfn-burst", type=int, default=CFN_BURST)
    args = parser.parse_args()
    # moto gives every account and region of EC2 its 1,300 public AMIs, each with a snapshot and a volume: labkit
    # never uses them (the DLAMI stand-ins below are what LabDLAMI resolves), and they made each DescribeSnapshots
    # of the teardown and the audit about 150 ms instead of 9 ms. A moto setting; the environment can still say true.
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    seed(args.region)
    patch_moto()
    serialize_requests()
    remember_moto_modules()
    share_model_loader()
    read_json_templates_as_json()
    if args.aws_timing:
        patch_timing(Timing(args.time_scale, args.cfn_rate, args.cfn_burst))
    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])


if __name__ == "__main__":
    main()
