"""The class roster: a spreadsheet export read and checked before anything is deployed.

Rosters come from registrars and spreadsheets, so the reader takes what those tools write (a BOM, CRLF,
`;` where the decimal point is a comma, tabs, extra columns) and refuses, in one line naming the row and
the column, anything that would otherwise fail half-way through a deploy or give two students one identity.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from course.naming import EMAIL, STUDENT_ID, AwsNameError, CourseNames, containers_user, session_collisions

# Header spellings seen in real exports, after lowercasing, `_` -> space and whitespace collapsing.
# Columns not listed here are ignored: spreadsheets add their own (notes, group, grade, ...).
ALIASES: dict[str, str] = {
    alias: column
    for column, aliases in {
        "name": ("name", "full name", "student name"),
        # Registrars often export the name split; either order, joined as "<first> <last>".
        "first name": ("first name", "first names", "given name", "given names", "forename", "first"),
        "last name": ("last name", "surname", "family name", "last"),
        "email": ("email", "e-mail", "mail", "email address", "e-mail address"),
        "id": ("id", "student id", "student number"),
        "account": ("account", "account id", "aws account", "aws account id"),
    }.items()
    for alias in aliases
}
REQUIRED = ("name", "email")
SPLIT_NAME = ("first name", "last name")
# A file with many problems is shown whole, up to this many lines; the rest is counted.
MAX_PROBLEMS = 20
MAX_NAME = 128
MAX_EMAIL = 254  # RFC 5321's limit on a forward path; SNS and Budgets refuse longer addresses.
ACCOUNT = re.compile(r"[0-9]{12}")
# Letters that NFKD leaves whole, so stripping accents alone would drop them from an id ("Łukasz" -> "ukasz").
_LATIN = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i"})


class RosterError(ValueError):
    """Invalid roster. Each problem is one line, "<source>: row <n>: <field>: <message>" or "<source>: <message>";
    str() is the problems one per line (a single problem: exactly that line), at most MAX_PROBLEMS of them and
    then "... and N more", so one run shows what to fix in the whole file."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        shown = list(self.problems[:MAX_PROBLEMS])
        if len(self.problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS} more")
        super().__init__("\n".join(shown))


class UnknownStudent(LookupError):
    """A student named on the command line is not in the course, or more than one matches; str() is one line."""

    def __str__(self) -> str:
        return str(self.args[0])


class HasStudents(Protocol):
    """What find_student needs of a course (course.config.LabConfig has both)."""

    @property
    def students(self) -> tuple[str, ...]: ...

    @property
    def roster(self) -> tuple[Student, ...]: ...


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


def normalise_id(text: str) -> str:
    """The form ids are compared and used in: registrars write `S2024001` or ` s2024001 `, AWS names need lower case."""
    return unicodedata.normalize("NFKC", text).strip().lower()


