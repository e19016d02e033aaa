"""LabGuard: the course's teardown guard (scheduled function, report topic) and its class budget."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from course.config import LabConfig
from course.naming import STUDENT_ACCOUNT
from infra.teardown_guard import GuardProps, TeardownGuard
from lab_scripts.guard_fn.handler import Policy, Settings
from lab_scripts.prices import guard_prices


class LabGuardStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        names = config.names
        settings = Settings(
            course=config.course_id,
            expires=config.expires,
            stacks=tuple(names.stack(lab) for lab in config.guarded_labs),
            iam_path=names.iam_path,
            idle_cpu_percent=config.dlami.idle_cpu_percent,
            policy=Policy(**dataclasses.asdict(config.guard.policy)),
            idle_gpu_percent=config.dlami.idle_gpu_percent,
            prices=guard_prices(config.sagemaker.instance_type, config.dlami.instance_type),
            student_stack_set=names.stack(STUDENT_ACCOUNT) if config.classroom.per_account else "",
            student_role=names.guard.stop_role if config.classroom.per_account else "",
        )
        guard = TeardownGuard(
            self,
            "Guard",
            props=GuardProps(
                names=names,
                settings=settings,
                every_minutes=config.guard.every_minutes,
                budget_usd=config.budget_usd,
                instructor_email=config.instructor_email,
            ),
        )
        CfnOutput(self, "FunctionName", value=guard.function.function_name,
                  description="guard function (labctl guard run runs its code with this environment)")
        CfnOutput(self, "ReportTopic", value=guard.topic.topic_arn, description="guard reports and budget alerts")
        CfnOutput(self, "DryRun", value=str(config.guard.policy.dry_run).lower(),
                  description="true: the guard only reports (guard.dry_run in the course file)")
