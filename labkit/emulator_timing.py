"""An AWS timing model for the embedded emulator (off by default): how long CloudFormation and the services take.

moto finishes every stack at once, so "when can the students start?" cannot be measured against it. With the
model on (`Emulator(..., timing=Timing(time_scale=S))`, `python -m labkit.emulator_server --aws-timing
--time-scale S`), CloudFormation reports a stack CREATE_IN_PROGRESS / UPDATE_IN_PROGRESS / DELETE_IN_PROGRESS until
its resources would be done in AWS, and a notebook instance is Pending / Stopping for as long as in AWS. Times
come from the one table `TIMES` (seconds of AWS time) and are multiplied by `time_scale` (0.01: a 5-minute
notebook takes 3 s here), so a class runs in seconds.

Inside a template, resources start when what they depend on is done (DependsOn, and Ref / Fn::GetAtt / Fn::Sub
of another resource of the template; Fn::ImportValue names another stack, whose deploy the CLI already waits
for) and delete in the reverse order: a stack's time is the longest path through its resources, as
CloudFormation works them in parallel. The resources themselves exist at once (moto creates them); only what the
APIs report follows the clock, which is what every waiter and the CDK CLI look at.

Optionally, CloudFormation's API is rate limited by a token bucket (`cfn_rate` requests a second, `cfn_burst`
at once; real seconds, not scaled): a request beyond it is answered `Throttling`, as AWS does, to see what
floods it. AWS does not publish CloudFormation's API rates; the default `CFN_RATE` is an estimate.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Assign = Callable[[Any, str, Any], None]
Clock = Callable[[], float]


class Times(NamedTuple):
    """Seconds AWS takes for one resource: to create, to delete, and (where it has one) to stop."""

    create: float
    delete: float
    source: str
    stop: float | None = None


# Seconds of AWS time per resource type. "estimate": no published figure; ours, from CloudFormation event logs of
# comparable deploys and the services' documented behaviour, to be replaced by measurements when we have them.
TIMES: dict[str, Times] = {
    # AWS docs (Create a notebook instance): "status changes to InService" after "a few minutes"; 4-6 min is what
    # published walkthroughs show. Stop about 1.5 min, delete (of a stopped one: labctl stops notebooks before
    # it deletes their stacks) about 2 min: estimate.
    "AWS::SageMaker::NotebookInstance": Times(300, 120, "AWS docs ('a few minutes'); minutes: estimate", stop=90),
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": Times(2, 2, "estimate"),
    # CloudFormation waits for 'running' (pending -> running is tens of seconds for Nitro instances); GPU
    # instances stop and terminate in about a minute: estimate.
    "AWS::EC2::Instance": Times(45, 60, "estimate (EC2 docs: pending -> running, stopping, shutting-down)", stop=60),
    "AWS::EC2::VPC": Times(5, 5, "estimate"),
    "AWS::EC2::Subnet": Times(5, 5, "estimate"),
    "AWS::EC2::InternetGateway": Times(5, 5, "estimate"),
    "AWS::EC2::VPCGatewayAttachment": Times(15, 15, "estimate"),
    "AWS::EC2::RouteTable": Times(5, 5, "estimate"),
    "AWS::EC2::Route": Times(5, 5, "estimate"),
    "AWS::EC2::SubnetRouteTableAssociation": Times(5, 5, "estimate"),
    "AWS::EC2::SecurityGroup": Times(5, 5, "estimate"),
    "AWS::EC2::SecurityGroupIngress": Times(3, 3, "estimate"),
    "AWS::EC2::SecurityGroupEgress": Times(3, 3, "estimate"),
    "AWS::EC2::NatGateway": Times(120, 60, "estimate (NAT gateways are 'pending' for minutes)"),
    "AWS::EC2::EIP": Times(5, 5, "estimate"),
    "AWS::EC2::LaunchTemplate": Times(3, 3, "estimate"),
    # IAM is eventually consistent; CloudFormation waits for propagation after each principal. Instance profiles are
    # the slow one (about 2 minutes is what CloudFormation event logs commonly show): estimate.
    "AWS::IAM::Role": Times(15, 10, "estimate (CloudFormation waits out IAM propagation)"),
    "AWS::IAM::User": Times(10, 10, "estimate"),
    "AWS::IAM::Group": Times(10, 10, "estimate"),
    "AWS::IAM::Policy": Times(15, 10, "estimate"),
    "AWS::IAM::ManagedPolicy": Times(15, 10, "estimate"),
    "AWS::IAM::AccessKey": Times(5, 5, "estimate"),
    "AWS::IAM::UserToGroupAddition": Times(5, 5, "estimate"),
    "AWS::IAM::InstanceProfile": Times(120, 10, "estimate (instance-profile propagation)"),
    "AWS::S3::Bucket": Times(20, 10, "estimate"),
    "AWS::S3::BucketPolicy": Times(3, 3, "estimate"),
    "AWS::Lambda::Function": Times(10, 5, "estimate"),
    "AWS::Lambda::Permission": Times(3, 3, "estimate"),
    # A customer managed key is created in seconds; deleting only schedules its deletion (7-30 days, not billed).
    "AWS::KMS::Key": Times(10, 3, "estimate (delete = ScheduleKeyDeletion)"),
    "AWS::KMS::Alias": Times(3, 3, "estimate"),
    "AWS::SNS::Topic": Times(5, 5, "estimate"),
    "AWS::SNS::Subscription": Times(3, 3, "estimate"),
    "AWS::SNS::TopicPolicy": Times(3, 3, "estimate"),
    # CloudFormation waits about a minute on a new queue (SQS propagates queue attributes that long): estimate.
    "AWS::SQS::Queue": Times(60, 60, "estimate"),
    "AWS::SQS::QueuePolicy": Times(3, 3, "estimate"),
    "AWS::Logs::LogGroup": Times(2, 2, "estimate"),
    "AWS::Events::Rule": Times(5, 5, "estimate"),
    "AWS::ECR::Repository": Times(5, 5, "estimate"),
    "AWS::CloudWatch::Alarm": Times(3, 3, "estimate"),
    "AWS::Budgets::Budget": Times(5, 5, "estimate"),
    "AWS::SSM::Parameter": Times(3, 3, "estimate"),
    "AWS::CDK::Metadata": Times(0, 0, "no AWS resource"),
    # Per account (per stack instance): each is a whole stack in that account, plus StackSets' own scheduling.
    "AWS::CloudFormation::StackSet": Times(90, 90, "estimate, per stack instance (account)"),
}
DEFAULT = Times(5, 5, "estimate for a type not in the table")
# Steps labctl takes itself, outside CloudFormation (seconds of AWS time, with their sources); the machines'
# stop times are the `stop` of their types above.
OPERATIONS: dict[str, tuple[float, str]] = {
    # A DLAMI volume's first snapshot is incremental on the AMI's own snapshot: only the blocks written since.
    "CreateSnapshot": (120, "estimate (EBS docs: incremental snapshots; a few GB written)"),
    # Listing, downloading, verifying and deleting a lab bucket of about 1 GB: estimate.
    "archive a lab bucket": (15, "estimate (1 GB at about 100 MB/s, plus listing and deletes)"),
}
NOTEBOOK = TIMES["AWS::SageMaker::NotebookInstance"]
# CloudFormation API requests a second (and at once) before `Throttling`: estimate; AWS does not publish it.
CFN_RATE, CFN_BURST = 10.0, 20


@dataclass(frozen=True)
class Timing:
    """The emulator's timing options: AWS durations times `time_scale`; a CloudFormation rate limit if set."""

    time_scale: float = 0.01
    cfn_rate: float | None = None
    cfn_burst: int = CFN_BURST

    def server_args(self) -> list[str]:
        args = ["--aws-timing", "--time-scale", str(self.time_scale)]
        if self.cfn_rate is not None:
            args += ["--cfn-rate", str(self.cfn_rate), "--cfn-burst", str(self.cfn_burst)]
        return args