def parse_roster(text: str | bytes, *, source: str = "roster", names: CourseNames | None = None,
                 max_students: int | None = None) -> tuple[Student, ...]:
    """Every student of a roster, or RosterError with every problem of the file: nothing half-checked is returned.
    A file that cannot be read as a table (encoding, header, CSV quoting) stops at that one problem."""
    text = _decode(text, source)
    delimiter = _delimiter(text)
    records = _records(text, delimiter, source)
    header_row, header = next(records, (0, []))
    if not header:
        raise RosterError(f"{source}: no students: the file is empty")
    columns = _columns(header, header_row, source)
    problems: list[tuple[int, str]] = []
    students: list[Student] = []
    seen: dict[str, dict[str, int]] = {"id": {}, "name": {}, "email": {}, "account": {}}
    over_limit, bad_rows = False, 0
    for row, cells in records:
        row_problems: list[str] = []
        student_id = ""
        fail = functools.partial(_problem, source, row, row_problems)
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
            fail("columns", f"{len(cells)} cells but the header has {len(header)}; "
                            f"quote any value that contains '{delimiter}'")
        else:
            values = {column: cells[index] if index < len(cells) else "" for column, index in columns.items()}
            student, derived = _student(values, fail)
            student_id = student.id
            for field, value, key in (("id", student.id, student.id),
                                      ("name", student.name, _same_name(student.name)),
                                      ("email", student.email, student.email.lower()),
                                      ("account", student.account, student.account)):
                if not value or not key:
                    continue
                if key in seen[field]:
                    if field == "name" and derived and seen["id"].get(student.id) == seen["name"][key]:
                        continue  # the id derived from this name is already reported as the same
                    hint = " (derived from the name: add an id column to tell them apart)"
                    fail(field, f"{_show(value)} is also row {seen[field][key]}"
                                f"{hint if field == 'id' and derived else ''}")
                else:
                    seen[field][key] = row
            if names is not None and student.id:
                try:
                    names.student(student.id).validate()
                except AwsNameError as exc:
                    fail("id", f"{exc} (shorten the course or student id)")
                if names.student(student.id).bucket == names.rekognition.bucket:
                    fail("id", f"{_show(student.id)} is reserved: LabRekognition's upload bucket uses it")
            if not row_problems:
                students.append(dataclasses.replace(student, row=row))
        problems += [(row, problem) for problem in row_problems]
        bad_rows += bool(row_problems)
        counted = len(students) + bad_rows
        if max_students is not None and counted > max_students and not over_limit:
            over_limit = True
            who = f"{_show(student_id)} is student {counted}" if student_id else f"student {counted} is"
            problems.append((row, _line(source, row, "id", f"{who}, over the limit of {max_students} for one "
                                        "account; use account-per-student mode ([classroom] mode)")))
    rows = {student.id: student.row for student in students}
    course = names.course if names is not None else "course"
    for first, second in session_collisions(rows, course):
        problems.append((rows[second], _line(
            source, rows[second], "id",
            f"{_show(second)} and row {rows[first]}'s {_show(first)} give IAM users "
            f"{containers_user(course, second)} and {containers_user(course, first)}: Session Manager names "
            f"sessions '<user>-<id>', so their sessions could be mistaken; choose another id for one of them")))
    if problems:
        raise RosterError([problem for _, problem in sorted(problems, key=lambda item: item[0])])
    if not students:
        raise RosterError(f"{source}: no students below the header (row {header_row})")
    return tuple(students)


