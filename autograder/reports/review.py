"""The TA's review sheet of written answers (the answers themselves are found by written_answers.py): list them,
read the TA's scores back, one ItemScore per written-answer item.

The review sheet, after every batch (`write_review_sheet`):
- OUT/review/written_answers.html: per question, every student's answer (escaped plain text), its state and the
  score so far;
- OUT/review/written_answers.csv: columns submission, question, group, answer, score, max_points, comment; one row
  per student and question, sorted by question, then group, then student, UTF-8 with a byte-order mark
  (spreadsheets then show accents and symbols right). The TA fills `score` (a number from 0 to max_points; "2,5" is
  read as 2.5) and optionally `comment`, and saves it as CSV under the same name (comma, semicolon or tab separated).
- `group`: near-identical answers to a question share a group (autograder/reports/answer_groups.py: TF-IDF and
  clustering). A TA may score a group in one row: a member whose own score is blank takes the score (and comment)
  of its group's scored rows when they agree; a member's own score always wins, so single answers can be
  overridden. Groups are read from the sheet as saved, so what the TA saw is what applies.
- Per question the HTML shows the master's model answer and grading guide (solution/lab.ipynb).
Re-writing the sheet never erases what the TA wrote: the existing file is read again right before writing and every
score and comment is carried over (even one that does not validate, so it can be fixed); rows of students no longer
in the batch are kept when they hold a score or comment. An existing sheet that cannot be read at all (columns
renamed, not text) is copied aside to `written_answers.unreadable-<time>.csv` first. Writes are atomic.

Reading the scores back (`load_scores`, at the start of the next `make grade`): a blank score means "awaiting
review" and the item counts 0 until it is scored; a score that is not a number or outside 0..max_points gives a
message naming the file, the row (as a spreadsheet numbers it, the header being row 1), the submission and question
and what to do, and that row is ignored (the rest of the batch is graded). The comment is shown to the student.
Limits: an answer typed before its prompt, or in a cell the student moved far from the prompt, is not found (the
state says `not_found` or `blank`, so the TA can look at the notebook); answers are shown as plain text (Markdown
and LaTeX are not rendered); a score given before the student resubmitted stays on the new answer (a warning says
the answer changed).
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from autograder.reports.answer_groups import group_answers
from autograder.reports.writing import atomic_write_text, csv_number, csv_unescape, environment, write_csv
from autograder.reports.written_answers import STATES, Answer, QuestionSet, load_questions
from autograder.results import REVIEW_CSV, REVIEW_DIR, REVIEW_HTML, ItemScore

log = logging.getLogger("autograder")

COLUMNS = ["submission", "question", "group", "answer", "score", "max_points", "comment"]
REQUIRED_COLUMNS = ("submission", "question", "score")
AWAITING_MESSAGE = "Written answer: awaiting review by the course staff (counts 0 until it is scored)."


# --- the TA's sheet: reading ---------------------------------------------------------------------------------------

@dataclass
class TAScore:
    score: float
    comment: str = ""
    group: str = ""         # set when the score comes from the row's group, not the row itself


@dataclass
class Sheet:
    path: Path
    exists: bool = False
    readable: bool = True                          # False: the file is there but cannot be used at all
    records: list = field(default_factory=list)    # dicts with COLUMNS + "row" (spreadsheet row), file order
    scores: dict = field(default_factory=dict)     # (submission, question) -> TAScore, valid rows only
    inherited: dict = field(default_factory=dict)  # (submission, question) -> TAScore from the row's group

    @property
    def all_scores(self) -> dict:
        """What the grades use: each row's own valid score, else its group's."""
        return {**self.inherited, **self.scores}
    problems: list = field(default_factory=list)   # messages for the TA


def sheet_path(out_dir: Path) -> Path:
    return Path(out_dir) / REVIEW_DIR / REVIEW_CSV


def _decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "it is not UTF-8; read as Windows-1252"


def _parse_table(text: str) -> tuple[list[str], list[list[str]]] | None:
    """Header and rows, with the delimiter (comma, semicolon, tab) that gives the required columns."""
    for delimiter in (",", ";", "\t"):
        table = [[csv_unescape(cell) for cell in row]
                 for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
        if table and all(c in [h.strip().lower() for h in table[0]] for c in REQUIRED_COLUMNS):
            return [h.strip().lower() for h in table[0]], table[1:]
    return None


def parse_score(raw: str) -> float | None:
    """A TA's score cell as a number; None when blank. Raises ValueError when it is not a finite number."""
    text = str(raw or "").strip()
    if not text:
        return None
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def read_sheet(path: Path, rubric) -> Sheet:
    """The TA's sheet as it is on disk: every record, the valid scores and a message per problem."""
    path = Path(path)
    sheet = Sheet(path)
    if not path.exists():
        return sheet
    sheet.exists = True
    try:
        text, note = _decode(path.read_bytes())
    except OSError as error:
        sheet.readable = False
        sheet.problems.append(f"{path}: cannot be read ({error}); no written-answer score was used. Fix the file's "
                              f"permissions and run `make grade` again.")
        return sheet
    if note:
        sheet.problems.append(f"{path}: {note}; save it as 'CSV UTF-8' next time.")
    parsed = _parse_table(text)
    if parsed is None:
        sheet.readable = False
        sheet.problems.append(f"{path}: the header must hold the columns {', '.join(COLUMNS)} (at least "
                              f"{', '.join(REQUIRED_COLUMNS)}); none of the scores could be used. Restore the header "
                              f"row and run `make grade` again (this file is copied aside, not lost).")
        return sheet
    header, rows = parsed
    points = {item.item_id: float(item.points) for item in rubric.manual_items}
    seen: dict[tuple[str, str], int] = {}
    for number, values in enumerate(rows, start=2):
        if not any(v.strip() for v in values):
            continue
        record = {column: (values[i] if i < len(values) else "") for i, column in enumerate(header)
                  if column in COLUMNS}
        record = {column: record.get(column, "") for column in COLUMNS} | {"row": number}
        record["submission"], record["question"] = record["submission"].strip(), record["question"].strip()
        record["comment"] = record["comment"].strip()
        sheet.records.append(record)
        key = (record["submission"], record["question"])
        where = f"{path}: row {number} (submission '{key[0]}', question '{key[1]}')"
        if key in seen:
            sheet.problems.append(f"{where} repeats row {seen[key]}; the later row is used. Delete one of the two.")
        seen[key] = number
        try:
            score = parse_score(record["score"])
        except ValueError:
            limit = f"from 0 to {points[key[1]]:g}" if key[1] in points else "of points"
            sheet.problems.append(f"{where}: score '{record['score'].strip()}' is not a number; write a number "
                                  f"{limit}, or leave it blank while the answer awaits review. This row is ignored "
                                  f"until it is fixed.")
            sheet.scores.pop(key, None)
            continue
        if score is None:
            sheet.scores.pop(key, None)
            continue
        if key[1] not in points:
            sheet.problems.append(f"{where}: '{key[1]}' is not a written-answer question of the rubric "
                                  f"({', '.join(points)}); this row's score is ignored.")
            continue
        if not 0 <= score <= points[key[1]]:
            sheet.problems.append(f"{where}: score {score:g} is outside 0..{points[key[1]]:g} (the question's "
                                  f"points in rubric.yaml); correct it. This row is ignored until it is fixed.")
            sheet.scores.pop(key, None)
            continue
        sheet.scores[key] = TAScore(score, record["comment"])
    inherit_group_scores(sheet)
    return sheet


