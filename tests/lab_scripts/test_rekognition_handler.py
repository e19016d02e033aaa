"""The labelling Lambda handler under moto: every delivery S3 can make, and every way Rekognition can fail."""

from __future__ import annotations

import ast
import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lab_scripts import sample_images
from lab_scripts.guard_fn import handler as guard_handler
from lab_scripts.rekognition import s3_put_event
from lab_scripts.rekognition_fn import handler
from lab_scripts.rekognition_fn.handler import Analysis, Settings, SettingsError, handle, result_key
from tests.lab_scripts.conftest import versioned_bucket

BUCKET = "ml101-rekognition-123456789012-us-east-1"
SETTINGS = Settings(Analysis(("labels", "text")))


@pytest.fixture
def s3(aws: Any) -> Any:
    return versioned_bucket(aws, BUCKET)


def put(s3: Any, key: str, body: bytes) -> dict[str, Any]:
    """Upload like a student, and return the event S3 would deliver for it."""
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]
    return s3_put_event(BUCKET, key, etag, len(body))


def read(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())  # type: ignore[no-any-return]


def stubbed_rekognition() -> tuple[Any, Stubber]:
    client = boto3.client("rekognition", region_name="us-east-1")
    return client, Stubber(client)


LABELS = {"Labels": [{"Name": "Cat", "Confidence": 97.23, "Parents": [{"Name": "Animal"}], "Instances": [{}]}]}


def no_sleep(seconds: float) -> None:
    raise AssertionError("nothing here should back off")


@pytest.mark.parametrize("name", ["cat.png", "cat.jpg", "cat.jpeg"])
def test_png_and_jpeg_uploads_get_a_labels_result(aws: Any, s3: Any, name: str) -> None:
    body = sample_images.sample(name)
    event = put(s3, f"uploads/{name}", body)
    outcome, = handle(event, settings=SETTINGS, s3=s3, rekognition=aws("rekognition"))
    assert outcome.status == "written"
    etag = event["Records"][0]["s3"]["object"]["eTag"]
    assert outcome.result_key == f"results/{name}.{etag}.json" == result_key(SETTINGS, f"uploads/{name}", etag)
    result = read(s3, outcome.result_key)
    assert result["source"] == {"bucket": BUCKET, "key": f"uploads/{name}", "etag": etag, "bytes": len(body)}
    assert result["labels"][0]["name"] == "Mobile Phone"  # moto's canned label
    assert result["text"] and "error" not in result


def test_url_encoded_keys_are_decoded(aws: Any, s3: Any) -> None:
    key = "uploads/week 1/cat+dog (1) ü.JPG"
    event = put(s3, key, sample_images.jpeg(16, 16))
    assert event["Records"][0]["s3"]["object"]["key"] == "uploads%2Fweek+1%2Fcat%2Bdog+%281%29+%C3%BC.JPG"
    outcome, = handle(event, settings=SETTINGS, s3=s3, rekognition=aws("rekognition"))
    assert (outcome.key, outcome.status) == (key, "written")
    assert read(s3, outcome.result_key)["source"]["key"] == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [("uploads/notes.txt", "not a JPEG or PNG image"), ("uploads/scan.pdf", "not a JPEG or PNG image"),
     ("results/cat.png.abc.json", "outside uploads/"), ("cat.png", "outside uploads/")],
)
def test_other_keys_are_skipped_with_a_log_line(
    aws: Any, s3: Any, key: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    event = put(s3, key, b"not an image")
    rekognition, stub = stubbed_rekognition()
    with stub, caplog.at_level(logging.INFO, logger="labkit.rekognition"):
        outcome, = handle(event, settings=SETTINGS, s3=s3, rekognition=rekognition)
    assert (outcome.status, outcome.detail) == ("skipped", reason)
    assert f"skipped {key} ({reason})" in caplog.text
    written = [obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/").get("Contents", [])]
    assert written in ([], [key])  # only the upload itself, when it was put under results/


def test_events_without_s3_records_are_ignored(s3: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="labkit.rekognition"):
        assert handle({"Event": "s3:TestEvent"}, settings=SETTINGS, s3=s3, rekognition=None) == []
    assert "without S3 records" in caplog.text
    removed = {"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": BUCKET},
                                                                      "object": {"key": "uploads/a.png"}}}]}
    assert handle(removed, settings=SETTINGS, s3=s3, rekognition=None)[0].status == "skipped"


