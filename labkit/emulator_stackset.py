"""`AWS::CloudFormation::StackSet` in the emulator, on top of moto 5.2.5's stack-set API.

moto behaviours this module closes (each has a test in tests/labkit/test_emulator_stackset.py):

1. **No StackSet resource type.** moto's CloudFormation skips `AWS::CloudFormation::StackSet` and reports the stack
   `CREATE_COMPLETE`: LabClassroom deploys with nothing behind it. `StackSetResource` creates the stack set (the
   template read from its `TemplateURL` in the emulator's S3), updates it and deletes it with the stack.
2. **Service-managed instances are hidden.** moto builds a member account's stack outside that account's
   CloudFormation (no `DescribeStacks` there, no audit can see it). Here every instance is a real stack named
   `StackSet-<name>-<uuid>` in the member account's backend, as AWS names them.
3. **AutoDeployment is ignored.** An account moved into a target OU gets no instance, and one moved out keeps it.
   `MoveAccount` re-synchronises every auto-deploying stack set of the organization (`RetainStacksOnAccountRemoval`
   false: the account's stack is deleted).
4. **OperationPreferences are ignored and every instance is `CURRENT`.** Here instances roll out in batches of
   `MaxConcurrentCount`/`-Percentage`; a failed create or update is `OUTDATED (FAILED)`, a failed delete
   `INOPERABLE (FAILED)`, and once failures exceed `FailureToleranceCount`/`-Percentage` the rest of the
   operation is `OUTDATED (CANCELLED)` and the operation `FAILED`.
5. **Member accounts have no public DLAMI parameters.** The emulator seeds them in the class account only; each
   member account is seeded before its first instance (see `labkit.emulator_server.seed`).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import CloudFormationBackend, StackSet, cloudformation_backends
from moto.cloudformation.utils import get_stack_from_s3_url
from moto.organizations.models import OrganizationsBackend, organizations_backends

from labkit.emulator_cfn import Assign

Seeder = Callable[[str, str], Any]

# Stack sets deployed through templates, by id: MoveAccount re-synchronises them (point 3).
MANAGED: dict[str, "Managed"] = {}


@dataclass
class Instance:
    """One account and region of a stack set: its stack there and the state ListStackInstances reports."""

    account: str
    region: str
    stack_name: str
    stack_id: str = ""
    status: str = "OUTDATED"
    detail: str = "PENDING"
    reason: str = ""

    def to_dict(self, stack_set_id: str) -> dict[str, Any]:
        summary = {"StackSetId": stack_set_id, "Region": self.region, "Account": self.account,
                   "Status": self.status, "StackInstanceStatus": {"DetailedStatus": self.detail}}
        if self.stack_id:
            summary["StackId"] = self.stack_id
        if self.reason:
            summary["StatusReason"] = self.reason
        return summary


@dataclass
class Managed:
    """What moto's StackSet lacks: its targets, preferences, real instances and batches of each operation."""

    stack_set: StackSet
    account: str
    targets: list[tuple[list[str], list[str]]]
    auto_deployment: bool
    preferences: dict[str, Any]
    seed: Seeder
    instances: dict[tuple[str, str], Instance] = field(default_factory=dict)
    batches: list[list[str]] = field(default_factory=list)  # accounts per batch of the last operation

    def wanted(self) -> list[tuple[str, str]]:
        """(account, region) of every active account in the target OUs (and their child OUs), as AWS resolves."""
        org = organizations_backends[self.account]["aws"]
        units: set[str] = set()
        for ous, _ in self.targets:
            units |= set(ous) | {ou.id for ou in org.ou if ou.parent_id in ous}
        return [(account.id, region) for ous, regions in self.targets for region in regions
                for account in org.accounts
                if account.parent_id in units and account.status == "ACTIVE" and account.id != self.account]

    def _limits(self, count: int) -> tuple[int, int]:
        prefs = self.preferences
        concurrent = prefs.get("MaxConcurrentCount") or max(
            1, math.floor(count * int(prefs.get("MaxConcurrentPercentage", 100)) / 100))
        tolerance = prefs.get("FailureToleranceCount")
        if tolerance is None:
            tolerance = math.floor(count * int(prefs.get("FailureTolerancePercentage", 0)) / 100)
        return int(concurrent), int(tolerance)

    def _run(self, action: str, work: Sequence[tuple[str, str]], step: Callable[[Instance], None]) -> None:
        """`step` on each instance in batches; past the tolerance the rest is cancelled (point 4)."""
        concurrent, tolerance = self._limits(len(work))
        self.batches, failures = [], 0
        status = "SUCCEEDED"
        for start in range(0, len(work), concurrent):
            batch = work[start:start + concurrent]
            if failures > tolerance:
                for key in batch:
                    instance = self.instances[key]
                    instance.status, instance.detail = "OUTDATED", "CANCELLED"
                    instance.reason = "cancelled: the operation exceeded its failure tolerance"
                status = "FAILED"
                continue
            self.batches.append([account for account, _ in batch])
            for key in batch:
                try:
                    step(self.instances[key])
                except Exception as exc:  # noqa: BLE001 - any resource's failure fails the instance, as in AWS
                    failures += 1
                    instance = self.instances[key]
                    instance.status = "INOPERABLE" if action == "DELETE" else "OUTDATED"
                    instance.detail, instance.reason = "FAILED", str(exc).splitlines()[0][:200]
        if failures > tolerance:
            status = "FAILED"
        accounts = sorted({account for account, _ in work})
        regions = sorted({region for _, region in work})
        self.stack_set._create_operation(str(uuid.uuid4()), action, status, accounts, regions)

    def _backend(self, instance: Instance) -> CloudFormationBackend:
        return cloudformation_backends[instance.account][instance.region]

    def _create(self, instance: Instance) -> None:
        self.seed(instance.region, instance.account)
        backend = self._backend(instance)
        if instance.stack_id and instance.stack_id in backend.stacks:
            given = [{"ParameterKey": key, "ParameterValue": value}
                     for key, value in _parameters(self.stack_set.parameters).items()]
            stack = backend.update_stack(instance.stack_name, self.stack_set.template, None, given, None)
        else:
            stack = backend.create_stack(instance.stack_name, self.stack_set.template,
                                         _parameters(self.stack_set.parameters))
        instance.stack_id = stack.stack_id
        if stack.status.endswith("FAILED") or "ROLLBACK" in stack.status:
            raise RuntimeError(f"stack {instance.stack_name} is {stack.status}")
        instance.status, instance.detail, instance.reason = "CURRENT", "SUCCEEDED", ""

    def _delete(self, instance: Instance) -> None:
        backend = self._backend(instance)
        backend.delete_stack(instance.stack_id or instance.stack_name)
        left = backend.stacks.get(instance.stack_id)
        if left is not None and left.status != "DELETE_COMPLETE":
            raise RuntimeError(f"stack {instance.stack_name} is {left.status}")
        del self.instances[(instance.account, instance.region)]

    def sync(self, *, update_all: bool = False) -> None:
        """Instances for accounts now in the OUs, none for accounts that left; `update_all` after a new template."""
        wanted = self.wanted() if self.auto_deployment or not self.instances else \
            [key for key in self.wanted() if key in self.instances]
        leaving = [key for key in self.instances if key not in wanted]
        if leaving:
            self._run("DELETE", leaving, self._delete)
        name = self.stack_set.name
        for key in wanted:
            if key not in self.instances:
                self.instances[key] = Instance(*key, stack_name=f"StackSet-{name}-{uuid.uuid4()}")
        work = [key for key in wanted if update_all or self.instances[key].status != "CURRENT"]
        if work:
            self._run("UPDATE" if update_all else "CREATE", work, self._create)

    def delete_all(self) -> None:
        if self.instances:
            self._run("DELETE", list(self.instances), self._delete)
        if self.instances:
            raise RuntimeError(f"stack set {self.stack_set.name}: {len(self.instances)} instance(s) failed to delete")


