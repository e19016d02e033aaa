"""The course's Rekognition demo: label one image, or upload one to the class bucket and wait for its result.

    python -m lab_scripts.rekognition detect photo.jpg                 # local file, sent as bytes
    python -m lab_scripts.rekognition detect s3://BUCKET/photos/x.png  # S3 object, read by Rekognition
    python -m lab_scripts.rekognition upload-and-wait photo.jpg --bucket BUCKET
    python -m lab_scripts.rekognition sample cat.png                   # a generated test image, no download

`detect` calls Rekognition directly; `upload-and-wait` goes through the LabRekognition pipeline
(S3 trigger -> Lambda -> results/ JSON). Both use the Lambda function's own code, so they label alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from lab_scripts import sample_images
from lab_scripts.rekognition_fn.handler import (
    FEATURES, IMAGE_SUFFIXES, MAX_IMAGE_BYTES, MAX_S3_OBJECT_BYTES, UPLOADS_PREFIX, Analysis, Outcome, Settings,
    SettingsError, analyze, handle, is_image_key, result_key,
)

ClientFactory = Callable[[str], Any]
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


class RekognitionError(RuntimeError):
    """Bad input or a missing result; the message is one line that says what to do."""


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def parse_s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key:
        raise RekognitionError(f"{url!r} is not an S3 object URL (s3://BUCKET/KEY)")
    return bucket, key


def read_image(path: Path, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """A local JPEG or PNG, refused before any AWS call when Rekognition would refuse it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RekognitionError(f"{path}: {exc.strerror or exc}") from None
    if not data.startswith(_MAGIC):
        raise RekognitionError(f"{path}: not a JPEG or PNG image (Rekognition reads only those)")
    if len(data) > limit:
        raise RekognitionError(f"{path}: {_mb(len(data))}; Rekognition accepts at most {_mb(limit)} here")
    return data


def image_for(source: str, clients: ClientFactory) -> dict[str, Any]:
    """Rekognition's Image parameter: bytes for a local file (5 MB), an S3Object for s3:// (15 MB)."""
    if not source.startswith("s3://"):
        return {"Bytes": read_image(Path(source))}
    bucket, key = parse_s3_url(source)
    if not is_image_key(key):
        raise RekognitionError(f"{source}: not a {'/'.join(IMAGE_SUFFIXES)} object")
    try:
        size = clients("s3").head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
            raise RekognitionError(f"{source} does not exist") from None
        raise
    if size > MAX_S3_OBJECT_BYTES:
        raise RekognitionError(f"{source}: {_mb(size)}; Rekognition reads S3 images up to {_mb(MAX_S3_OBJECT_BYTES)}")
    return {"S3Object": {"Bucket": bucket, "Name": key}}


def s3_put_event(bucket: str, key: str, etag: str, size: int) -> dict[str, Any]:
    """The notification S3 delivers for a PUT (keys URL-encoded, '+' for space), for in-process runs and tests."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key), "size": size, "eTag": etag.strip('"')}},
    }]}


def upload_body(path: Path, name: str | None = None) -> tuple[str, bytes]:
    """The key under uploads/ and the bytes of a local image, refused when the function would never see it."""
    key = f"{UPLOADS_PREFIX}{name or path.name}"
    if not is_image_key(key):
        raise RekognitionError(f"{key}: only {'/'.join(IMAGE_SUFFIXES)} keys trigger the labelling function")
    return key, read_image(path, MAX_S3_OBJECT_BYTES)


def upload(s3: Any, bucket: str, path: Path, *, name: str | None = None) -> tuple[str, str, int]:
    """Put a local image under uploads/; returns (key, ETag, size)."""
    key, data = upload_body(path, name)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
    return key, str(etag).strip('"'), len(data)


def wait_for_result(
    s3: Any,
    bucket: str,
    key: str,
    *,
    timeout: float = 120,
    interval: float = 2,
    progress: Callable[[str], None] = lambda line: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll for the result JSON until it exists or `timeout` seconds pass; reports progress each poll."""
    started = clock()
    while True:
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())  # type: ignore[no-any-return]
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in {"NoSuchKey", "404", "AccessDenied"}:
                raise
        waited = clock() - started
        if waited >= timeout:
            raise RekognitionError(
                f"no result at s3://{bucket}/{key} after {timeout:.0f} s (is LabRekognition deployed? its "
                "function's logs say why)"
            )
        progress(f"waiting for s3://{bucket}/{key}: {waited:.0f} of {timeout:.0f} s")
        sleep(min(interval, max(0.0, timeout - waited)))


