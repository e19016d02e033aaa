"""The class roster: a spreadsheet export read and checked before anything is deployed.

Rosters come from registrars and spreadsheets, so the reader takes what those tools write (a BOM, CRLF,
`;` where the decimal point is a comma, tabs, extra columns) and refuses, in one line naming the row and
the column, anything that would otherwise fail half-way through a deploy or give two students one identity.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from course.naming import EMAIL, STUDENT_ID, AwsNameError, CourseNames

# Header spellings seen in real exports, after lowercasing, `_` -> space and whitespace collapsing.
# Columns not listed here are ignored: spreadsheets add their own (notes, group, grade, ...).
ALIASES: dict[str, str] = {
    alias: column
    for column, aliases in {
        "name": ("name", "full name", "student name"),
        "email": ("email", "e-mail", "mail", "email address", "e-mail address"),
        "id": ("id", "student id"),
        "account": ("account", "account id", "aws account", "aws account id"),
    }.items()
    for alias in aliases
}
REQUIRED = ("name", "email")
MAX_NAME = 128
MAX_EMAIL = 254  # RFC 5321's limit on a forward path; SNS and Budgets refuse longer addresses.
ACCOUNT = re.compile(r"[0-9]{12}")
# Letters that NFKD leaves whole, so stripping accents alone would drop them from an id ("Łukasz" -> "ukasz").
_LATIN = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i"})


class RosterError(ValueError):
    """Invalid roster; str() is one line: "<source>: row <n>: <field>: <message>" or "<source>: <message>"."""


@dataclass(frozen=True)
class Student:
    id: str  # used in every AWS name of the student; matches naming.STUDENT_ID
    name: str  # display name as written, whitespace collapsed
    email: str
    row: int  # line number in the file (the header is row 1), so later errors can point back to it
    account: str | None = None  # the student's own AWS account, in account-per-student mode


def student_id_from_name(name: str) -> str | None:
    """The id a student gets when the roster has none: "José  Núñez" -> "jose-nunez"; None if nothing maps."""
    letters = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in letters if not unicodedata.combining(c)).translate(_LATIN)
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:24].rstrip("-")
    return slug or None


def read_roster(path: str | Path, *, names: CourseNames | None = None,
                max_students: int | None = None) -> tuple[Student, ...]:
    """Read and check a roster file; errors name the file as given."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RosterError(f"{path}: cannot read the roster ({exc.strerror or exc})") from None
    return parse_roster(data, source=str(path), names=names, max_students=max_students)


def parse_roster(text: str | bytes, *, source: str = "roster", names: CourseNames | None = None,
                 max_students: int | None = None) -> tuple[Student, ...]:
    """Every student of a roster, or RosterError for the first problem: nothing half-checked is returned."""
    text = _decode(text, source)
    delimiter = _delimiter(text)
    records = _records(text, delimiter, source)
    header_row, header = next(records, (0, []))
    if not header:
        raise RosterError(f"{source}: no students: the file is empty")
    columns = _columns(header, header_row, source)
    students: list[Student] = []
    seen: dict[str, dict[str, int]] = {"id": {}, "name": {}, "email": {}, "account": {}}
    for row, cells in records:
        fail = functools.partial(_fail, source, row)
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
            raise fail("columns", f"{len(cells)} cells but the header has {len(header)}; "
                                  f"quote any value that contains '{delimiter}'")
        values = {column: cells[index] if index < len(cells) else "" for column, index in columns.items()}
        student, derived = _student(row, values, fail)
        for field, value, key in (("id", student.id, student.id), ("name", student.name, _same_name(student.name)),
                                  ("email", student.email, student.email.lower()),
                                  ("account", student.account, student.account)):
            if value is None or key is None:
                continue
            if key in seen[field]:
                hint = " (derived from the name: add an id column to tell them apart)"
                raise fail(field, f"{_show(value)} is also row {seen[field][key]}"
                                  f"{hint if field == 'id' and derived else ''}")
            seen[field][key] = row
        if names is not None:
            try:
                names.student(student.id).validate()
            except AwsNameError as exc:
                raise fail("id", f"{exc} (shorten the course or student id)") from None
            if names.student(student.id).bucket == names.rekognition.bucket:
                raise fail("id", f"{_show(student.id)} is reserved: LabRekognition's upload bucket uses it")
        students.append(student)
        if max_students is not None and len(students) > max_students:
            raise fail("id", f"{_show(student.id)} is student {len(students)}, over the limit of {max_students} "
                             "for one account; use account-per-student mode ([classroom] mode)")
    if not students:
        raise RosterError(f"{source}: no students below the header (row {header_row})")
    return tuple(students)


