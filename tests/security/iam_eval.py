"""A small IAM policy evaluator for the statement shapes labkit writes, so tests can ask "may alice do X to Y?".

No maintained evaluator fits: moto enforces no IAM at all, and principalmapper does not substitute
`${aws:PrincipalTag/...}` (it answers deny for every ABAC statement). This one implements the documented rules
it relies on, and refuses (NotImplementedError) any element or operator it does not know, so a new shape in a
template fails the tests instead of being judged wrongly:

- an explicit Deny wins over any Allow; without a matching Allow the request is implicitly denied;
- Action/NotAction match case-insensitively with `*` and `?`; Resource/NotResource match case-sensitively,
  `*` also across `/` and `:`;
- policy variables `${key}` in Resource and condition values are replaced by the request's value for `key`,
  as literal text (a `*` in a tag value is not a wildcard); a variable without a value makes the Resource not
  match and the condition false; `${*}`, `${?}`, `${$}` are the literal characters;
- condition operators are ANDed, the keys of one operator ANDed, the values of one key ORed; a key missing from
  the request makes a condition false, except `...IfExists` (true), `Null`, and `ForAllValues:` (true);
  condition key names are case-insensitive, values are not (except `StringEqualsIgnoreCase`).

Values in templates may be CloudFormation intrinsics; `resolve` turns the ones CDK writes into strings.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"
_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_LITERALS = {"*": "*", "?": "?", "$": "$"}
_KNOWN_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
ContextValue = str | bool | list[str]


class Unresolved(Exception):
    """A variable without a value in the request: the element that holds it does not match."""


@dataclass(frozen=True)
class Request:
    """One API call: the action, the resource ARN, and the request context (condition keys and their values)."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def value(self, key: str) -> ContextValue | None:
        wanted = key.lower()
        return next((value for name, value in self.context.items() if name.lower() == wanted), None)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _substitute(pattern: str, request: Request, *, glob: bool) -> str:
    """The pattern with its variables replaced. For a glob the result is a regex: substituted text is literal."""
    out, last = [], 0
    for found in _VARIABLE.finditer(pattern):
        literal = pattern[last:found.start()]
        out.append(_glob_regex(literal) if glob else literal)
        name = found.group(1).strip()
        if name in _LITERALS:
            text = _LITERALS[name]
        else:
            value = request.value(name)
            if value is None or isinstance(value, list):
                raise Unresolved(name)
            text = str(value).lower() if isinstance(value, bool) else value
        out.append(re.escape(text) if glob else text)
        last = found.end()
    tail = pattern[last:]
    out.append(_glob_regex(tail) if glob else tail)
    return "".join(out)


def _glob_regex(text: str) -> str:
    return "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in text)


def _glob(pattern: str, value: str, request: Request, *, case: bool = True) -> bool:
    try:
        regex = _substitute(pattern, request, glob=True)
    except Unresolved:
        return False
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns)


def _string_test(operator: str) -> Any:
    """How one request value compares with one policy value, for the string and ARN operators."""
    def equals(policy: str, actual: str, request: Request) -> bool:
        try:
            return _substitute(policy, request, glob=False) == actual
        except Unresolved:
            return False

    def equals_ignore_case(policy: str, actual: str, request: Request) -> bool:
        try:
            return _substitute(policy, request, glob=False).lower() == actual.lower()
        except Unresolved:
            return False

    tests = {
        "StringEquals": equals, "ArnEquals": equals, "StringEqualsIgnoreCase": equals_ignore_case,
        "StringLike": lambda policy, actual, request: _glob(policy, actual, request),
        "ArnLike": lambda policy, actual, request: _glob(policy, actual, request),
        "Bool": lambda policy, actual, request: str(policy).lower() == str(actual).lower(),
    }
    if operator not in tests:
        raise NotImplementedError(f"condition operator {operator!r} is not modelled")
    return tests[operator]


def _condition(operator: str, key: str, values: list[Any], request: Request) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    actual = request.value(key)
    if base == "Null":
        if qualifier or if_exists:
            raise NotImplementedError(f"condition operator {operator!r} is not modelled")
        return any((actual is None) == (str(value).lower() == "true") for value in values)
    test = _string_test(base)
    if qualifier == "":
        if actual is None:
            return if_exists
        if isinstance(actual, list):
            raise NotImplementedError(f"{key} is multivalued: use ForAllValues/ForAnyValue")
        text = str(actual).lower() if isinstance(actual, bool) else actual
        return any(test(str(value) if isinstance(value, bool) else value, text, request) for value in values)
    if qualifier not in {"ForAllValues", "ForAnyValue"}:
        raise NotImplementedError(f"condition operator {operator!r} is not modelled")
    members = [] if actual is None else _as_list(actual)
    matches = [any(test(value, member, request) for value in values) for member in members]
    return all(matches) if qualifier == "ForAllValues" else any(matches)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    unknown = set(statement) - _KNOWN_ELEMENTS
    if unknown:
        raise NotImplementedError(f"statement elements {sorted(unknown)} are not modelled")
    if "Action" in statement:
        if not _action_matches(_as_list(statement["Action"]), request.action):
            return False
    elif _action_matches(_as_list(statement["NotAction"]), request.action):
        return False
    if "Resource" in statement:
        if not any(_glob(pattern, request.resource, request) for pattern in _as_list(statement["Resource"])):
            return False
    elif any(_glob(pattern, request.resource, request) for pattern in _as_list(statement["NotResource"])):
        return False
    for operator, keys in statement.get("Condition", {}).items():
        for key, values in keys.items():
            if not _condition(operator, key, _as_list(values), request):
                return False
    return True


def evaluate(statements: Iterable[Mapping[str, Any]], request: Request) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for `request` under identity-policy `statements` (one principal)."""
    allowed = False
    for statement in statements:
        if statement["Effect"] not in {"Allow", "Deny"}:
            raise ValueError(f"Effect {statement['Effect']!r}")
        if _applies(statement, request):
            if statement["Effect"] == "Deny":
                return EXPLICIT_DENY
            allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


# CloudFormation pseudo parameters of the account and region the tests synthesize for.
PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}


def resolve(value: Any, *, account: str, region: str, arns: Mapping[str, str] | None = None) -> Any:
    """`value` with the intrinsics CDK writes in policies (Ref of pseudo parameters, Fn::Join, Fn::GetAtt Arn of
    a resource in `arns`) replaced by strings; anything else is refused."""
    pseudo = {**PSEUDO, "AWS::AccountId": account, "AWS::Region": region}
    arns = arns or {}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (name, argument), = node.items()
            if name == "Ref" and argument in pseudo:
                return pseudo[argument]
            if name == "Fn::Join":
                return argument[0].join(walk(part) for part in argument[1])
            if name == "Fn::GetAtt" and argument[1] == "Arn" and argument[0] in arns:
                return arns[argument[0]]
            if name.startswith("Fn::") or name == "Ref":
                raise NotImplementedError(f"intrinsic {node!r} is not resolved")
        return {key: walk(item) for key, item in node.items()}

    return walk(value)