def _parameters(parameters: Any) -> dict[str, Any]:
    if isinstance(parameters, list):
        return {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
    return dict(parameters or {})


def _template(properties: dict[str, Any], account_id: str) -> str:
    if "TemplateBody" in properties:
        body = properties["TemplateBody"]
        return body if isinstance(body, str) else json.dumps(body)
    return str(get_stack_from_s3_url(properties["TemplateURL"], account_id=account_id, partition="aws"))


def _no_seed(region: str, account: str) -> None:
    return None


class StackSetResource:
    """The CloudFormation resource: a moto stack set plus its `Managed` state (points 1-4). Not a subclass of
    moto's CloudFormationModel, which would register it with every moto in the process, patched or not."""

    seed: Seeder = _no_seed

    def __init__(self, managed: Managed) -> None:
        self.managed = managed

    @property
    def physical_resource_id(self) -> str:
        return str(self.managed.stack_set.id)  # '<name>:<uuid>', as AWS

    @staticmethod
    def cloudformation_name_type() -> str:
        return "StackSetName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFormation::StackSet"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "StackSetId"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.physical_resource_id

    def is_created(self) -> bool:
        return True

    @classmethod
    def _configure(cls, managed: Managed, properties: dict[str, Any]) -> None:
        managed.targets = [(list(group.get("DeploymentTargets", {}).get("OrganizationalUnitIds", [])),
                            list(group.get("Regions", []))) for group in properties.get("StackInstancesGroup", [])]
        managed.auto_deployment = bool(properties.get("AutoDeployment", {}).get("Enabled", False))
        managed.preferences = dict(properties.get("OperationPreferences", {}))

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> "StackSetResource":
        properties = cloudformation_json["Properties"]
        backend = cloudformation_backends[account_id][region_name]
        stack_set = backend.create_stack_set(
            name=properties.get("StackSetName", resource_name), template=_template(properties, account_id),
            parameters=_parameters(properties.get("Parameters")),
            tags={t["Key"]: t["Value"] for t in properties.get("Tags", [])},
            permission_model=properties.get("PermissionModel", "SELF_MANAGED"),
            admin_role=properties.get("AdministrationRoleARN"), exec_role=properties.get("ExecutionRoleName"),
            description=properties.get("Description"))
        managed = Managed(stack_set, account_id, [], False, {}, cls.seed)
        cls._configure(managed, properties)
        MANAGED[stack_set.id] = managed
        managed.sync()
        return cls(managed)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: "StackSetResource", new_resource_name: str,
                                        cloudformation_json: Any, account_id: str,
                                        region_name: str) -> "StackSetResource":
        properties = cloudformation_json["Properties"]
        managed = original_resource.managed
        template = _template(properties, account_id)
        changed = template != managed.stack_set.template or \
            _parameters(properties.get("Parameters")) != _parameters(managed.stack_set.parameters)
        managed.stack_set.template = managed.stack_set.instances.template = template
        managed.stack_set.parameters = _parameters(properties.get("Parameters"))
        managed.stack_set.description = properties.get("Description", managed.stack_set.description)
        cls._configure(managed, properties)
        managed.sync(update_all=changed)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        self.managed.delete_all()
        MANAGED.pop(self.managed.stack_set.id, None)
        self.managed.stack_set.delete()


