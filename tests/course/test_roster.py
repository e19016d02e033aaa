"""Roster validation: every bad row is one line naming the row and the column; real exports parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from course.naming import CourseNames
from course.roster import (RosterError, Student, UnknownStudent, find_student, parse_roster, read_roster,
                           student_id_from_name)
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
    problems = caught.value.problems
    assert all("\n" not in problem for problem in problems)
    assert str(caught.value) == "\n".join(problems)
    message = problems[0]
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


def test_split_name_columns_in_either_order_are_joined_first_name_first() -> None:
    registrar = "Last name,First name,E-mail,Student ID\nMartin,Alice,alice@example.com,S2024001\n" \
                "Okafor,Bob,bob@example.com, s2024002 \n"
    assert parse_roster(registrar, names=NAMES) == (
        Student("s2024001", "Alice Martin", "alice@example.com", 2),
        Student("s2024002", "Bob Okafor", "bob@example.com", 3))
    for header in ("Given name;Surname;Email", "Surname;Given name;Email", "Family name;Given names;Email"):
        first, last = ("Alice", "Martin") if header.startswith("Given") else ("Martin", "Alice")
        (student,) = parse_roster(f"{header}\n{first};{last};alice@example.com\n")
        assert (student.id, student.name) == ("alice-martin", "Alice Martin"), header


def test_a_whole_name_column_wins_over_split_ones_and_half_a_split_is_refused() -> None:
    (student,) = parse_roster("Name,First name,Email\nAlice Martin,Ally,alice@example.com\n")
    assert student.name == "Alice Martin"
    with pytest.raises(RosterError, match=r"^roster: row 1: last name: no last name column beside the first name"):
        parse_roster("First name,Email\nAlice,alice@example.com\n")
    with pytest.raises(RosterError, match=r"^roster: row 2: name: is empty$"):
        parse_roster("First name,Last name,Email\n ,  ,alice@example.com\n")


def test_upper_case_and_padded_registrar_ids_are_normalised_before_checking() -> None:
    text = "id,name,email\nS2024001,Alice Martin,alice@example.com\n  Ｓ2024002 ,Bob Okafor,bob@example.com\n"
    assert [s.id for s in parse_roster(text, names=NAMES)] == ["s2024001", "s2024002"]
    # The same id in two spellings is one id twice.
    with pytest.raises(RosterError, match=r"^roster: row 3: id: 's2024001' is also row 2$"):
        parse_roster("id,name,email\nS2024001,Alice Martin,a@example.com\ns2024001 ,Bob Okafor,b@example.com\n")


def test_every_problem_of_the_file_is_reported_at_once_in_row_order() -> None:
    text = ("id,name,email,account\n"
            "alice,Alice Martin,alice@example.com,\n"
            "bob_1,Bob Okafor,bob@example.com,\n"          # id charset
            "chen,,chen@example.com,\n"                     # empty name
            "dana,Dana Lee,dana@,\n"                        # e-mail
            "alice,Alice Smith,asmith@example.com,\n"       # duplicate id
            "erin,Erin Roe,erin@example.com,12345\n")       # account
    with pytest.raises(RosterError) as caught:
        parse_roster(text, source="class.csv", names=NAMES)
    assert [problem.split(": ")[1:3] for problem in caught.value.problems] == [
        ["row 3", "id"], ["row 4", "name"], ["row 5", "email"], ["row 6", "id"], ["row 7", "account"]]
    assert str(caught.value).count("\n") == 4
    assert caught.value.problems[3] == "class.csv: row 6: id: 'alice' is also row 2"


def test_more_than_twenty_problems_are_capped_with_a_count() -> None:
    text = H + "".join(f"Student {i},not-an-address-{i}\n" for i in range(25))
    with pytest.raises(RosterError) as caught:
        parse_roster(text)
    lines = str(caught.value).splitlines()
    assert len(caught.value.problems) == 25 and len(lines) == 21
    assert lines[0].startswith("roster: row 2: email: ") and lines[-1] == "... and 5 more"


def test_header_problems_are_reported_together() -> None:
    with pytest.raises(RosterError) as caught:
        parse_roster("id,Student ID,Notes\nalice,alice,\n")
    assert [p.split(": ")[2] for p in caught.value.problems] == ["id", "name", "email"]


def test_ids_whose_iam_users_share_a_session_prefix_are_refused_naming_both_rows() -> None:
    """Session Manager session ids are '<user>-<random>': user 'ml101-alice-dlc' would match the sessions of
    'ml101-alice-dlc-2-dlc' if both existed."""
    text = "id,name,email\nalice,Alice Martin,alice@example.com\nbob,Bob Okafor,bob@example.com\n" \
           "alice-dlc-2,Alice Two,a2@example.com\n"
    with pytest.raises(RosterError) as caught:
        parse_roster(text, names=NAMES)
    (problem,) = caught.value.problems
    assert problem.startswith("roster: row 4: id: 'alice-dlc-2' and row 2's 'alice' give IAM users "
                              "ml101-alice-dlc-2-dlc and ml101-alice-dlc")
    # Ids that merely start alike do not collide: 'alice-2' gives 'ml101-alice-2-dlc', not 'ml101-alice-dlc-...'.
    assert len(parse_roster(text.replace("alice-dlc-2", "alice-2"), names=NAMES)) == 3


ROSTER = parse_roster("id,name,email\nalice,Alice Martin,alice@example.com\nbob,Bob Okafor,bob@example.com\n"
                      "amartin,Alice Martín,amartin@example.com\n,José Núñez,jose@example.com\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("bob", "bob"), ("BOB ", "bob"), ("Bob@Example.com", "bob"), ("bob okafor", "bob"), ("Okafor", "bob"),
    ("okafor bob", "bob"), ("jose nunez", "jose-nunez"), ("Núñez", "jose-nunez"), ("amartin", "amartin"),
])
def test_find_student_by_id_email_or_unambiguous_name(text: str, expected: str) -> None:
    assert find_student(ROSTER, text) == expected


def test_find_student_says_what_is_unknown_or_ambiguous_in_one_line() -> None:
    with pytest.raises(UnknownStudent, match=r"^'alice martin' matches 2 students: alice \(Alice Martin, row 2\), "
                                             r"amartin \(Alice Martín, row 4\); give the id or e-mail$"):
        find_student(ROSTER, "alice martin")
    with pytest.raises(UnknownStudent, match=r"^no student 'carol' in the course \(give an id, an e-mail address "
                                             r"or a name from the roster; students: alice, bob, amartin, jose-nunez\)"):
        find_student(ROSTER, "carol")
    with pytest.raises(UnknownStudent, match="no student 'x@example.com'"):
        find_student(ROSTER, "x@example.com")


def test_find_student_in_a_course_without_roster_takes_ids_only() -> None:
    from tests.conftest import make_config

    config = make_config()
    assert find_student(config, "Alice") == "alice"
    with pytest.raises(UnknownStudent, match=r"give a student id; students: alice, bob\)$"):
        find_student(config, "Alice Martin")