def test_oversize_image_gets_an_error_result_without_a_rekognition_call(s3: Any) -> None:
    event = put(s3, "uploads/huge.png", sample_images.png(8, 8))
    event["Records"][0]["s3"]["object"]["size"] = handler.MAX_S3_OBJECT_BYTES + 1
    rekognition, stub = stubbed_rekognition()
    with stub:  # no responses queued: any Rekognition call would fail the test
        outcome, = handle(event, settings=SETTINGS, s3=s3, rekognition=rekognition)
    assert outcome.status == "error-result"
    assert read(s3, outcome.result_key)["error"]["code"] == "ImageTooLarge"


def test_missing_size_and_etag_are_read_from_the_object(aws: Any, s3: Any) -> None:
    event = put(s3, "uploads/a.png", sample_images.png(8, 8))
    obj = event["Records"][0]["s3"]["object"]
    etag = obj.pop("eTag")
    obj.pop("size")
    outcome, = handle(event, settings=SETTINGS, s3=s3, rekognition=aws("rekognition"))
    assert outcome.result_key.endswith(f".{etag}.json")


def test_throttling_is_retried_with_growing_backoff(s3: Any) -> None:
    event = put(s3, "uploads/a.png", sample_images.png(8, 8))
    rekognition, stub = stubbed_rekognition()
    stub.add_client_error("detect_labels", "ThrottlingException", http_status_code=400)
    stub.add_client_error("detect_labels", "ProvisionedThroughputExceededException", http_status_code=400)
    stub.add_response("detect_labels", LABELS)
    delays: list[float] = []
    with stub:
        outcome, = handle(event, settings=Settings(), s3=s3, rekognition=rekognition, sleep=delays.append)
    assert outcome.status == "written"
    assert read(s3, outcome.result_key)["labels"] == [
        {"name": "Cat", "confidence": 97.2, "parents": ["Animal"], "instances": 1}]
    assert len(delays) == 2 and 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0


def test_throttling_that_persists_fails_the_invocation(s3: Any) -> None:
    """Raising lets Lambda retry the event later, and finally park it in the dead-letter queue."""
    event = put(s3, "uploads/a.png", sample_images.png(8, 8))
    rekognition, stub = stubbed_rekognition()
    for _ in range(4):
        stub.add_client_error("detect_labels", "ThrottlingException", http_status_code=400)
    delays: list[float] = []
    with stub, pytest.raises(handler.ClientError, match="ThrottlingException"):
        handle(event, settings=Settings(), s3=s3, rekognition=rekognition, sleep=delays.append)
    assert len(delays) == 3
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/")


def test_unreadable_image_gets_an_error_result(s3: Any) -> None:
    event = put(s3, "uploads/broken.jpg", b"\xff\xd8\xff truncated")
    rekognition, stub = stubbed_rekognition()
    stub.add_client_error("detect_labels", "InvalidImageFormatException", "Request has invalid image format")
    with stub:
        outcome, = handle(event, settings=Settings(), s3=s3, rekognition=rekognition, sleep=no_sleep)
    assert outcome.status == "error-result" and outcome.detail == "InvalidImageFormatException"
    assert read(s3, outcome.result_key)["error"]["message"] == "Request has invalid image format"


def test_unexpected_errors_are_raised_not_hidden(s3: Any) -> None:
    event = put(s3, "uploads/a.png", sample_images.png(8, 8))
    rekognition, stub = stubbed_rekognition()
    stub.add_client_error("detect_labels", "AccessDeniedException", http_status_code=403)
    with stub, pytest.raises(handler.ClientError, match="AccessDenied"):
        handle(event, settings=Settings(), s3=s3, rekognition=rekognition, sleep=no_sleep)


def test_duplicate_delivery_writes_the_result_once(aws: Any, s3: Any) -> None:
    event = put(s3, "uploads/a.png", sample_images.png(8, 8))
    first, = handle(event, settings=SETTINGS, s3=s3, rekognition=aws("rekognition"))
    second, = handle(event, settings=SETTINGS, s3=s3, rekognition=aws("rekognition"))
    assert (first.status, second.status) == ("written", "duplicate")
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="results/")["Versions"]
    assert len(versions) == 1