def _student(row: int, cells: dict[str, str], fail: Callable[[str, str], RosterError]) -> tuple[Student, bool]:
    """One row's student on its own, and whether its id was derived from the name (duplicates are checked later)."""
    for column, value in cells.items():
        if "\n" in value or "\r" in value:
            raise fail(column, f"{_show(value)} spans several lines; is a quote (\") missing its pair?")
    name = " ".join(cells["name"].split())
    if not name:
        raise fail("name", "is empty")
    if len(name) > MAX_NAME:
        raise fail("name", f"{_show(name)} is {len(name)} characters; at most {MAX_NAME}")
    student_id = cells.get("id", "").strip()
    if student_id and not STUDENT_ID.match(student_id):
        raise fail("id", f"{_show(student_id)} must be 1-24 of a-z 0-9 -, starting and ending alphanumeric")
    derived = student_id_from_name(name) if not student_id else None
    if not student_id and derived is None:
        raise fail("name", f"{_show(name)} has no letters a-z or digits to make a student id; add an id column")
    email = cells["email"].strip()
    if not email:
        raise fail("email", "is empty")
    if len(email) > MAX_EMAIL:
        raise fail("email", f"{_show(email)} is {len(email)} characters; at most {MAX_EMAIL}")
    if not EMAIL.match(email):
        raise fail("email", f"{_show(email)} is not an email address (name@domain.tld)")
    account = cells.get("account", "").strip()
    if account and not ACCOUNT.fullmatch(account):
        raise fail("account", f"{_show(account)} must be a 12-digit AWS account id "
                              "(spreadsheets drop leading zeros: format the column as text)")
    return Student(student_id or derived or "", name, email, row, account or None), derived is not None


def _fail(source: str, row: int, field: str, message: str) -> RosterError:
    return RosterError(f"{source}: row {row}: {field}: {message}")


def _decode(data: str | bytes, source: str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RosterError(f"{source}: is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
                          "save it as 'CSV UTF-8' from the spreadsheet") from None


def _delimiter(text: str) -> str:
    """The separator the header line uses most: `;` where Excel's locale uses a decimal comma, tab for TSV."""
    header = next((line for line in text.splitlines() if line.strip(" ,;\t")), "")
    return max(",;\t", key=header.count)  # a tie (no separator at all) keeps ','


def _records(text: str, delimiter: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of every record with a non-empty cell."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise RosterError(f"{source}: row {start}: csv: {exc}") from None


def _columns(header: list[str], row: int, source: str) -> dict[str, int]:
    """Position of each known column; the header is matched loosely because people type it."""
    found: dict[str, int] = {}
    for index, title in enumerate(header):
        column = ALIASES.get(" ".join(title.replace("_", " ").lower().split()))
        if column is None:
            continue
        if column in found:
            raise RosterError(f"{source}: row {row}: {column}: columns {found[column] + 1} and {index + 1} are both "
                              f"{column} ({_show(header[found[column]].strip())}, {_show(title.strip())})")
        found[column] = index
    for column in REQUIRED:
        if column not in found:
            titles = [_show(title.strip()) for title in header if title.strip()]
            hint = "; separate columns with , ; or a tab" if len(titles) == 1 else ""
            raise RosterError(f"{source}: row {row}: {column}: no {column} column in the header "
                              f"(found: {', '.join(titles)}){hint}")
    return found


def _same_name(name: str) -> str:
    """The form two spellings of one person share: "Alice  MARTIN" and "alice martin" are the same student."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _show(value: str) -> str:
    """A quoted value that keeps the message on one line and short, whatever a cell holds."""
    return repr(value if len(value) <= 60 else value[:57] + "...")