def times_of(resource_type: str) -> Times:
    return TIMES.get(resource_type, DEFAULT)


def _references(node: Any, names: Mapping[str, Any]) -> set[str]:
    """Logical ids of `names` that `node` refers to through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and value in names:
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
                if target in names:
                    found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {ref.split(".", 1)[0] for ref in re.findall(r"\$\{([^!][^}]*)\}", str(text))
                          if ref.split(".", 1)[0] in names}
            found |= _references(value, names)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item, names)
    return found


def dependencies(resources: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each resource's in-template dependencies: DependsOn plus what it refers to."""
    graph: dict[str, set[str]] = {}
    for name, body in resources.items():
        depends = body.get("DependsOn", [])
        depends = {depends} if isinstance(depends, str) else set(depends)
        graph[name] = ({d for d in depends if d in resources} | _references(body, resources)) - {name}
    return graph


def _duration(resource: Mapping[str, Any], action: str) -> float:
    times = times_of(str(resource.get("Type", "")))
    if action == "delete" and resource.get("DeletionPolicy") in {"Retain", "RetainExceptOnCreate"}:
        return 0.0
    seconds = times.create if action == "create" else times.delete
    if resource.get("Type") == "AWS::CloudFormation::StackSet":
        groups = resource.get("Properties", {}).get("StackInstancesGroup", [])
        accounts = sum(len(g.get("DeploymentTargets", {}).get("Accounts", [])) or 1 for g in groups) or 1
        seconds *= accounts
    return float(seconds)