def find_student(roster_or_config: Sequence[Student] | HasStudents, text: str) -> str:
    """The id of the student `text` names: an id (any case), an e-mail address (any case) or a name that
    only one student has (any case and accents; all of its words, in any order, e.g. "martin" or "Alice Martin").
    UnknownStudent (one line) when none or several match."""
    if isinstance(roster_or_config, Sequence):
        rows, ids = tuple(roster_or_config), tuple(student.id for student in roster_or_config)
    else:
        rows, ids = tuple(roster_or_config.roster), tuple(roster_or_config.students)
    wanted = normalise_id(text)
    if wanted in ids:
        return wanted
    if "@" in text:
        found = [student for student in rows if student.email.lower() == text.strip().lower()]
    else:
        key = _name_key(text)
        found = [student for student in rows if _name_key(student.name) == key]
        if not found and key:
            words = set(key.split())
            found = [student for student in rows if words <= set(_name_key(student.name).split())]
    if len(found) == 1:
        return found[0].id
    if found:
        listed = ", ".join(f"{student.id} ({student.name}, row {student.row})" for student in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        raise UnknownStudent(f"{_show(text)} matches {len(found)} students: {listed}{more}; give the id or e-mail")
    what = "an id, an e-mail address or a name from the roster" if rows else "a student id"
    sample = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    raise UnknownStudent(f"no student {_show(text)} in the course (give {what}; students: {sample})")


def _student(cells: dict[str, str], fail: Callable[[str, str], None]) -> tuple[Student, bool]:
    """One row's student on its own (row 0: the caller sets it), and whether its id was derived from the name.
    Every problem of the row is reported through `fail`; a field with a problem is left empty in the result."""
    spans = [column for column, value in cells.items() if "\n" in value or "\r" in value]
    for column in spans:
        fail(column, f"{_show(cells[column])} spans several lines; is a quote (\") missing its pair?")
    if spans:
        return Student("", "", "", 0), False
    if "name" in cells:
        name = " ".join(cells["name"].split())
    else:
        name = " ".join(f"{cells.get('first name', '')} {cells.get('last name', '')}".split())
    if not name:
        fail("name", "is empty")
    elif len(name) > MAX_NAME:
        fail("name", f"{_show(name)} is {len(name)} characters; at most {MAX_NAME}")
        name = ""
    student_id = normalise_id(cells.get("id", ""))
    if student_id and not STUDENT_ID.match(student_id):
        fail("id", f"{_show(cells['id'].strip())} must be 1-24 of a-z 0-9 -, starting and ending alphanumeric")
        student_id = ""
    derived = student_id_from_name(name) if not cells.get("id", "").strip() and name else None
    if not cells.get("id", "").strip() and name and derived is None:
        fail("name", f"{_show(name)} has no letters a-z or digits to make a student id; add an id column")
    email = cells["email"].strip()
    if not email:
        fail("email", "is empty")
    elif len(email) > MAX_EMAIL:
        fail("email", f"{_show(email)} is {len(email)} characters; at most {MAX_EMAIL}")
        email = ""
    elif not EMAIL.match(email):
        fail("email", f"{_show(email)} is not an email address (name@domain.tld)")
        email = ""
    account = cells.get("account", "").strip()
    if account and not ACCOUNT.fullmatch(account):
        fail("account", f"{_show(account)} must be a 12-digit AWS account id "
                        "(spreadsheets drop leading zeros: format the column as text)")
        account = ""
    return Student(student_id or derived or "", name, email, 0, account or None), derived is not None


def _problem(source: str, row: int, problems: list[str], field: str, message: str) -> None:
    problems.append(_line(source, row, field, message))


def _line(source: str, row: int, field: str, message: str) -> str:
    return f"{source}: row {row}: {field}: {message}"


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
    """Position of each known column; the header is matched loosely because people type it. Every header problem
    is reported at once; a name given whole wins over split name columns."""
    found: dict[str, int] = {}
    problems: list[str] = []
    for index, title in enumerate(header):
        column = ALIASES.get(" ".join(title.replace("_", " ").lower().split()))
        if column is None:
            continue
        if column in found:
            problems.append(_line(source, row, column, f"columns {found[column] + 1} and {index + 1} are both "
                                  f"{column} ({_show(header[found[column]].strip())}, {_show(title.strip())})"))
            continue
        found[column] = index
    if "name" in found or not set(SPLIT_NAME) & set(found):
        for column in SPLIT_NAME:
            found.pop(column, None)
    for column in REQUIRED:
        if column in found or (column == "name" and set(SPLIT_NAME) & set(found)):
            continue
        titles = [_show(title.strip()) for title in header if title.strip()]
        hint = "; separate columns with , ; or a tab" if len(titles) == 1 else ""
        spelled = f"{column} column" if column != "name" else "name column (or first and last name columns)"
        problems.append(_line(source, row, column, f"no {spelled} in the header (found: {', '.join(titles)}){hint}"))
    split = [column for column in SPLIT_NAME if column in found]
    if len(split) == 1:
        missing = next(column for column in SPLIT_NAME if column not in found)
        problems.append(_line(source, row, missing, f"no {missing} column beside the {split[0]} column, and no "
                              "name column"))
    if problems:
        raise RosterError(problems)
    return found


def _name_key(name: str) -> str:
    """How a name typed on the command line is compared: case, accents and spacing do not matter."""
    letters = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name).casefold())
    return " ".join("".join(c for c in letters if not unicodedata.combining(c)).translate(_LATIN).split())


def _same_name(name: str) -> str:
    """The form two spellings of one person share: "Alice  MARTIN" and "alice martin" are the same student."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _show(value: str) -> str:
    """A quoted value that keeps the message on one line and short, whatever a cell holds."""
    return repr(value if len(value) <= 60 else value[:57] + "...")
