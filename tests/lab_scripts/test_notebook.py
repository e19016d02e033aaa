"""The notebook demo script under moto: state changes, idempotent stop, clear errors."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lab_scripts import notebook
from tests.lab_scripts.conftest import create_notebook

FAST = {"delay": 1, "max_attempts": 3}
DESCRIBED = {"NotebookInstanceName": "ml101-alice", "InstanceType": "ml.t3.medium"}


def test_status_of_a_new_notebook(aws: Any, sagemaker: Any) -> None:
    name = create_notebook(aws)
    state = notebook.status(sagemaker, name)
    assert (state.name, state.status, state.instance_type) == (name, "InService", "ml.t3.medium")


def test_stop_then_start(aws: Any, sagemaker: Any) -> None:
    name = create_notebook(aws)
    assert notebook.stop(sagemaker, name, **FAST).status == "Stopped"
    assert notebook.start(sagemaker, name, **FAST).status == "InService"


def test_stop_is_idempotent(aws: Any, sagemaker: Any) -> None:
    name = create_notebook(aws)
    notebook.stop(sagemaker, name, **FAST)
    assert notebook.stop(sagemaker, name, **FAST).status == "Stopped"


def test_start_of_running_notebook_is_a_no_op(aws: Any, sagemaker: Any) -> None:
    name = create_notebook(aws)
    assert notebook.start(sagemaker, name, **FAST).status == "InService"


def test_delete_stops_first(aws: Any, sagemaker: Any) -> None:
    name = create_notebook(aws)
    notebook.delete(sagemaker, name, **FAST)
    assert sagemaker.list_notebook_instances()["NotebookInstances"] == []


def test_missing_notebook_is_a_one_line_error(aws: Any, sagemaker: Any) -> None:
    with pytest.raises(notebook.NotebookError, match="notebook 'ml101-nobody' does not exist"):
        notebook.status(sagemaker, "ml101-nobody")


def test_url_is_requested_for_a_running_notebook() -> None:
    # moto does not implement CreatePresignedNotebookInstanceUrl, so the two calls are stubbed.
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("describe_notebook_instance", DESCRIBED | {"NotebookInstanceStatus": "InService"},
                          {"NotebookInstanceName": "ml101-alice"})
        stub.add_response("create_presigned_notebook_instance_url", {"AuthorizedUrl": "https://example.test/x"},
                          {"NotebookInstanceName": "ml101-alice", "SessionExpirationDurationInSeconds": 1800})
        assert notebook.presigned_url(client, "ml101-alice", session_minutes=30) == "https://example.test/x"


def test_url_needs_a_running_notebook(aws: Any, sagemaker: Any) -> None:
    name = create_notebook(aws)
    notebook.stop(sagemaker, name, **FAST)
    with pytest.raises(notebook.NotebookError, match="start it before opening Jupyter"):
        notebook.presigned_url(sagemaker, name)


def test_command_line(aws: Any, sagemaker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    name = create_notebook(aws)
    assert notebook.main(["stop", name], client=sagemaker) == 0
    assert capsys.readouterr().out.strip() == f"{name}: Stopped (ml.t3.medium)"
    assert notebook.main(["status", "ml101-ghost"], client=sagemaker) == 1
    assert capsys.readouterr().err.strip() == "error: notebook 'ml101-ghost' does not exist"