def schedule(resources: Mapping[str, Any], action: str) -> dict[str, tuple[float, float]]:
    """(start, end) in AWS seconds of each resource, for `action` "create" or "delete" of all `resources`."""
    graph = dependencies(resources)
    if action == "delete":  # a resource goes once everything that depends on it is gone
        reverse: dict[str, set[str]] = {name: set() for name in resources}
        for name, needs in graph.items():
            for need in needs:
                reverse[need].add(name)
        graph = reverse
    done: dict[str, tuple[float, float]] = {}

    def visit(name: str, path: frozenset[str]) -> float:
        if name in done:
            return done[name][1]
        start = max((visit(d, path | {name}) for d in graph[name] if d not in path), default=0.0)
        done[name] = (start, start + _duration(resources[name], action))
        return done[name][1]

    for name in resources:
        visit(name, frozenset())
    return done


def stack_seconds(template: Mapping[str, Any], action: str, previous: Mapping[str, Any] | None = None) -> float:
    """AWS seconds CloudFormation needs to create, update (from `previous`) or delete a stack of `template`."""
    resources = template.get("Resources", {}) or {}
    if action == "update":
        old = (previous or {}).get("Resources", {}) or {}
        changed = {n: r for n, r in resources.items() if old.get(n) != r}
        removed = {n: r for n, r in old.items() if n not in resources}
        # New and changed resources first, then the clean-up of removed ones (UPDATE_COMPLETE_CLEANUP_IN_PROGRESS).
        return _longest(schedule(changed, "create")) + _longest(schedule(removed, "delete"))
    return _longest(schedule(resources, action))


def _longest(planned: Mapping[str, tuple[float, float]]) -> float:
    return max((end for _, end in planned.values()), default=0.0)


@dataclass
class TokenBucket:
    """`rate` requests a second on average, `burst` at once."""

    rate: float
    burst: int
    clock: Clock = time.monotonic
    _tokens: float = field(init=False)
    _last: float = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._tokens, self._last = float(self.burst), self.clock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


_IN_PROGRESS = {"CREATE_COMPLETE": "CREATE_IN_PROGRESS", "UPDATE_COMPLETE": "UPDATE_IN_PROGRESS"}