def resync(management_account: str) -> None:
    """Every auto-deploying stack set of the organization follows its OUs again (point 3)."""
    for managed in list(MANAGED.values()):
        if managed.account == management_account and managed.auto_deployment and managed.stack_set.status == "ACTIVE":
            managed.sync()


def patch_stack_sets(assign: Assign = setattr, seed: Seeder = _no_seed) -> None:
    """Register the resource type, report real instances, and follow account moves; `seed(region, account)`
    prepares a member account before its first stack (the emulator passes `emulator_server.seed`)."""
    assign(StackSetResource, "seed", staticmethod(seed))
    MANAGED.clear()  # a fresh moto: the stack sets of an earlier one are gone
    class_of = parsing.resource_class_from_type

    def with_stack_sets(resource_type: str) -> Any:
        return StackSetResource if resource_type == StackSetResource.cloudformation_type() else class_of(resource_type)

    list_instances = CloudFormationBackend.list_stack_instances

    def list_real_instances(self: CloudFormationBackend, stackset_name: str) -> list[dict[str, Any]]:
        stack_set = self.describe_stack_set(stackset_name)
        managed = MANAGED.get(stack_set.id)
        if managed is None:
            return list(list_instances(self, stackset_name))
        return [instance.to_dict(stack_set.id) for instance in managed.instances.values()]

    move_account = OrganizationsBackend.move_account

    def move_and_redeploy(self: OrganizationsBackend, **kwargs: Any) -> None:
        move_account(self, **kwargs)
        resync(self.account_id)

    assign(parsing, "resource_class_from_type", with_stack_sets)
    assign(CloudFormationBackend, "list_stack_instances", list_real_instances)
    assign(OrganizationsBackend, "move_account", move_and_redeploy)
