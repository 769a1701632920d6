"""Written answers: find them in every submission, list them for the TA, read the TA's scores back.

The lab's written-answer questions are otter `manual: true` questions; the rubric's `manual_items` name them, their
points and the `heading` each has in the notebook ("Question 2a"). They are never scored automatically.

Finding an answer (in the grader's process, from the submitted notebook read as JSON with nbformat; nothing is
executed). Students reorder and copy cells, and Colab or other editors drop cell metadata, so the answer is found by
what survives, not by cell position or tags:
- a *prompt cell* is a markdown/raw cell whose text starts with the question's heading ("Question 2a ...") or
  reads like the question's prompt in student_template/lab.ipynb (the prompt is contained in it, or its start is at
  least 80% similar: a renumbered or slightly edited prompt is still found); the prompt text wins over the heading;
- the answer is the text of the cells that follow a prompt cell, up to the next code cell, the next prompt cell,
  otter's `<!-- END QUESTION -->` / `<!-- BEGIN QUESTION -->` markers, or a template cell (non-editable metadata, or
  the same text as one of the template's own markdown cells); a "code" cell holding prose (it is not Python, or
  only comments) counts as answer text, a common slip;
- text typed into the prompt cell itself, below the prompt, is part of the answer;
- a prompt that occurs several times (copied cells) contributes the answers after each occurrence, once each;
- the template's placeholder ("_Type your answer here, replacing this text._") is not an answer.
An answer is `answered`, `blank` (the prompt is there, no text), `not_found` (no prompt cell: the TA should open the
notebook) or `unreadable` (the file is not a notebook).

The review sheet, after every batch (`write_review_sheet`):
- OUT/review/written_answers.html: per question, every student's answer (escaped plain text), its state and the
  score so far;
- OUT/review/written_answers.csv: columns submission, question, answer, score, max_points, comment; one row per
  student and question, sorted by question then student, UTF-8 with a byte-order mark (spreadsheets then show
  accents and symbols right). The TA fills `score` (a number from 0 to max_points; "2,5" is read as 2.5) and
  optionally `comment`, and saves it as CSV under the same name (comma, semicolon or tab separated).
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

import ast
import csv
import difflib
import io
import logging
import math
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from autograder import STUDENT_TEMPLATE

log = logging.getLogger("autograder")

TEMPLATE_NOTEBOOK = STUDENT_TEMPLATE / "lab.ipynb"
REVIEW_DIR = "review"
SHEET_CSV = "written_answers.csv"
SHEET_HTML = "written_answers.html"
COLUMNS = ["submission", "question", "answer", "score", "max_points", "comment"]
REQUIRED_COLUMNS = ("submission", "question", "score")
PLACEHOLDER = "_Type your answer here, replacing this text._"
PROMPT_SIMILARITY = 0.8              # start of a cell vs the template's prompt, difflib ratio
MAX_ANSWER_CHARS = 32000             # a spreadsheet cell holds 32767 characters
AWAITING_MESSAGE = "Written answer: awaiting review by the course staff (counts 0 until it is scored)."
STATES = {
    "answered": "answered",
    "blank": "no answer: the question is there, with no text after it",
    "not_found": "the question was not found in the notebook: open the notebook to look for the answer",
    "unreadable": "the submission could not be read as a notebook",
}

_MARKER = re.compile(r"<!--.*?-->", re.S)
_END_MARKER = re.compile(r"<!--\s*END\s+QUESTION\s*-->", re.I)
_LEADING_MARKERS = re.compile(r"^(\s*<!--.*?-->)+", re.S)
_BEGIN_MARKER = re.compile(r"^\s*<!--\s*BEGIN\s+QUESTION\s*-->", re.I)
_LEADING_LABEL = re.compile(r"^question\s+[0-9a-z]+\s*(\(written answer\))?\s*[.:]?\s*")


def normalise(text: str) -> str:
    """Lower case, without otter markers, Markdown emphasis/code/heading/quote/math characters and extra spaces."""
    text = _MARKER.sub(" ", str(text)).lower()
    text = re.sub(r"[*_`#>$\\]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


# --- the questions -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Question:
    item_id: str
    title: str
    points: float
    heading: str            # "Question 2a"
    prompt: str = ""        # the template's prompt cell, markers removed ("" when the template lacks it)

    @property
    def label(self) -> str:
        return normalise(self.heading)

    @property
    def body(self) -> str:
        """The prompt's words after its heading, normalised: what a renumbered prompt still shares."""
        return _LEADING_LABEL.sub("", normalise(self.prompt), count=1)