def patch_timing(timing: Timing, assign: Assign = setattr, clock: Clock = time.monotonic) -> None:
    """Make the emulator's CloudFormation and notebook instances take AWS's time (times `timing.time_scale`).

    Run after `labkit.emulator_cfn.patch_cloudformation`: a timed delete ends in its (fixed) delete.
    """
    from moto.cloudformation.exceptions import CloudFormationError
    from moto.cloudformation.models import CloudFormationBackend, Stack
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult
    from moto.sagemaker.models import FakeSagemakerNotebookInstance
    from moto.sagemaker.responses import SageMakerResponse

    scale = timing.time_scale

    def stack_status(self: Stack) -> str:
        stored = str(self.__dict__.get("_labkit_status", self.__dict__.get("status", "")))
        now = clock()
        if self.__dict__.get("_labkit_delete_at") is not None:
            return "DELETE_IN_PROGRESS"
        if now < self.__dict__.get("_labkit_ready_at", 0.0) and stored in _IN_PROGRESS:
            return _IN_PROGRESS[stored]
        return stored

    def set_stack_status(self: Stack, value: str) -> None:
        self.__dict__["_labkit_status"] = value

    def run_for(stack: Stack, seconds: float) -> None:
        stack.__dict__["_labkit_ready_at"] = clock() + seconds * scale

    create_stack = CloudFormationBackend.create_stack

    def timed_create(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> Stack:
        stack = create_stack(self, *args, **kwargs)
        run_for(stack, stack_seconds(stack.template_dict, "create"))
        return stack

    update_stack = CloudFormationBackend.update_stack

    def timed_update(self: CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Stack:
        before = dict(self.get_stack(name).template_dict)
        stack = update_stack(self, name, *args, **kwargs)
        run_for(stack, stack_seconds(stack.template_dict, "update", before))
        return stack

    execute = CloudFormationBackend.execute_change_set

    def timed_execute(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.change_sets.get(change_set_name)
        stack = self.stacks.get(change_set.stack_id) if change_set else None
        before = dict(stack.template_dict) if stack is not None else {}
        execute(self, change_set_name, stack_name)
        if stack is not None:
            kind = "create" if change_set is not None and change_set.change_set_type == "CREATE" else "update"
            run_for(stack, stack_seconds(stack.template_dict, kind, before))

    delete_stack = CloudFormationBackend.delete_stack

    def timed_delete(self: CloudFormationBackend, name_or_stack_id: str) -> None:
        stack = next((s for s in self.stacks.values() if name_or_stack_id in (s.stack_id, s.name)), None)
        if stack is None or stack.__dict__.get("_labkit_delete_at") is not None:
            return
        seconds = stack_seconds(stack.template_dict, "delete") * scale
        stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        stack.__dict__["_labkit_delete_at"] = clock() + seconds

    def settle(backend: CloudFormationBackend) -> None:
        """Finish the deletes whose time has come (before every CloudFormation request)."""
        now = clock()
        for stack in list(backend.stacks.values()):
            due = stack.__dict__.get("_labkit_delete_at")
            if due is not None and due <= now:
                del stack.__dict__["_labkit_delete_at"]
                delete_stack(backend, stack.stack_id)

    bucket = TokenBucket(timing.cfn_rate, timing.cfn_burst, clock) if timing.cfn_rate else None

    class Throttling(CloudFormationError):
        code = "Throttling"

        def __init__(self) -> None:
            super().__init__("Rate exceeded")

    call_action = CloudFormationResponse.call_action

    def timed_call(self: CloudFormationResponse) -> Any:
        if bucket is not None and not bucket.take():
            # Serialized as moto answers any service error of an action (moto.core.responses.call_action).
            status, headers, body = self.serialized(ActionResult(Throttling()))
            headers["status"] = status
            return self._transform_response(self.response_headers, (body, headers))
        settle(self.cloudformation_backend)
        return call_action(self)

    def notebook_status(self: Any) -> str:
        stored = self.__dict__.get("_labkit_status", self.__dict__.get("status", "Pending"))
        since, now = self.__dict__.get("_labkit_since", 0.0), clock()
        if stored == "InService" and now < since + NOTEBOOK.create * scale:
            return "Pending"
        if stored == "Stopped" and now < self.__dict__.get("_labkit_stopping_until", 0.0):
            return "Stopping"
        return str(stored)

    def set_notebook_status(self: Any, value: str) -> None:
        self.__dict__["_labkit_status"], self.__dict__["_labkit_since"] = value, clock()

    stop_notebook = SageMakerResponse.stop_notebook_instance

    def timed_stop(self: SageMakerResponse) -> Any:
        # StopNotebookInstance takes its time; CloudFormation's own stop before a delete is inside the stack's.
        answer = stop_notebook(self)
        notebook = self.sagemaker_backend.get_notebook_instance(self._get_param("NotebookInstanceName"))
        notebook.__dict__["_labkit_stopping_until"] = clock() + (NOTEBOOK.stop or 0) * scale
        return answer

    assign(Stack, "status", property(stack_status, set_stack_status))
    assign(CloudFormationBackend, "create_stack", timed_create)
    assign(CloudFormationBackend, "update_stack", timed_update)
    assign(CloudFormationBackend, "execute_change_set", timed_execute)
    assign(CloudFormationBackend, "delete_stack", timed_delete)
    assign(CloudFormationResponse, "call_action", timed_call)
    assign(FakeSagemakerNotebookInstance, "status", property(notebook_status, set_notebook_status))
    assign(SageMakerResponse, "stop_notebook_instance", timed_stop)