def test_a_new_upload_under_the_same_key_gets_its_own_result(aws: Any, s3: Any) -> None:
    one = handle(put(s3, "uploads/a.png", sample_images.png(8, 8)), settings=SETTINGS, s3=s3,
                 rekognition=aws("rekognition"))[0]
    two = handle(put(s3, "uploads/a.png", sample_images.png(9, 9)), settings=SETTINGS, s3=s3,
                 rekognition=aws("rekognition"))[0]
    assert one.result_key != two.result_key and two.status == "written"


def test_every_feature_is_summarised() -> None:
    class Fake:
        def detect_labels(self, **_: Any) -> dict[str, Any]:
            return LABELS

        def detect_text(self, **kwargs: Any) -> dict[str, Any]:
            assert kwargs["Filters"] == {"WordFilter": {"MinConfidence": 80.0}}
            return {"TextDetections": [{"DetectedText": "EXIT", "Type": "LINE", "Confidence": 99.0},
                                       {"DetectedText": "EXIT", "Type": "WORD", "Confidence": 99.0}]}

        def detect_moderation_labels(self, **_: Any) -> dict[str, Any]:
            return {"ModerationLabels": [{"Name": "Smoking", "ParentName": "Drugs", "Confidence": 85.5}]}

        def detect_faces(self, **_: Any) -> dict[str, Any]:
            box = {"Width": 0.5, "Height": 0.25, "Left": 0.1, "Top": 0.2}
            return {"FaceDetails": [{"Confidence": 99.9, "BoundingBox": box}, {"Confidence": 10.0}]}

    result = handler.analyze(Fake(), {"Bytes": b""}, Analysis(tuple(handler.FEATURES), 80.0, 5))
    assert result["text"] == [{"text": "EXIT", "confidence": 99.0}]
    assert result["moderation"] == [{"name": "Smoking", "parent": "Drugs", "confidence": 85.5}]
    assert result["faces"] == [{"confidence": 99.9, "box": {"width": 0.5, "height": 0.25, "left": 0.1, "top": 0.2}}]


def test_result_keys_stay_within_s3s_limit() -> None:
    key = "uploads/" + "d/" * 600 + "x.png"
    assert len(result_key(Settings(), key, '"abc"').encode()) <= handler.MAX_KEY_BYTES
    assert result_key(Settings(), "uploads/a.png", '"abc"') == "results/a.png.abc.json"


def test_settings_round_trip_through_the_environment() -> None:
    settings = Settings(Analysis(("labels", "faces"), 55.5, 3))
    assert Settings.from_env(settings.to_env()) == settings


def test_missing_environment_fails_loudly_naming_every_variable() -> None:
    env = Settings().to_env()
    del env["LABKIT_FEATURES"], env["LABKIT_RESULTS_PREFIX"]
    with pytest.raises(SettingsError, match="missing environment variables: LABKIT_RESULTS_PREFIX, LABKIT_FEATURES"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("LABKIT_FEATURES", "labels,colour", "choose from"), ("LABKIT_MIN_CONFIDENCE", "high", "invalid environment"),
     ("LABKIT_MAX_LABELS", "0", "max_labels 0"), ("LABKIT_RESULTS_PREFIX", "uploads/results/", "separate folders"),
     ("LABKIT_UPLOADS_PREFIX", "uploads", "separate folders")],
)
def test_invalid_environment_is_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**Settings().to_env(), name: value})


def test_lambda_entry_point_reads_its_environment_and_uses_standard_retries(
    aws: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler._runtime.cache_clear()
    for name, value in SETTINGS.to_env().items():
        monkeypatch.setenv(name, value)
    event = put(s3, "uploads/a.png", sample_images.png(8, 8))
    try:
        assert handler.lambda_handler(event, None) == {"written": 1}
        _, s3_client, rekognition = handler._runtime()
        assert rekognition.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
        assert s3_client.meta.config.retries["mode"] == "standard"
    finally:
        handler._runtime.cache_clear()


@pytest.mark.parametrize("asset", [handler.__file__, guard_handler.__file__], ids=["rekognition_fn", "guard_fn"])
def test_the_lambda_asset_needs_only_the_stdlib_and_boto3(asset: str) -> None:
    """The folder is deployed on its own: a labkit or CDK import, or a relative one, would fail in Lambda."""
    for path in Path(asset).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module, f"{path.name}: relative import"
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top in {"boto3", "botocore"}, f"{path.name}: {module}"