@dataclass(frozen=True)
class QuestionSet:
    questions: tuple[Question, ...]
    template_texts: frozenset = frozenset()   # normalised texts of the template's other markdown cells


def _starts_with_label(cell_norm: str, label: str) -> bool:
    return bool(label) and re.match(re.escape(label) + r"(?![0-9a-z])", cell_norm) is not None


def _cell_text(cell: Any) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(source) if isinstance(source, list) else str(source or "")


def load_questions(rubric, template: Path | None = TEMPLATE_NOTEBOOK) -> QuestionSet:
    """The rubric's written-answer items with their prompts from the student template (when it is there)."""
    cells = []
    if template is not None and Path(template).is_file():
        try:
            cells = list(_read_notebook(Path(template).read_text(encoding="utf-8")).cells)
        except Exception as error:     # the template is ours: say so, match by heading only
            log.warning("review: %s could not be read (%s); written answers are found by heading only",
                        template, error)
    markdown = [(c, _cell_text(c)) for c in cells if c.get("cell_type") == "markdown"]
    questions, prompt_texts = [], set()
    for item in rubric.manual_items:
        label = normalise(item.heading)
        prompt = next((_MARKER.sub("", text).strip() for _, text in markdown
                       if _starts_with_label(normalise(text), label)), "")
        if not prompt and markdown:
            log.warning("review: no cell of the template starts with '%s' (%s): check the rubric's heading",
                        item.heading, item.item_id)
        prompt_texts.add(normalise(prompt))
        questions.append(Question(item.item_id, item.title, float(item.points), item.heading, prompt))
    other = frozenset(n for cell, text in markdown
                      if "otter_answer_cell" not in (cell.get("metadata", {}).get("tags") or [])
                      and (n := normalise(text)) and n not in prompt_texts)
    return QuestionSet(tuple(questions), other)


# --- finding the answers in a notebook ---------------------------------------------------------------------------

@dataclass
class Answer:
    text: str
    state: str                                  # a key of STATES
    cells: list = field(default_factory=list)   # indices of the cells the text came from
    note: str = ""

    @property
    def sheet_text(self) -> str:
        """The answer as the CSV shows it: the text, or the state in brackets."""
        return self.text if self.state == "answered" else f"[{STATES.get(self.state, self.state)}]"


def _read_notebook(text: str):
    import nbformat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notebook = nbformat.reader.reads(text)
        if notebook.get("nbformat", 4) != 4:
            notebook = nbformat.convert(notebook, 4)
    if not isinstance(notebook.get("cells"), list):
        raise ValueError("the notebook has no list of cells")
    return notebook


def _is_prose(source: str) -> bool:
    """A code cell that holds an answer in words rather than Python: it does not parse, or it is only comments."""
    stripped = source.strip()
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if len(stripped.split()) < 3 or any(line.startswith(("%", "!")) for line in lines):
        return False
    if all(line.startswith("#") for line in lines):
        return True
    try:
        ast.parse(stripped)
    except (SyntaxError, ValueError):
        return True
    return False


def _without_placeholder(text: str) -> str:
    return text.replace(PLACEHOLDER, "").replace(PLACEHOLDER.strip("_"), "").strip()


def _prompt_of(cell_norm: str, questions: QuestionSet) -> tuple[Question | None, bool]:
    """(the question this cell asks, whether its prompt text matched): by the prompt's text first, by the heading
    otherwise."""
    best, best_ratio = None, 0.0
    rest = _LEADING_LABEL.sub("", cell_norm, count=1)
    for question in questions.questions:
        body = question.body
        if len(body) < 20:
            continue
        head = rest[:len(body)]
        if body in cell_norm:
            ratio = 1.0
        elif len(set(body.split()) & set(head.split())) < 0.6 * len(set(body.split())):
            continue               # few words in common: not this prompt (and difflib is slow)
        else:
            ratio = difflib.SequenceMatcher(None, body, head, autojunk=False).ratio()
        if ratio > best_ratio:
            best, best_ratio = question, ratio
    if best_ratio >= PROMPT_SIMILARITY:
        return best, True
    return next((q for q in questions.questions if _starts_with_label(cell_norm, q.label)), None), False


def _inline_answer(text: str, question: Question, by_prompt_text: bool) -> str:
    """Text the student typed into the prompt cell itself. A cell found by its heading only is the student's own
    (e.g. "Question 1: the runs differ ..."): all of it is kept."""
    text = _LEADING_MARKERS.sub("", text)           # the previous question's END marker, this one's BEGIN
    plain = _MARKER.sub("", _END_MARKER.split(text)[0]).strip()
    if question.prompt and question.prompt in plain:
        return _without_placeholder(plain.replace(question.prompt, "", 1))
    if not question.prompt:            # no template to compare with: the first paragraph is taken as the prompt
        return _without_placeholder(plain.split("\n\n", 1)[1] if "\n\n" in plain else "")
    if not by_prompt_text or len(normalise(plain)) > len(normalise(question.prompt)) + 30:
        return _without_placeholder(plain)
    return ""


