"""`labctl handout`: per student, a Markdown file and an HTML version to paste into a mail or an LMS, and their
access key as an AWS CLI profile. All private (mode 0600); secrets are never printed.

Both formats come from one list of blocks, so they cannot say different things; every external string (names,
e-mails from the roster) is escaped for HTML and shown as text in Markdown code spans.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.catalog import DLAMIS
from course.config import LabConfig
from course.naming import PLACEHOLDER_STUDENT, CourseNames
from lab_scripts import access_keys, class_repository, instance, notebook
from lab_scripts.organization import student_accounts
from labkit.deployed import deployed_instances, deployed_notebooks, deployed_users, lab_physical_ids
from labkit.ops.errors import RefusedError
from labkit.target import Target

SESSION_MANAGER_PLUGIN = ("The GPU commands need the AWS CLI v2 and its Session Manager plugin: "
                          "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
                          "session-manager-working-with-install-plugin.html")
DONE_FOR_THE_DAY = ("Done for the day? Stop your notebook and your GPU instance with the stop commands above: a "
                    "running machine bills by the hour, a stopped one only for its disk. Both also stop themselves "
                    "when idle, but do not count on it.")

Block = tuple[str, str]  # ("h1" | "h2" | "p" | "code", text)


@dataclass(frozen=True)
class Handout:
    student: str
    path: Path
    html: Path
    credentials: str  # "issued AKIA...WXYZ -> alice.credentials" or why there is none; never the secret


def markdown(blocks: list[Block]) -> str:
    out = []
    for kind, text in blocks:
        out.append({"h1": f"# {text}", "h2": f"## {text}", "p": text}.get(kind, "\n".join(
            f"    {line}" for line in text.splitlines())))
        out.append("")
    return "\n".join(out)


def to_html(blocks: list[Block], title: str) -> str:
    body = []
    for kind, text in blocks:
        escaped = html.escape(text)
        if kind == "code":
            body.append(f"<pre><code>{escaped}</code></pre>")
        elif kind == "p":
            body.append(f"<p>{escaped}</p>")
        else:
            body.append(f"<{kind}>{escaped}</{kind}>")
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>\n"
            "<body style=\"font-family: sans-serif; max-width: 50em\">\n" + "\n".join(body) + "\n</body></html>\n")


def handouts(target: Target, config: LabConfig, students: list[str], out: Path) -> list[Handout]:
    """Private files per student: `<id>.md` and `<id>.html` (how to start, open, stop their notebook and GPU
    instance) and `<id>.credentials`, a new access key as an AWS CLI profile.

    A student who already holds an access key gets no new one (its secret cannot be read back): the file says
    so, and `labctl keys delete STUDENT` then a new handout replaces it.
    """
    unknown = [s for s in students if s not in config.students]
    if unknown:
        raise RefusedError(f"student {unknown[0]!r} is not in the course")
    if config.classroom.per_account:
        return _account_handouts(target, config, students, out)
    notebooks, instances = deployed_notebooks(target, config), deployed_instances(target, config)
    users = deployed_users(target, config)
    # As deployed: a solo learner's kept bucket carries a suffix of its stack.
    buckets = lab_physical_ids(target, config, "LabSageMaker", "AWS::S3::Bucket")
    missing = [s for s in students if s not in users]
    if missing:
        raise RefusedError(f"{missing[0]} has no IAM user yet: `labctl provision` creates it (it adds students "
                           "who are new to the roster)")
    iam, sm = target.clients("iam"), target.clients("sagemaker")
    made = []
    for student in students:
        profile = config.course_id
        existing = access_keys.list_keys(iam, users[student])
        key = None if existing else access_keys.issue(iam, users[student])
        blocks = _blocks(config, student, profile, notebooks, instances, buckets, sm)
        if key:
            keyfile = access_keys.write_private(out / f"{student}.credentials",
                                                access_keys.credentials_text(key, profile, config.region))
            credentials = f"issued {access_keys.masked(key.access_key_id)} -> {keyfile.name}"
            blocks += [("h2", "Credentials"), ("p", f"{keyfile.name} holds your access key as the AWS profile "
                       f"{profile}: append it to ~/.aws/credentials. It is yours alone: never share or commit it.")]
        else:
            credentials = f"already holds {access_keys.masked(existing[0].access_key_id)}; no new key"
            blocks += [("h2", "Credentials"), ("p", f"Use the access key you already received (profile {profile}). "
                       "Lost it? Ask your instructor for a new one.")]
        made.append(_write(out, student, blocks, credentials))
    return made


def _write(out: Path, student: str, blocks: list[Block], credentials: str) -> Handout:
    path = access_keys.write_private(out / f"{student}.md", markdown(blocks))
    page = access_keys.write_private(out / f"{student}.html", to_html(blocks, blocks[0][1]))
    return Handout(student, path, page, credentials)


def _blocks(config: LabConfig, student: str, profile: str, notebooks: dict[str, str], instances: dict[str, str],
            buckets: dict[str, str], sm: Any) -> list[Block]:
    row = config.student_row(student)
    who = f"{row.name} <{row.email}>" if row else student
    region = config.region
    flags = f"--region {region} --profile {profile}"
    blocks: list[Block] = [("h1", f"{config.course_id} lab access for {who}"),
                           ("p", f"Student id {student}, region {region}; the labs end on {config.expires}.")]
    if student in notebooks:
        name = notebooks[student]
        url = notebook.status(sm, name).url
        blocks += [("h2", "SageMaker notebook"),
                   ("p", f"Notebook {name}" + (f" at https://{url}" if url else "") + ". Start it, open it with a "
                    "sign-in link (valid 5 minutes), and stop it when you are done:"),
                   ("code", f"aws sagemaker start-notebook-instance --notebook-instance-name {name} {flags}\n"
                    f"aws sagemaker create-presigned-notebook-instance-url --notebook-instance-name {name} {flags}\n"
                    f"aws sagemaker stop-notebook-instance --notebook-instance-name {name} {flags}"),
                   ("p", f"It stops itself after {config.sagemaker.idle_minutes} idle minutes. Your bucket: "
                    f"s3://{buckets.get(student, config.names.student(student).bucket)}; the notebook's folder is "
                    "copied to its notebook/ prefix every few minutes and before the notebook stops.")]
    if student in instances:
        gpu = instances[student]
        login = DLAMIS[config.dlami.ami_type].login_user
        blocks += [("h2", "GPU workstation (Deep Learning AMI)"),
                   ("p", f"Instance {gpu} ({config.dlami.instance_type}); no SSH port is open: connect through "
                    f"Session Manager (then `sudo su - {login}`). {SESSION_MANAGER_PLUGIN}"),
                   ("code", f"aws ec2 start-instances --instance-ids {gpu} {flags}\n"
                    f"{instance.session_command(gpu, region=region, profile=profile)}\n"
                    f"aws ec2 stop-instances --instance-ids {gpu} {flags}"),
                   ("p", f"It stops after {config.dlami.idle_minutes} idle minutes."
                    + (" It was created stopped: start it with the first command when your lab begins."
                       if config.dlami.start == "stopped" else ""))]
    if config.containers.class_repository:
        uri = class_repository.repository_uri(config.names, student)
        blocks += [("h2", "Your container repository"),
                   ("p", f"Push your images to {uri} (yours alone; tags cannot be overwritten, so push a new tag per "
                    f"version). The course's base images are in {class_repository.repository_uri(config.names)}."),
                   ("code", f"{class_repository.login_command(config.names)} "
                    f"# add --profile {profile} to the aws part\n"
                    f"docker tag my-image {uri}:lab1\ndocker push {uri}:lab1")]
    blocks += [("p", DONE_FOR_THE_DAY)]
    return blocks


def _account_handouts(target: Target, config: LabConfig, students: list[str], out: Path) -> list[Handout]:
    """Account-per-student mode: each student signs in to their own account; the file says where and how."""
    accounts = student_accounts(target.clients("organizations"), config.course_id)
    missing = [s for s in students if s not in accounts]
    if missing:
        raise RefusedError(f"{missing[0]} has no account yet: provision the class first (labctl provision)")
    made = []
    for student in students:
        account, region, profile = accounts[student], config.region, config.course_id
        flags = f"--region {region} --profile {profile}"
        names = CourseNames(config.course_id, account, region).student(PLACEHOLDER_STUDENT)
        row = config.student_row(student)
        blocks: list[Block] = [
            ("h1", f"{config.course_id} lab account for {row.name if row else student}"),
            ("p", f"Your own AWS account {account} (region {region}); the labs end on {config.expires}. Sign in at "
             f"https://{account}.signin.aws.amazon.com/console with the access your instructor set up (IAM "
             f"Identity Center), and configure the AWS CLI profile {profile} for it."),
            ("h2", "SageMaker notebook"),
            ("code", f"aws sagemaker start-notebook-instance --notebook-instance-name {names.notebook} {flags}\n"
             f"aws sagemaker create-presigned-notebook-instance-url --notebook-instance-name {names.notebook} "
             f"{flags}\naws sagemaker stop-notebook-instance --notebook-instance-name {names.notebook} {flags}"),
            ("p", f"Your bucket: s3://{names.bucket}"),
            ("h2", "GPU workstation (Deep Learning AMI)"),
            ("p", SESSION_MANAGER_PLUGIN),
            ("code", f"aws ec2 describe-instances --filters Name=tag:Name,Values={names.workstation} "
             f"--query 'Reservations[].Instances[].InstanceId' {flags}\n"
             f"aws ec2 start-instances --instance-ids <instance id> {flags}\n"
             f"{instance.session_command('<instance id>', region=region, profile=profile)}\n"
             f"aws ec2 stop-instances --instance-ids <instance id> {flags}"),
            ("p", f"Both stop themselves when idle ({config.sagemaker.idle_minutes} and {config.dlami.idle_minutes} "
             "minutes). Keep your work in your bucket: it is archived when the course ends."),
            ("p", DONE_FOR_THE_DAY),
        ]
        made.append(_write(out, student, blocks, f"own account {account}; no access key issued"))
    return made