def inherit_group_scores(sheet: Sheet) -> None:
    """A row with a blank score takes its group's score (and comment, when it has none) when the group's scored rows
    agree; when they disagree the blank rows stay awaiting review and a problem says which group."""
    by_group: dict[tuple[str, str], list[dict]] = {}
    for record in sheet.records:
        if record["group"].strip():
            by_group.setdefault((record["question"], record["group"].strip()), []).append(record)
    for (question, group), records in by_group.items():
        scored = [sheet.scores[(r["submission"], question)] for r in records if (r["submission"], question)
                  in sheet.scores]
        blank = [r for r in records if not str(r["score"]).strip()]
        if not scored or not blank:
            continue
        if len({s.score for s in scored}) > 1:
            sheet.problems.append(f"{sheet.path}: group {group} of question '{question}' has different scores "
                                  f"({', '.join(sorted({f'{s.score:g}' for s in scored}))}); its blank rows "
                                  f"({', '.join(r['submission'] for r in blank)}) stay awaiting review: score them "
                                  f"or make the group's scores agree.")
            continue
        comment = next((s.comment for s in scored if s.comment), "")
        for record in blank:
            sheet.inherited[(record["submission"], question)] = TAScore(scored[0].score, record["comment"] or comment,
                                                                        group)


def load_scores(out_dir: Path, rubric) -> Sheet:
    """The TA's valid scores from OUT/review/written_answers.csv (empty when there is none yet; `all_scores` adds the
    scores rows take from their groups); each problem is logged as a warning."""
    sheet = read_sheet(sheet_path(out_dir), rubric)
    for problem in sheet.problems:
        log.warning("review sheet: %s", problem)
    return sheet


