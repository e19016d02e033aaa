"""CloudFormation in the emulator behaving as AWS does where moto 5.2.5 does not: updates and failed deletes.

moto behaviours, each closed by one patch in `patch_cloudformation` (run in the emulator process):

1. **Updates with `UsePreviousValue`.** The CDK CLI updates a stack with every template parameter the stack
   already has marked `UsePreviousValue: true`, CDK's `BootstrapVersion` among them. moto looks the previous value
   up in the parameters *passed* at creation only, so a parameter that took its template default raises
   `KeyError: 'BootstrapVersion'` (a 500 page, which the CDK CLI reports as "@aws-sdk XML parse error"). AWS reuses
   the previous value, which for a defaulted parameter is its default (for an SSM parameter type the parameter
   *name*, resolved again): the patch leaves such a key out, so the template's default applies.
2. **Exports follow an update.** moto registers a stack's exports at creation only: an export added by an update
   is invisible to `ListExports`/`Fn::ImportValue`, and one removed by it stays. The patch re-registers them.
3. **A failed delete is `DELETE_FAILED`, not gone.** moto takes the stack out of its table before deleting its
   resources; when one cannot be deleted (a VPC whose route tables moto cannot remove) the stack disappears from
   every listing while its exports stay registered for ever (`Export names must be unique` on the next course).
   AWS keeps the stack as `DELETE_FAILED` with its exports, and a second `DeleteStack` retries what is left,
   counting a resource already deleted out of band as deleted. The patch does exactly that, and freezes the
   stack's outputs and resource list when its delete starts: moto creates resources lazily, so describing a
   half-deleted stack (its outputs, its resources) would otherwise create again what was just deleted.
4. **Change sets** (the CDK CLI's default deploy method, what a learner gets with a plain `cdk deploy`): moto
   finds a change set by name across all stacks (the CLI names every stack's `cdk-deploy-change-set`), raises
   `UnboundLocalError` deleting one that does not exist (AWS succeeds while the stack exists; the CLI relies on it
   before every update) and answers DescribeChangeSet of a deleted one with "Stack ... does not exist" (AWS:
   `ChangeSetNotFound`, which the CLI waits for after that delete), resolves `UsePreviousValue` to the *resolved* SSM value of `BootstrapVersion` (which it
   then looks up as a parameter name), and after executing one keeps the stack's old outputs and exports (none, for
   a created stack) and no imports. The patch looks change sets up within their stack, and gives the stack its new
   template's outputs, exports and the region's exports to import from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError, ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.parsing import ResourceMap
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult, EmptyResult

Assign = Callable[[Any, str, Any], None]


def _gone(exc: Exception) -> bool:
    """An error that says the resource no longer exists: deleting it again has the outcome wanted."""
    code = str(getattr(exc, "error_type", "") or getattr(exc, "code", "") or type(exc).__name__)
    return "NotFound" in code or "NoSuch" in code or isinstance(exc, KeyError)


class _FrozenOutputs(Mapping[str, Any]):
    """A stack's outputs and exports as they were when its delete started (see point 3)."""

    def __init__(self, outputs: dict[str, Any], exports: list[Any]) -> None:
        self._outputs, self.exports = outputs, exports

    def __getitem__(self, key: str) -> Any:
        return self._outputs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)


def _freeze(stack: Stack) -> None:
    if isinstance(stack.output_map, _FrozenOutputs):
        return
    outputs = {key: stack.output_map[key] for key in stack.output_map.outputs}
    stack.output_map = _FrozenOutputs(outputs, stack.output_map.exports)
    stack.resource_map._labkit_deleting = True


def _deleting(resource_map: ResourceMap) -> bool:
    return bool(getattr(resource_map, "_labkit_deleting", False))


def resolve_update_parameters(backend: CloudFormationBackend, instance: Any,
                              incoming_params: list[dict[str, Any]]) -> dict[str, Any]:
    """moto's `_resolve_update_parameters`, with a previous value that was the template default left to it."""
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in incoming_params if "ParameterValue" in p}
    for parameter in incoming_params:
        key = parameter["ParameterKey"]
        if parameter.get("UsePreviousValue", False) and key in instance.parameters:
            parameters[key] = instance.parameters[key]
    return parameters


def _register_exports(backend: CloudFormationBackend, stack: Stack) -> None:
    """The stack's current exports, and only those, in the region's export table."""
    mine = {export.name for export in stack.exports}
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id and name not in mine:
            del backend.exports[name]
    taken = {name for name, export in backend.exports.items() if export.exporting_stack_id != stack.stack_id}
    if taken & mine:
        raise ValidationError(stack.stack_id, message="Export names must be unique across a given region")
    for export in stack.exports:
        backend.exports[export.name] = export


class ChangeSetNotFound(CloudFormationError):
    """AWS's answer to DescribeChangeSet of a change set that does not (or no longer) exist."""

    code = "ChangeSetNotFoundException"

    def __init__(self, name: str) -> None:
        super().__init__(f"ChangeSet [{name}] does not exist")


def find_change_set(backend: CloudFormationBackend, name: str, stack_name: str | None) -> str | None:
    """The id of change set `name` (an ARN, or a name within stack `stack_name`), or None."""
    if name in backend.change_sets:
        return name
    found = [cs_id for cs_id, cs in backend.change_sets.items() if cs.change_set_name == name
             and stack_name in (None, cs.stack_name, cs.stack_id)]
    return found[-1] if found else None


