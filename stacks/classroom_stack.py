"""LabClassroom: account-per-student mode's class stack, a stack set that gives every account of the class's OU
its own labs (LabStudent).

A stack set deploys a template, not a stack of this app: the student-account template is synthesized here, once,
by an App of its own into `<outdir>/student-account/`, checked by cdk-nag there, and handed to the stack set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import App, CfnOutput, Stack, Stage, Tags, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.class_stacksets import StudentAccountsProps, StudentAccountsStackSet
from course.config import LabConfig
from course.layout import STUDENT_ACCOUNT_DIR
from course.naming import STUDENT_ACCOUNT, TAG_COURSE, TAG_MANAGED_BY
from stacks.student_account_stack import LabStudentAccountStack



class LabClassroomStack(Stack):
    """`nag` and `validation` apply to the student-account App: an App's own settings cannot be read back from it."""

    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, nag: bool = True, validation: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        classroom = config.classroom
        if classroom.organizational_unit is None:
            raise ValueError("LabClassroom needs classroom.organizational_unit (account-per-student mode)")
        self.student_stack, self.student_template = self._student_account(config, nag=nag, validation=validation)
        stack_set_name = config.names.stack(STUDENT_ACCOUNT)
        StudentAccountsStackSet(self, "Students", props=StudentAccountsProps(
            stack_set_name=stack_set_name,
            template_path=str(self.student_template),
            organizational_unit_ids=[classroom.organizational_unit],
            regions=[config.region],
            max_concurrent_percentage=classroom.max_concurrent_percentage,
            failure_tolerance_percentage=classroom.failure_tolerance_percentage,
            description=f"labkit {config.course_id}: a student's own SageMaker notebook and GPU workstation "
                        f"(expires {config.expires})",
        ))
        CfnOutput(self, "StackSetName", value=stack_set_name,
                  description="stack set that deploys LabStudent to every account of the OU")
        CfnOutput(self, "OrganizationalUnit", value=classroom.organizational_unit,
                  description="students' accounts: an account joining this OU gets the labs, one leaving loses them")

    def _student_account(self, config: LabConfig, *, nag: bool,
                         validation: bool) -> tuple[LabStudentAccountStack, Path]:
        """Synthesize the student-account template now: the stack set's asset copies the file when it is built."""
        parent = Stage.of(self)
        assert parent is not None
        # The parent's context (cdk.json's feature flags, the CLI's settings), so both templates follow the same
        # flags; the folder sits inside the parent's output (cdk.out, or a test's temporary folder).
        app = App(outdir=str(Path(parent.outdir) / STUDENT_ACCOUNT_DIR), context=parent.node.get_all_context(),
                  builtin_cloud_formation_validation=validation)
        stack = LabStudentAccountStack(
            app, STUDENT_ACCOUNT, config=config, stack_name=config.names.stack(STUDENT_ACCOUNT),
            description=f"labkit {config.course_id}: this account's SageMaker notebook and GPU workstation "
                        f"(expires {config.expires})",
        )
        Tags.of(app).add(TAG_COURSE, config.course_id)
        Tags.of(app).add(TAG_MANAGED_BY, "labkit")
        if nag:
            Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        assembly = app.synth()
        return stack, Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