def students_from_sheet(out_dir: Path, rubric, students: Iterable[tuple[str, str]]) -> list[tuple[str, str, dict]]:
    """(submission id, display name, {item id: Answer}) for students whose notebooks are not at hand (`--only` keeps
    their rows): their answers as the last sheet listed them."""
    sheet = read_sheet(sheet_path(out_dir), rubric)
    by_text = {f"[{text}]": state for state, text in STATES.items()}
    records = {(r["submission"], r["question"]): r for r in sheet.records}
    result = []
    for submission_id, display_name in students:
        answers = {}
        for item in rubric.manual_items:
            record = records.get((submission_id, item.item_id))
            if record is None:
                continue
            text = record["answer"][1:] if record["answer"].startswith("'") else record["answer"]
            state = by_text.get(text.strip())
            answers[item.item_id] = Answer("", state) if state else Answer(text, "answered")
        result.append((submission_id, display_name, answers))
    return result


ABSENT_STATES = ("not_found", "blank")     # written_answers.STATES: no answer to review


def manual_item_scores(rubric, submission_id: str, scores: dict, answers: dict | None = None,
                       questions=None) -> list:
    """One ItemScore per written-answer item: the TA's score; else 0 and "not found in your notebook" (with the
    prompt to answer) when the answer is absent; else 0 and "awaiting review" (before penalties)."""
    prompts = {q.item_id: q for q in (questions.questions if questions is not None else ())}
    result = []
    for item in rubric.manual_items:
        ta = scores.get((submission_id, item.item_id))
        answer = (answers or {}).get(item.item_id)
        if ta is None and answer is not None and answer.state in ABSENT_STATES:
            question = prompts.get(item.item_id)
            prompt = f" ({question.prompt[:300]})" if question is not None and question.prompt else ""
            where = "no text follows it" if answer.state == "blank" else "it was not found"
            result.append(ItemScore.zero(item, f"Not answered in your notebook: {where}. Answer {item.heading} in "
                                               f"the cell below its prompt{prompt}.",
                                         {"awaiting_review": False, "answer": answer.state}))
            continue
        if ta is None:
            result.append(ItemScore.zero(item, AWAITING_MESSAGE, {"awaiting_review": True}))
            continue
        fraction = ta.score / item.points if item.points else 1.0
        message = f"Reviewed by the course staff: {ta.comment}" if ta.comment else "Reviewed by the course staff."
        result.append(ItemScore(item.item_id, item.title, round(float(ta.score), 4), float(item.points),
                                item.visibility, message, fraction, item.check,
                                {"awaiting_review": False, "ta_score": ta.score}))
    return result


# --- the TA's sheet: writing ---------------------------------------------------------------------------------------

def _plain(text: str) -> str:
    """Answer text as compared across runs: without a spreadsheet's formula guard and whitespace differences."""
    return re.sub(r"\s+", " ", csv_unescape(str(text or ""))).strip()


