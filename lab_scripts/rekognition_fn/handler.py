"""S3 upload -> Amazon Rekognition -> one JSON result per image. The Lambda function of LabRekognition.

This folder is the Lambda asset, so the module is self-contained: stdlib and boto3 (which the Lambda
runtime provides), no labkit. Clients are injected into `handle`, so tests, the emulator demo and
`lab_scripts.rekognition` run exactly this code.

S3 delivers events at least once, keys URL-encoded, possibly in bursts that throttle Rekognition. So:
results are written with a deterministic key and `If-None-Match: *` (a repeat delivery writes nothing),
throttling is retried with backoff, and images Rekognition can never read get an error result instead
of an endless retry. Anything else raises, so Lambda retries and finally sends the event to the DLQ.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

logger = logging.getLogger("labkit.rekognition")
logger.setLevel(logging.INFO)

UPLOADS_PREFIX = "uploads/"
RESULTS_PREFIX = "results/"
# Rekognition reads JPEG and PNG only; S3 key filters are case-sensitive, so the trigger lists both cases.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Rekognition's documented image quotas: 15 MB when it reads an S3 object, 5 MB when sent as bytes.
MAX_S3_OBJECT_BYTES = 15 * 1024 * 1024
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Feature name in lab.toml -> the Rekognition API it calls (and the IAM action the function needs).
FEATURES = {
    "labels": "DetectLabels",
    "text": "DetectText",
    "moderation": "DetectModerationLabels",
    "faces": "DetectFaces",
}
THROTTLING = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})
# Errors that retrying cannot fix: the student gets an error result rather than silence.
IMAGE_ERRORS = frozenset({
    "InvalidImageFormatException", "ImageTooLargeException", "InvalidS3ObjectException", "InvalidParameterException",
})
MAX_KEY_BYTES = 1024


class SettingsError(ValueError):
    """The function's environment is incomplete or invalid; the message names the variables."""


@dataclass(frozen=True)
class Analysis:
    """Which Rekognition calls run on each image, and their thresholds."""

    features: tuple[str, ...] = ("labels",)
    min_confidence: float = 70.0
    max_labels: int = 10

    def __post_init__(self) -> None:
        unknown = [name for name in self.features if name not in FEATURES]
        if not self.features or unknown:
            raise SettingsError(f"features {list(self.features)!r}: choose from {', '.join(FEATURES)}")
        if not 0 <= self.min_confidence <= 100:
            raise SettingsError(f"min_confidence {self.min_confidence} must be between 0 and 100")
        if not 1 <= self.max_labels <= 1000:
            raise SettingsError(f"max_labels {self.max_labels} must be between 1 and 1000")


@dataclass(frozen=True)
class Settings:
    """The function's whole configuration. The stack renders it with `to_env`, the function reads it back."""

    analysis: Analysis = Analysis()
    uploads_prefix: str = UPLOADS_PREFIX
    results_prefix: str = RESULTS_PREFIX

    ENV = ("LABKIT_UPLOADS_PREFIX", "LABKIT_RESULTS_PREFIX", "LABKIT_FEATURES", "LABKIT_MIN_CONFIDENCE",
           "LABKIT_MAX_LABELS")

    def __post_init__(self) -> None:
        up, res = self.uploads_prefix, self.results_prefix
        if not up.endswith("/") or not res.endswith("/") or up.startswith(res) or res.startswith(up):
            # Results written under the trigger prefix would invoke the function again, forever.
            raise SettingsError(f"prefixes {up!r} and {res!r} must be separate folders ending in '/'")

    def to_env(self) -> dict[str, str]:
        values = (self.uploads_prefix, self.results_prefix, ",".join(self.analysis.features),
                  str(self.analysis.min_confidence), str(self.analysis.max_labels))
        return dict(zip(self.ENV, values))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the function's environment; fail loudly, naming every missing variable, at cold start."""
        env = os.environ if environ is None else environ
        missing = [name for name in cls.ENV if not env.get(name)]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        up, res, features, confidence, labels = (env[name] for name in cls.ENV)
        try:
            analysis = Analysis(tuple(features.split(",")), float(confidence), int(labels))
        except ValueError as exc:
            raise SettingsError(f"invalid environment: {exc}") from None
        return cls(analysis, up, res)


@dataclass(frozen=True)
class Outcome:
    """What happened to one S3 record: written, duplicate, error-result or skipped."""

    key: str
    status: str
    result_key: str = ""
    detail: str = ""


def result_key(settings: Settings, key: str, etag: str) -> str:
    """Deterministic result key: the same object (key + content ETag) always maps to the same result."""
    etag = etag.strip('"')
    relative = key[len(settings.uploads_prefix):] if key.startswith(settings.uploads_prefix) else key
    candidate = f"{settings.results_prefix}{relative}.{etag}.json"
    if len(candidate.encode()) <= MAX_KEY_BYTES:
        return candidate
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{settings.results_prefix}{digest}.{etag}.json"


def is_image_key(key: str) -> bool:
    return key.lower().endswith(IMAGE_SUFFIXES)