def run_deployed_handler(
    clients: ClientFactory, function_name: str, event: dict[str, Any], *, features: Collection[str] | None = None
) -> list[Outcome]:
    """Run the handler here, with the deployed function's environment, against the same endpoint.

    For endpoints that store a function but cannot run it (the embedded emulator has no Docker);
    `features` keeps only those of the deployed features that the endpoint implements.
    """
    variables = clients("lambda").get_function_configuration(FunctionName=function_name)["Environment"]["Variables"]
    settings = Settings.from_env(variables)
    if features is not None:
        kept = tuple(name for name in settings.analysis.features if name in features)
        settings = dataclasses.replace(settings, analysis=dataclasses.replace(settings.analysis, features=kept))
    return handle(event, settings=settings, s3=clients("s3"), rekognition=clients("rekognition"))


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(feature, name, confidence, detail) for each finding of a result document."""
    rows = []
    for label in result.get("labels", []):
        rows.append(("labels", label["name"], f"{label['confidence']:.1f}", ", ".join(label.get("parents", []))))
    for line in result.get("text", []):
        rows.append(("text", line["text"], f"{line['confidence']:.1f}", ""))
    for label in result.get("moderation", []):
        rows.append(("moderation", label["name"], f"{label['confidence']:.1f}", label.get("parent", "")))
    for index, face in enumerate(result.get("faces", []), start=1):
        box = face.get("box", {})
        rows.append(("faces", f"face {index}", f"{face['confidence']:.1f}",
                     " ".join(f"{k}={v:.2f}" for k, v in sorted(box.items()))))
    return rows


def format_table(result: dict[str, Any]) -> str:
    rows = [("feature", "name", "confidence", "detail"), *table_rows(result)]
    if len(rows) == 1:
        return "nothing found above the confidence threshold"
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _analysis(args: argparse.Namespace) -> Analysis:
    return Analysis(tuple(name.strip() for name in args.features.split(",")), args.min_confidence, args.max_labels)


def main(argv: list[str] | None = None, clients: ClientFactory | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_scripts.rekognition", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("detect", help="label a local image or an s3:// object and print a table")
    p.add_argument("image", help="local .jpg/.png file, or s3://BUCKET/KEY")
    p.add_argument("--features", default="labels", help=f"comma-separated: {', '.join(FEATURES)} (default: labels)")
    p.add_argument("--min-confidence", type=float, default=70.0)
    p.add_argument("--max-labels", type=int, default=10)
    p = sub.add_parser("upload-and-wait", help="upload to the class bucket and wait for the function's result")
    p.add_argument("image")
    p.add_argument("--bucket", required=True, help="the LabRekognition upload bucket (stack output UploadBucket)")
    p.add_argument("--name", help="object name under uploads/ (default: the file name)")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for the result (default 120)")
    p.add_argument("--interval", type=float, default=2, help="seconds between checks (default 2)")
    p = sub.add_parser("sample", help="write a generated sample image (.png/.jpg) for trying the lab")
    p.add_argument("path")
    args = parser.parse_args(argv)
    clients = clients or boto3.client
    try:
        if args.command == "sample":
            Path(args.path).write_bytes(sample_images.sample(args.path))
            print(f"wrote {args.path}")
            return 0
        # Input is checked before any client exists, so bad input fails the same with or without credentials.
        if args.command == "detect":
            analysis, image = _analysis(args), image_for(args.image, clients)
            result = analyze(clients("rekognition"), image, analysis)
        else:
            key, data = upload_body(Path(args.image), args.name)
            s3 = clients("s3")
            etag = str(s3.put_object(Bucket=args.bucket, Key=key, Body=data)["ETag"]).strip('"')
            print(f"uploaded s3://{args.bucket}/{key}", file=sys.stderr)
            result = wait_for_result(
                s3, args.bucket, result_key(Settings(), key, etag), timeout=args.timeout, interval=args.interval,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
            if "error" in result:
                raise RekognitionError(f"{key}: {result['error']['code']}: {result['error']['message']}")
        print(format_table(result))
        return 0
    except (RekognitionError, SettingsError, ValueError, ClientError, BotoCoreError) as exc:
        # One line, even when an endpoint answers with an HTML error page.
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