def write_review_sheet(out_dir: Path, rubric, students: Iterable[tuple[str, str, dict]],
                       questions: QuestionSet | None = None, extra_problems: Iterable[str] = ()) -> dict:
    """Write OUT/review/written_answers.{csv,html} for `students` = (submission id, display name, {item id:
    Answer}), carrying over every score and comment of the existing CSV. Returns counts for the caller's summary."""
    questions = questions or load_questions(rubric)
    csv_path = sheet_path(out_dir)
    existing = read_sheet(csv_path, rubric)
    if existing.exists and not existing.readable:
        aside = csv_path.with_name(f"written_answers.unreadable-{time.strftime('%Y%m%d-%H%M%S')}.csv")
        shutil.copyfile(csv_path, aside)
        existing.problems.append(f"{csv_path} was copied to {aside} before a fresh sheet was written: copy your "
                                 f"scores from it into the new sheet.")
        log.warning("review sheet: %s", existing.problems[-1])
    old = {(r["submission"], r["question"]): r for r in existing.records}     # later rows win, as when reading
    students = sorted(students, key=lambda s: s[0].lower())
    points = {item.item_id: float(item.points) for item in rubric.manual_items}

    records, sections, changed = [], [], []
    for question in questions.questions:
        entries = []
        groups = group_answers({sid: answers[question.item_id].text for sid, _, answers in students
                                if question.item_id in answers and answers[question.item_id].state == "answered"})
        firsts: dict[str, dict] = {}
        for submission_id, display_name, answers in sorted(students, key=lambda s: group_order(groups, s[0])):
            answer = answers.get(question.item_id) or Answer("", "not_found")
            group = groups.get(submission_id, "")
            previous = old.get((submission_id, question.item_id), {})
            score_text, comment = str(previous.get("score", "")).strip(), previous.get("comment", "")
            answer_changed = bool(score_text) and _plain(previous.get("answer", "")) != _plain(answer.sheet_text)
            if answer_changed:
                changed.append(f"{submission_id} / {question.item_id}")
            valid = existing.all_scores.get((submission_id, question.item_id))
            records.append([submission_id, question.item_id, group, answer.sheet_text, score_text,
                            csv_number(question.points), comment])
            entry = {"submission": submission_id, "display_name": display_name, "answer": answer,
                     "state_text": STATES.get(answer.state, answer.state), "score_text": score_text,
                     "score": valid.score if valid else None, "comment": comment or (valid.comment if valid else ""),
                     "from_group": valid.group if valid else "", "group": group,
                     "same_as": firsts[group]["display_name"] if group in firsts else "",
                     "invalid": bool(score_text) and valid is None, "answer_changed": answer_changed}
            if group and group not in firsts:
                firsts[group] = entry
                entry["group_size"] = sum(1 for g in groups.values() if g == group)
            entries.append(entry)
        scored = [e["score"] for e in entries if e["score"] is not None]
        sections.append({"question": question, "entries": entries, "groups": len(firsts),
                         "counts": {state: sum(e["answer"].state == state for e in entries) for state in STATES},
                         "scored": len(scored), "mean": (sum(scored) / len(scored)) if scored else None})
    current = {(r[0], r[1]) for r in records}
    kept = [r for r in existing.records if (r["submission"], r["question"]) not in current
            and (str(r["score"]).strip() or r["comment"])]
    kept = list({(r["submission"], r["question"]): r for r in kept}.values())
    for r in kept:
        records.append([r["submission"], r["question"], "", r["answer"], r["score"],
                        csv_number(points[r["question"]]) if r["question"] in points else r["max_points"],
                        r["comment"]])
    if changed:
        log.warning("review sheet: the answer changed since it was scored (resubmitted?) for %s: check those scores",
                    ", ".join(changed))

    write_csv(csv_path, COLUMNS, records, bom=True)
    problems = list(existing.problems) + list(extra_problems)
    html = _render_html(rubric, sections, problems, kept, csv_path, changed)
    atomic_write_text(csv_path.with_name(REVIEW_HTML), html)
    return {"students": len(students), "questions": len(questions.questions),
            "awaiting": sum(1 for s in sections for e in s["entries"] if e["score"] is None),
            "problems": len(problems), "kept_rows": len(kept)}


def group_order(groups: dict[str, str], submission_id: str) -> tuple:
    """Sheet order within a question: the groups (g1, g2, ...) first, each with its members together, then the
    answers in no group; by submission id within each."""
    group = groups.get(submission_id, "")
    return (0, int(group[1:]), submission_id.lower()) if group else (1, 0, submission_id.lower())


def _render_html(rubric, sections, problems, kept, csv_path, changed) -> str:
    return environment().get_template("written_answers.html.j2").render(
        title=f"Written answers: {rubric.title}", sections=sections, problems=problems, kept=kept,
        csv_name=csv_path.name, changed=changed, states=STATES)
