"""`python -m lab_scripts.rekognition` under moto: tables for good input, one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab_scripts import rekognition, sample_images
from lab_scripts.rekognition_fn.handler import MAX_IMAGE_BYTES, Settings, handle

BUCKET = "ml101-rekognition-123456789012-us-east-1"


@pytest.fixture
def s3(aws: Any) -> Any:
    client = aws("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name in ("cat.png", "cat.jpg"):
        paths[name] = tmp_path / name
        paths[name].write_bytes(sample_images.sample(name))
    return paths


def run(aws: Any, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = rekognition.main(list(argv), clients=aws)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["cat.png", "cat.jpg"])
def test_detect_a_local_image_prints_a_table(aws: Any, capsys: Any, images: dict[str, Path], name: str) -> None:
    code, out, _ = run(aws, capsys, "detect", str(images[name]), "--features", "labels,text")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["feature", "name", "confidence", "detail"]
    assert lines[1].split() == ["labels", "Mobile", "Phone", "99.9", "Phone"]
    assert any(line.startswith("text") for line in lines)


def test_detect_an_s3_object(aws: Any, s3: Any, capsys: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="photos/cat.png", Body=sample_images.png(8, 8))
    code, out, _ = run(aws, capsys, "detect", f"s3://{BUCKET}/photos/cat.png")
    assert code == 0 and "Mobile Phone" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["detect", "missing.png"], "missing.png: No such file or directory"),
        (["detect", "NOTES"], "not a JPEG or PNG image"),
        (["detect", "BIG"], "5.0 MB here"),
        (["detect", "s3://bucket-only"], "is not an S3 object URL"),
        (["detect", f"s3://{BUCKET}/none.png"], "does not exist"),
        (["detect", f"s3://{BUCKET}/doc.pdf"], "not a .jpg/.jpeg/.png object"),
        (["detect", "pic.png", "--features", "labels,colour"], "choose from labels, text, moderation, faces"),
        (["upload-and-wait", "NOTES", "--bucket", BUCKET, "--name", "notes.txt"], "keys trigger"),
        (["upload-and-wait", "pic.png", "--bucket", "no-such-bucket"], "NoSuchBucket"),
        (["upload-and-wait", "pic.png", "--bucket", BUCKET, "--timeout", "0"], "no result at s3://"),
        (["sample", "cat.gif"], "sample images are .png, .jpg or .jpeg"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    aws: Any, s3: Any, capsys: Any, tmp_path: Path, args: list[str], message: str, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "NOTES").write_text("lecture notes")
    (tmp_path / "BIG").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES))
    (tmp_path / "pic.png").write_bytes(sample_images.png(8, 8))
    code, out, err = run(aws, capsys, *args)
    assert code == 1 and out == ""
    # Progress lines may come first; the error itself is the one last line.
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [err.splitlines()[-1]] and message in errors[0], err


def test_upload_and_wait_prints_the_functions_result(aws: Any, s3: Any, capsys: Any, images: dict[str, Path]) -> None:
    # The function's result for these exact bytes exists already (results are keyed by content ETag).
    key, etag, size = rekognition.upload(s3, BUCKET, images["cat.png"])
    handle(rekognition.s3_put_event(BUCKET, key, etag, size), settings=Settings(), s3=s3,
           rekognition=aws("rekognition"))
    code, out, err = run(aws, capsys, "upload-and-wait", str(images["cat.png"]), "--bucket", BUCKET)
    assert code == 0 and "Mobile Phone" in out
    assert f"uploaded s3://{BUCKET}/uploads/cat.png" in err


def test_upload_and_wait_reports_an_error_result(aws: Any, s3: Any, capsys: Any, images: dict[str, Path]) -> None:
    key, etag, _ = rekognition.upload(s3, BUCKET, images["cat.jpg"])
    error = {"error": {"code": "InvalidImageFormatException", "message": "bad"}}
    s3.put_object(Bucket=BUCKET, Key=f"results/cat.jpg.{etag}.json", Body=str(error).replace("'", '"').encode())
    code, _, err = run(aws, capsys, "upload-and-wait", str(images["cat.jpg"]), "--bucket", BUCKET)
    assert code == 1 and "uploads/cat.jpg: InvalidImageFormatException: bad" in err


def test_waiting_is_bounded_and_shows_progress(s3: Any) -> None:
    now = [0.0]
    lines: list[str] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] >= 4:  # the function finishes after four seconds
            s3.put_object(Bucket=BUCKET, Key="results/x.json", Body=b'{"labels": []}')

    result = rekognition.wait_for_result(s3, BUCKET, "results/x.json", timeout=10, interval=2, progress=lines.append,
                                         clock=lambda: now[0], sleep=sleep)
    assert result == {"labels": []}
    assert lines == [f"waiting for s3://{BUCKET}/results/x.json: {t} of 10 s" for t in (0, 2)]
    with pytest.raises(rekognition.RekognitionError, match="after 10 s"):
        rekognition.wait_for_result(s3, BUCKET, "results/never.json", timeout=10, interval=3,
                                    clock=lambda: now[0], sleep=sleep)


def test_sample_writes_an_image(tmp_path: Path, capsys: Any, aws: Any) -> None:
    target = tmp_path / "demo.jpg"
    assert run(aws, capsys, "sample", str(target))[0] == 0
    assert target.read_bytes().startswith(b"\xff\xd8\xff")


def test_table_lists_every_feature() -> None:
    table = rekognition.format_table({
        "labels": [{"name": "Cat", "confidence": 97.2, "parents": ["Animal", "Pet"]}],
        "text": [{"text": "EXIT", "confidence": 99.0}],
        "moderation": [{"name": "Smoking", "parent": "Drugs", "confidence": 85.5}],
        "faces": [{"confidence": 99.9, "box": {"left": 0.1, "top": 0.2}}],
    })
    assert [line.split()[0] for line in table.splitlines()] == ["feature", "labels", "text", "moderation", "faces"]
    assert "Animal, Pet" in table and "left=0.10 top=0.20" in table
    assert rekognition.format_table({"labels": []}) == "nothing found above the confidence threshold"