def extract_answers(notebook_text: str | bytes, questions: QuestionSet) -> dict[str, Answer]:
    """{item id: Answer} for every written question, from a notebook's JSON text."""
    if isinstance(notebook_text, bytes):
        notebook_text = notebook_text.decode("utf-8", errors="replace")
    try:
        cells = list(_read_notebook(notebook_text).cells)
    except Exception as error:
        return {q.item_id: Answer("", "unreadable", note=f"{type(error).__name__}: {error}")
                for q in questions.questions}
    kinds, by_text = [], []      # per cell: the Question it prompts (or None), and whether its prompt text matched
    for cell in cells:
        text = _cell_text(cell)
        is_text_cell = cell.get("cell_type") in ("markdown", "raw")
        question, matched_text = _prompt_of(normalise(text), questions) if is_text_cell and text.strip() \
            else (None, False)
        kinds.append(question)
        by_text.append(matched_text)

    parts: dict[str, list[tuple[int, str]]] = {q.item_id: [] for q in questions.questions}
    found: set[str] = set()
    for index, question in enumerate(kinds):
        if question is None:
            continue
        found.add(question.item_id)
        inline = _inline_answer(_cell_text(cells[index]), question, by_text[index])
        if inline:
            parts[question.item_id].append((index, inline))
        for following in range(index + 1, len(cells)):
            cell, text = cells[following], _cell_text(cells[following])
            if kinds[following] is not None or _BEGIN_MARKER.match(text):
                break
            if cell.get("cell_type") == "code":
                if _is_prose(text):
                    parts[question.item_id].append((following, text.strip()))
                    continue
                break
            metadata = cell.get("metadata") or {}
            if metadata.get("editable") is False or metadata.get("deletable") is False \
                    or normalise(text) in questions.template_texts:
                break
            before_end, *after = _END_MARKER.split(text, maxsplit=1)
            if (kept := _without_placeholder(_MARKER.sub("", before_end))):
                parts[question.item_id].append((following, kept))
            if after:
                break
    answers = {}
    for question in questions.questions:
        unique = list(dict.fromkeys(parts[question.item_id]))          # a cell reached twice counts once
        texts = list(dict.fromkeys(text for _, text in unique))         # a copied answer counts once
        text = "\n\n".join(texts)
        note = ""
        if len(text) > MAX_ANSWER_CHARS:
            note = f"truncated: {len(text) - MAX_ANSWER_CHARS} more characters are in the notebook"
            text = text[:MAX_ANSWER_CHARS] + f"\n[... {note}]"
        state = "answered" if text else ("blank" if question.item_id in found else "not_found")
        answers[question.item_id] = Answer(text, state, sorted({i for i, _ in unique}), note)
    return answers


def answers_of(submission, questions: QuestionSet) -> dict[str, Answer]:
    """A discovered Submission's answers; a submission that cannot be read gets `unreadable` answers, never an
    exception."""
    if getattr(submission, "problem", None):
        return {q.item_id: Answer("", "unreadable", note=submission.problem) for q in questions.questions}
    try:
        data = submission.notebook_bytes()
    except Exception as error:
        return {q.item_id: Answer("", "unreadable", note=f"{type(error).__name__}: {error}")
                for q in questions.questions}
    return extract_answers(data, questions)


# --- the TA's sheet: reading ---------------------------------------------------------------------------------------

@dataclass
class TAScore:
    score: float
    comment: str = ""


@dataclass
class Sheet:
    path: Path
    exists: bool = False
    readable: bool = True                          # False: the file is there but cannot be used at all
    records: list = field(default_factory=list)    # dicts with COLUMNS + "row" (spreadsheet row), file order
    scores: dict = field(default_factory=dict)     # (submission, question) -> TAScore, valid rows only
    problems: list = field(default_factory=list)   # messages for the TA


def sheet_path(out_dir: Path) -> Path:
    return Path(out_dir) / REVIEW_DIR / SHEET_CSV


def _decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "it is not UTF-8; read as Windows-1252"


def _parse_table(text: str) -> tuple[list[str], list[list[str]]] | None:
    """Header and rows, with the delimiter (comma, semicolon, tab) that gives the required columns."""
    for delimiter in (",", ";", "\t"):
        table = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
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
    return sheet


