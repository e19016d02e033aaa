"""Roster validation: every bad row is one line naming the row and the column; real exports parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from course.naming import CourseNames
from course.roster import RosterError, Student, parse_roster, read_roster, student_id_from_name
from tests.conftest import ROOT

NAMES = CourseNames("ml101", "123456789012", "us-east-1")
H = "name,email\n"
ALICE = "Alice Martin,alice@example.com\n"
CLASS_OF_81 = H + "".join(f"Student {i},s{i}@example.com\n" for i in range(81))

# (roster, row or None for a file-level problem, field or, for file-level problems, a fragment of the message)
BAD: list[tuple[str | bytes, int | None, str]] = [
    (b"name,email\nJos\xe9 Garc\xeda,jose@example.com\n", None, "not UTF-8"),
    ("", None, "no students"),
    ("\n  \n,,\n", None, "no students"),
    (H, None, "no students"),
    ("name,email\n\n,,\n", None, "no students"),
    ("name,id\nAlice Martin,alice\n", 1, "email"),
    ("email,id\nalice@example.com,alice\n", 1, "name"),
    ("name|email\nAlice Martin|alice@example.com\n", 1, "name"),
    ("name,email,Email\n" + ALICE, 1, "email"),
    ("Full Name,e-mail,name\n" + ALICE, 1, "name"),
    ("name,mail,E-Mail\n" + ALICE, 1, "email"),
    ("id,name,email,Student_ID\n" + ALICE, 1, "id"),
    ("\nname,email\n" + ALICE + "Bob,bob@\n", 4, "email"),
    (H + "Alice Martin,alice@example.com,2nd year\n", 2, "columns"),
    (H + "Martin, Alice,alice@example.com\n", 2, "columns"),
    (H + ",alice@example.com\n", 2, "name"),
    (H + "   ,alice@example.com\n", 2, "name"),
    (H + "A" * 129 + ",alice@example.com\n", 2, "name"),
    (H + ALICE + "李雷,lei@example.com\n", 3, "name"),
    (H + "!!!,bang@example.com\n", 2, "name"),
    (H + '"Alice Martin,alice@example.com\nBob Okafor,bob@example.com\n', 2, "name"),
    ("id,name,email\nAlice,Alice Martin,alice@example.com\n", 2, "id"),
    ("id,name,email\n-bob,Bob Okafor,bob@example.com\n", 2, "id"),
    ("id,name,email\nbob-,Bob Okafor,bob@example.com\n", 2, "id"),
    ("id,name,email\nbob smith,Bob Smith,bob@example.com\n", 2, "id"),
    ("id,name,email\nbob_smith,Bob Smith,bob@example.com\n", 2, "id"),
    ("id,name,email\n" + "b" * 25 + ",Bob Smith,bob@example.com\n", 2, "id"),
    ("id,name,email\nrekognition,Rek Ognition,rek@example.com\n", 2, "id"),
    (H + "Alice Martin,\n", 2, "email"),
    (H + "Alice Martin\n", 2, "email"),
    (H + "Alice Martin,alice\n", 2, "email"),
    (H + "Alice Martin,alice@localhost\n", 2, "email"),
    (H + "Alice Martin,alice martin@example.com\n", 2, "email"),
    (H + "Alice Martin," + "a" * 250 + "@example.com\n", 2, "email"),
    (H + 'Alice Martin,"alice@example.com\nx"\n', 2, "email"),
    ("name,email,account\nAlice Martin,alice@example.com,12345\n", 2, "account"),
    ("name,email,account\nAlice Martin,alice@example.com,1.23457E+11\n", 2, "account"),
    ("name,email,account\nAlice Martin,alice@example.com,1234567890123\n", 2, "account"),
    ("id,name,email\nalice,Alice Martin,alice@example.com\nalice,Alice Smith,asmith@example.com\n", 3, "id"),
    (H + "José Núñez,jose@example.com\nJose Nunez,jnunez@example.com\n", 3, "id"),
    ("id,name,email\njose-nunez,Jose N,jn@example.com\n,José Núñez,jose@example.com\n", 3, "id"),
    ("id,name,email\na1,Alice Martin,a1@example.com\na2,Alice Martin,a2@example.com\n", 3, "name"),
    ("id,name,email\na1,Alice Martin,a1@example.com\na2,  alice   MARTIN ,a2@example.com\n", 3, "name"),
    ("id,name,email\na1,Alice Martin,a1@example.com\na2,Ａｌｉｃｅ Martin,a2@example.com\n", 3, "name"),
    (H + ALICE + "Alice Smith,ALICE@Example.com\n", 3, "email"),
    ("name,email,account\nAlice Martin,alice@example.com,111122223333\n"
     "Bob Okafor,bob@example.com,111122223333\n", 3, "account"),
    ("Name;E-Mail\r\nAlice Martin;alice@example.com\r\n\r\nBob Okafor;bob@\r\n", 4, "email"),
    (b"\xef\xbb\xbfname;email\r\nAlice Martin;alice\r\n", 2, "email"),
    ("name\temail\nAlice Martin\talice@example\n", 2, "email"),
    (CLASS_OF_81, 82, "id"),
]


@pytest.mark.parametrize(("roster", "row", "field"), BAD, ids=[f"{f}-{i}" for i, (_, _, f) in enumerate(BAD)])
def test_bad_roster_is_one_line_naming_the_row_and_field(roster: str | bytes, row: int | None, field: str) -> None:
    with pytest.raises(RosterError) as caught:
        parse_roster(roster, source="roster.csv", names=NAMES, max_students=80)
    message = str(caught.value)
    assert "\n" not in message
    if row is None:
        assert message.startswith("roster.csv: ")
        assert field in message
    else:
        assert message.startswith(f"roster.csv: row {row}: {field}: ")


def test_duplicates_name_the_earlier_row() -> None:
    text = "id,name,email\nalice,Alice Martin,alice@example.com\nbob,Bob Okafor,bob@example.com\n\n" \
           "alice,Alice Smith,asmith@example.com\n"
    with pytest.raises(RosterError, match=r"^roster: row 5: id: 'alice' is also row 2$"):
        parse_roster(text)


def test_name_without_latin_letters_asks_for_an_id_column() -> None:
    with pytest.raises(RosterError, match="row 2: name: '李雷' has no letters a-z or digits to make a student id; "
                                          "add an id column"):
        parse_roster(H + "李雷,lei@example.com\n")


def test_missing_column_lists_the_columns_found() -> None:
    with pytest.raises(RosterError, match=r"row 1: email: .*found: 'Name', 'Student ID', 'Notes'"):
        parse_roster("Name,Student ID,Notes\nAlice Martin,alice,\n")
    with pytest.raises(RosterError, match=r"row 1: name: .*found: 'name\|email'\); separate columns with , ; or"):
        parse_roster("name|email\nAlice Martin|alice@example.com\n")


def test_over_the_limit_names_the_first_row_beyond_it() -> None:
    with pytest.raises(RosterError, match=r"row 82: id: 'student-80' is student 81, over the limit of 80"):
        parse_roster(CLASS_OF_81, max_students=80)
    assert len(parse_roster(CLASS_OF_81, max_students=81)) == 81
    assert len(parse_roster(CLASS_OF_81)) == 81


def test_derived_aws_name_past_the_limit_names_the_row() -> None:
    # The id is valid on its own, but with a long course id and region the bucket passes S3's 63 characters.
    names = CourseNames("deep-learning-2026", "123456789012", "ap-southeast-3")
    text = "id,name,email\nalice,Alice Martin,alice@example.com\nmaximilian-alexander-k,Max K,max@example.com\n"
    with pytest.raises(RosterError, match=r"^r: row 3: id: S3 bucket name .* is 6[4-9] characters; AWS allows 3-63"):
        parse_roster(text, source="r", names=names)
    assert len(parse_roster(text)) == 2


def test_bom_crlf_semicolon_export_parses() -> None:
    data = ("\ufeffName;E-Mail;Student ID;Notes;AWS Account\r\n"
            "José  Núñez;jose@example.com;;first year;\r\n"
            "Bob Okafor ; BOB@example.com ; bob ;; 012345678901\r\n").encode()
    students = parse_roster(data, names=NAMES, max_students=80)
    assert students == (
        Student("jose-nunez", "José Núñez", "jose@example.com", 2),
        Student("bob", "Bob Okafor", "BOB@example.com", 3, account="012345678901"),
    )


def test_header_aliases_are_accepted_and_unknown_columns_ignored() -> None:
    text = " Full Name ,MAIL,student_id,Group,account id,,\nAlice Martin,alice@example.com,al,A,111122223333,,\n"
    assert parse_roster(text) == (Student("al", "Alice Martin", "alice@example.com", 2, "111122223333"),)
    text = "e-mail\tStudent Id\tname\nbob@example.com\tbob\tBob Okafor\n"
    assert parse_roster(text) == (Student("bob", "Bob Okafor", "bob@example.com", 2),)


def test_blank_lines_are_skipped_and_rows_keep_their_line_numbers() -> None:
    text = "\nname,email\n\n" + ALICE + ",\n  ,  \nBob Okafor,bob@example.com\n\n"
    assert [(s.id, s.row) for s in parse_roster(text)] == [("alice-martin", 4), ("bob-okafor", 7)]


def test_short_rows_and_trailing_empty_cells_are_accepted() -> None:
    text = "name,email,id\nAlice Martin,alice@example.com\nBob Okafor,bob@example.com,bob,,\n"
    assert [s.id for s in parse_roster(text)] == ["alice-martin", "bob"]


def test_same_derived_id_is_fine_when_ids_tell_them_apart() -> None:
    text = "id,name,email\n,José Núñez,jose@example.com\njose2,Jose Nunez,jose2@example.com\n"
    assert [s.id for s in parse_roster(text)] == ["jose-nunez", "jose2"]


@pytest.mark.parametrize(("name", "expected"), [
    ("José  Núñez", "jose-nunez"),
    ("Seán O'Brien", "sean-o-brien"),
    ("Anne-Marie   Dupont", "anne-marie-dupont"),
    ("  Zoë Straße  ", "zoe-strasse"),
    ("Łukasz Żółć", "lukasz-zolc"),
    ("Søren Ærø", "soren-aero"),
    ("Ｊｏｈｎ Ｓｍｉｔｈ", "john-smith"),
    ("李雷 (Li Lei)", "li-lei"),
    ("Student 42", "student-42"),
    ("Maximilian Alexander von Hohenberg", "maximilian-alexander-von"),
    ("abcdefghijklmnopqrstuvw xyz", "abcdefghijklmnopqrstuvw"),
    ("李雷", None),
    ("!!!", None),
    ("", None),
])
def test_student_id_from_name(name: str, expected: str | None) -> None:
    derived = student_id_from_name(name)
    assert derived == expected
    if derived is not None:
        assert len(derived) <= 24 and not derived.endswith("-")


def test_read_roster_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "class.csv"
    path.write_bytes(b"\xef\xbb\xbfname,email\r\nChen Wei,chen@example.com\r\n")
    assert read_roster(path) == (Student("chen-wei", "Chen Wei", "chen@example.com", 2),)
    assert read_roster(str(path), names=NAMES, max_students=1)[0].id == "chen-wei"


def test_read_roster_names_the_file_it_cannot_use(tmp_path: Path) -> None:
    latin1 = tmp_path / "export.csv"
    latin1.write_bytes("name,email\nJosé,jose@example.com\n".encode("latin-1"))
    with pytest.raises(RosterError, match=rf"^{latin1}: is not UTF-8 \(byte 0xe9 on line 2\)"):
        read_roster(latin1)
    with pytest.raises(RosterError, match=rf"^{tmp_path / 'missing.csv'}: cannot read the roster"):
        read_roster(tmp_path / "missing.csv")


def test_example_roster_parses() -> None:
    path = ROOT / "examples" / "roster.csv"
    assert b"\r" not in path.read_bytes()
    students = read_roster(path, names=NAMES, max_students=80)
    assert [s.id for s in students] == ["alice", "bob", "chen"]
    assert [s.email for s in students] == ["alice@example.com", "bob@example.com", "chen@example.com"]