def with_backoff(
    call: Callable[[], dict[str, Any]],
    *,
    attempts: int = 4,
    base: float = 0.5,
    cap: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Retry Rekognition throttling with capped exponential backoff and jitter, on top of botocore's retries.

    A class uploading at once exceeds the per-account TPS quota; waiting is cheaper than failing the image.
    """
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in THROTTLING or attempt == attempts - 1:
                raise
            delay = min(cap, base * 2**attempt) * random.uniform(0.5, 1.0)
            logger.warning("Rekognition throttled (%s); retry %d of %d in %.1f s", code, attempt + 1,
                           attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def _box(detail: dict[str, Any]) -> dict[str, float]:
    return {k.lower(): round(float(v), 4) for k, v in detail.get("BoundingBox", {}).items()}


def analyze(
    rekognition: Any, image: dict[str, Any], analysis: Analysis, *, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Run the configured Rekognition calls on `image` ({'S3Object': ...} or {'Bytes': ...}); plain JSON back."""
    out: dict[str, Any] = {}
    confidence = analysis.min_confidence

    def call(api: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        return with_backoff(lambda: api(Image=image, **kwargs), sleep=sleep)

    for feature in analysis.features:
        if feature == "labels":
            found = call(rekognition.detect_labels, MaxLabels=analysis.max_labels, MinConfidence=confidence)
            out["labels"] = [
                {"name": label["Name"], "confidence": round(label["Confidence"], 1),
                 "parents": [parent["Name"] for parent in label.get("Parents", [])],
                 "instances": len(label.get("Instances", []))}
                for label in found.get("Labels", [])
            ]
        elif feature == "text":
            found = call(rekognition.detect_text, Filters={"WordFilter": {"MinConfidence": confidence}})
            out["text"] = [
                {"text": item["DetectedText"], "confidence": round(item["Confidence"], 1)}
                for item in found.get("TextDetections", []) if item.get("Type") == "LINE"
            ]
        elif feature == "moderation":
            found = call(rekognition.detect_moderation_labels, MinConfidence=confidence)
            out["moderation"] = [
                {"name": label["Name"], "parent": label.get("ParentName", ""),
                 "confidence": round(label["Confidence"], 1)}
                for label in found.get("ModerationLabels", [])
            ]
        elif feature == "faces":
            found = call(rekognition.detect_faces, Attributes=["DEFAULT"])
            out["faces"] = [
                {"confidence": round(face["Confidence"], 1), "box": _box(face)}
                for face in found.get("FaceDetails", []) if face.get("Confidence", 0) >= confidence
            ]
    return out


def _write_once(s3: Any, bucket: str, key: str, document: dict[str, Any]) -> bool:
    """Write the result unless it exists (S3 conditional write); False means a repeat delivery.

    The condition needs only s3:PutObject, so the function never needs to read its own results.
    """
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=2).encode(),
                      ContentType="application/json", IfNoneMatch="*")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "ConditionalRequestConflict"}:
            return False
        raise
    return True


def _process(
    record: dict[str, Any], settings: Settings, s3: Any, rekognition: Any, sleep: Callable[[float], None]
) -> Outcome:
    s3_part = record.get("s3", {})
    bucket = s3_part.get("bucket", {}).get("name", "")
    obj = s3_part.get("object", {})
    # S3 URL-encodes keys in events, with '+' for a space.
    key = unquote_plus(obj.get("key", ""))
    event = record.get("eventName", "")
    if not bucket or not key or not event.startswith("ObjectCreated"):
        return Outcome(key, "skipped", detail=f"not an object-created record ({event or 'no eventName'})")
    if not key.startswith(settings.uploads_prefix):
        return Outcome(key, "skipped", detail=f"outside {settings.uploads_prefix}")
    if not is_image_key(key):
        return Outcome(key, "skipped", detail="not a JPEG or PNG image")
    size, etag = obj.get("size"), obj.get("eTag")
    if size is None or not etag:
        head = s3.head_object(Bucket=bucket, Key=key)
        size, etag = head["ContentLength"], head["ETag"]
    target = result_key(settings, key, str(etag))
    document: dict[str, Any] = {
        "source": {"bucket": bucket, "key": key, "etag": str(etag).strip('"'), "bytes": int(size)},
        "features": list(settings.analysis.features),
        "min_confidence": settings.analysis.min_confidence,
    }
    status = "written"
    if int(size) > MAX_S3_OBJECT_BYTES:
        document["error"] = {"code": "ImageTooLarge",
                             "message": f"{int(size)} bytes; Rekognition reads S3 images up to {MAX_S3_OBJECT_BYTES}"}
    else:
        try:
            document.update(analyze(rekognition, {"S3Object": {"Bucket": bucket, "Name": key}}, settings.analysis,
                                    sleep=sleep))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") not in IMAGE_ERRORS:
                raise
            document["error"] = {"code": error.get("Code"), "message": error.get("Message", "")}
    if "error" in document:
        status = "error-result"
    if not _write_once(s3, bucket, target, document):
        return Outcome(key, "duplicate", target, "result already present; nothing written")
    return Outcome(key, status, target, document.get("error", {}).get("code", ""))


def handle(
    event: dict[str, Any],
    *,
    settings: Settings,
    s3: Any,
    rekognition: Any,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """Process every record of an S3 event; one log line per record says what happened and why."""
    records = event.get("Records")
    if not isinstance(records, list):
        logger.info("ignored an event without S3 records: %s", str(event)[:200])
        return []
    outcomes = []
    for record in records:
        outcome = _process(record, settings, s3, rekognition, sleep)
        logger.info("%s %s%s%s", outcome.status, outcome.key, f" -> {outcome.result_key}" if outcome.result_key
                    else "", f" ({outcome.detail})" if outcome.detail else "")
        outcomes.append(outcome)
    return outcomes


@functools.cache
def _runtime() -> tuple[Settings, Any, Any]:
    """Built once per execution environment (cold start), so a bad environment fails the first invocation."""
    import boto3
    from botocore.config import Config

    # botocore's standard mode retries throttling and 5xx with backoff before with_backoff sees an error.
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=30)
    return Settings.from_env(), boto3.client("s3", config=config), boto3.client("rekognition", config=config)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    settings, s3, rekognition = _runtime()
    outcomes = handle(event, settings=settings, s3=s3, rekognition=rekognition)
    summary: dict[str, int] = {}
    for outcome in outcomes:
        summary[outcome.status] = summary.get(outcome.status, 0) + 1
    return summary