def load_scores(out_dir: Path, rubric) -> Sheet:
    """The TA's valid scores from OUT/review/written_answers.csv (empty when there is none yet); each problem is
    logged as a warning."""
    sheet = read_sheet(sheet_path(out_dir), rubric)
    for problem in sheet.problems:
        log.warning("review sheet: %s", problem)
    return sheet


def manual_item_scores(rubric, submission_id: str, scores: dict) -> list:
    """One ItemScore per written-answer item: the TA's score, or 0 and "awaiting review" (before penalties)."""
    from autograder.scoring import ItemScore

    result = []
    for item in rubric.manual_items:
        ta = scores.get((submission_id, item.item_id))
        if ta is None:
            result.append(ItemScore(item.item_id, item.title, 0.0, float(item.points), item.visibility,
                                    AWAITING_MESSAGE, 0.0, item.check, {"awaiting_review": True}))
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
    text = str(text or "")
    return re.sub(r"\s+", " ", text[1:] if text.startswith("'") else text).strip()


def write_review_sheet(out_dir: Path, rubric, students: Iterable[tuple[str, str, dict]],
                       questions: QuestionSet | None = None, extra_problems: Iterable[str] = ()) -> dict:
    """Write OUT/review/written_answers.{csv,html} for `students` = (submission id, display name, {item id:
    Answer}), carrying over every score and comment of the existing CSV. Returns counts for the caller's summary."""
    from autograder.reports.feedback import _cell, _number, atomic_write, atomic_write_text

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
        for submission_id, display_name, answers in students:
            answer = answers.get(question.item_id) or Answer("", "not_found")
            previous = old.get((submission_id, question.item_id), {})
            score_text, comment = str(previous.get("score", "")).strip(), previous.get("comment", "")
            answer_changed = bool(score_text) and _plain(previous.get("answer", "")) != _plain(answer.sheet_text)
            if answer_changed:
                changed.append(f"{submission_id} / {question.item_id}")
            valid = existing.scores.get((submission_id, question.item_id))
            records.append([submission_id, question.item_id, answer.sheet_text, score_text,
                            _number(question.points), comment])
            entries.append({"submission": submission_id, "display_name": display_name, "answer": answer,
                            "state_text": STATES.get(answer.state, answer.state), "score_text": score_text,
                            "score": valid.score if valid else None, "comment": comment,
                            "invalid": bool(score_text) and valid is None, "answer_changed": answer_changed})
        scored = [e["score"] for e in entries if e["score"] is not None]
        sections.append({"question": question, "entries": entries,
                         "counts": {state: sum(e["answer"].state == state for e in entries) for state in STATES},
                         "scored": len(scored), "mean": (sum(scored) / len(scored)) if scored else None})
    current = {(r[0], r[1]) for r in records}
    kept = [r for r in existing.records if (r["submission"], r["question"]) not in current
            and (str(r["score"]).strip() or r["comment"])]
    kept = list({(r["submission"], r["question"]): r for r in kept}.values())
    for r in kept:
        records.append([r["submission"], r["question"], r["answer"], r["score"],
                        _number(points[r["question"]]) if r["question"] in points else r["max_points"],
                        r["comment"]])
    if changed:
        log.warning("review sheet: the answer changed since it was scored (resubmitted?) for %s: check those scores",
                    ", ".join(changed))

    def write_csv(f):
        f.write("\ufeff")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for record in records:
            writer.writerow([_cell(record[0]), _cell(record[1]), _cell(record[2]), record[3], record[4],
                             _cell(record[5]) if record[5] else ""])

    atomic_write(csv_path, write_csv)
    problems = list(existing.problems) + list(extra_problems)
    html = _render_html(rubric, sections, problems, kept, csv_path, changed)
    atomic_write_text(csv_path.with_name(SHEET_HTML), html)
    return {"students": len(students), "questions": len(questions.questions),
            "awaiting": sum(1 for s in sections for e in s["entries"] if e["score"] is None),
            "problems": len(problems), "kept_rows": len(kept)}


def _render_html(rubric, sections, problems, kept, csv_path, changed) -> str:
    from autograder.reports.feedback import _environment

    return _environment().get_template("written_answers.html.j2").render(
        title=f"Written answers: {rubric.title}", sections=sections, problems=problems, kept=kept,
        csv_name=csv_path.name, changed=changed, states=STATES)


def review_students(submissions: Iterable[Any], questions: QuestionSet) -> list[tuple[str, str, dict]]:
    """(submission id, display name, answers) for every discovered submission."""
    return [(s.submission_id, s.display_name, answers_of(s, questions)) for s in submissions]