def _previous_defaults(backend: CloudFormationBackend, stack_name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """`parameters` without those moto filled in from a defaulted previous value (see point 4)."""
    stack = next((s for s in backend.stacks.values() if s.name == stack_name), None)
    if stack is None:
        return parameters
    resolved = stack.stack_parameters
    return {key: value for key, value in parameters.items()
            if key in stack.parameters or key not in resolved or resolved[key] != value}


def _response_change_set(response: CloudFormationResponse) -> str | None:
    return find_change_set(response.cloudformation_backend, response._get_param("ChangeSetName"),
                           response._get_param("StackName"))


def describe_change_set(self: CloudFormationResponse) -> ActionResult:
    found = _response_change_set(self)
    if found is None:
        raise ChangeSetNotFound(self._get_param("ChangeSetName"))
    return ActionResult(self.cloudformation_backend.describe_change_set(change_set_name=found))


def delete_change_set(self: CloudFormationResponse) -> EmptyResult:
    found = _response_change_set(self)
    if found:
        self.cloudformation_backend.delete_change_set(change_set_name=found)
    return EmptyResult()


def execute_change_set(self: CloudFormationResponse) -> EmptyResult:
    found = _response_change_set(self) or self._get_param("ChangeSetName")
    self.cloudformation_backend.execute_change_set(change_set_name=found, stack_name=self._get_param("StackName"))
    return EmptyResult()


def patch_cloudformation(assign: Assign = setattr) -> None:
    """Install the three fixes of the module docstring; `assign` is setattr, or monkeypatch.setattr in tests."""
    update_stack = CloudFormationBackend.update_stack

    def update_with_exports(self: CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Stack:
        stack = update_stack(self, name, *args, **kwargs)
        _register_exports(self, stack)
        return stack

    delete_resource = ResourceMap._delete_resource

    def delete_unless_gone(self: ResourceMap, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        try:
            delete_resource(self, parsed_resource, resource_json)
        except Exception as exc:  # noqa: BLE001 - moto raises each service's own error classes
            if not _gone(exc):
                raise

    get_resource = ResourceMap.__getitem__

    def no_lazy_creation_while_deleting(self: ResourceMap, key: str) -> Any:
        if _deleting(self) and key in self._resource_json_map and key not in self._parsed_resources:
            raise KeyError(key)  # deleted (or never created): a half-deleted stack creates nothing
        return get_resource(self, key)

    resources_of = Stack.stack_resources.fget

    def remaining_resources(self: Stack) -> Iterable[Any]:
        if not _deleting(self.resource_map):
            return resources_of(self)  # type: ignore[misc]
        parsed = self.resource_map._parsed_resources
        return [parsed[key] for key in self.resource_map._resource_json_map if parsed.get(key) is not None]

    def delete_stack(self: CloudFormationBackend, name_or_stack_id: str) -> None:
        stack = next((s for s in self.stacks.values() if name_or_stack_id in (s.stack_id, s.name)), None)
        if stack is None:
            return  # AWS answers DeleteStack of an unknown or deleted stack with success
        _freeze(stack)
        stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        try:
            stack.resource_map.delete()
        except Exception as exc:  # noqa: BLE001 - any resource's failure fails the stack, as in AWS
            stack.status = "DELETE_FAILED"
            stack._add_stack_event("DELETE_FAILED", resource_status_reason=f"resources failed to delete: {exc}")
            return
        stack._add_stack_event("DELETE_COMPLETE")
        stack.status = "DELETE_COMPLETE"
        del self.stacks[stack.stack_id]
        self.deleted_stacks[stack.stack_id] = stack
        for name, export in list(self.exports.items()):
            if export.exporting_stack_id == stack.stack_id:
                del self.exports[name]

    create_change_set = CloudFormationBackend.create_change_set

    def create_change_set_of_defaults(self: CloudFormationBackend, stack_name: str, change_set_name: str,
                                      template: str, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("change_set_type") == "UPDATE":
            parameters = _previous_defaults(self, stack_name, parameters)
        return create_change_set(self, stack_name, change_set_name, template, parameters, *args, **kwargs)

    execute = CloudFormationBackend.execute_change_set

    def execute_with_outputs(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.change_sets.get(change_set_name)
        if change_set is None:
            raise ValidationError(stack_name)
        stack = self.stacks[change_set.stack_id]
        stack.resource_map.cross_stack_resources = self.exports
        execute(self, change_set_name, stack_name)
        stack.template_dict = change_set.template_dict
        stack.description = change_set.template_dict.get("Description")
        if change_set.change_set_type == "CREATE":
            stack.parameters = change_set.parameters
        stack.output_map = stack._create_output_map()
        _register_exports(self, stack)

    assign(CloudFormationBackend, "_resolve_update_parameters", resolve_update_parameters)
    assign(CloudFormationBackend, "create_change_set", create_change_set_of_defaults)
    assign(CloudFormationBackend, "execute_change_set", execute_with_outputs)
    assign(CloudFormationResponse, "describe_change_set", describe_change_set)
    assign(CloudFormationResponse, "delete_change_set", delete_change_set)
    assign(CloudFormationResponse, "execute_change_set", execute_change_set)
    assign(CloudFormationBackend, "update_stack", update_with_exports)
    assign(CloudFormationBackend, "delete_stack", delete_stack)
    assign(ResourceMap, "_delete_resource", delete_unless_gone)
    assign(ResourceMap, "__getitem__", no_lazy_creation_while_deleting)
    assign(Stack, "stack_resources", property(remaining_resources))
