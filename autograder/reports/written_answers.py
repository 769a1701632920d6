"""Written answers: find them in every submission (nothing is executed), for the TA's review sheet (review.py).

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

For the TA, each question also carries the master's model answer and grading guide (solution/lab.ipynb: the
markdown of the question's SOLUTION block, `_Model answer._ ...` then a paragraph `_Grading guide._ ...`). Both live
only in SOLUTION blocks, which otter assign removes from the student template (tests/lab/test_template.py checks
that neither marker reaches it); the demo class, built from the master, drops the guide (autograder/lab/demo.py).
"""
from __future__ import annotations

import ast
import difflib
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from autograder import SOLUTION, STUDENT_TEMPLATE

log = logging.getLogger("autograder")

TEMPLATE_NOTEBOOK = STUDENT_TEMPLATE / "lab.ipynb"
MASTER_NOTEBOOK = SOLUTION / "lab.ipynb"
MODEL_ANSWER_MARKER = "_Model answer._"
GRADING_GUIDE_MARKER = "_Grading guide._"
PLACEHOLDER = "_Type your answer here, replacing this text._"
PROMPT_SIMILARITY = 0.8              # start of a cell vs the template's prompt, difflib ratio
MAX_ANSWER_CHARS = 32000             # a spreadsheet cell holds 32767 characters
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
    model_answer: str = ""  # the master's model answer (for the TA; "" without the master)
    grading_guide: str = "" # the master's grading guide for the question (for the TA)

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


def strip_grading_guide(text: str) -> str:
    """A master's answer cell without its grading guide paragraph (the guide is the TA's, never a student's)."""
    return re.split(r"\n*^" + re.escape(GRADING_GUIDE_MARKER), text, maxsplit=1, flags=re.M)[0]


def master_answers(master: Path | None = MASTER_NOTEBOOK) -> dict[str, tuple[str, str]]:
    """question name -> (model answer, grading guide) from the master's SOLUTION blocks of otter's manual questions;
    {} without the master (e.g. in the Gradescope zip)."""
    if master is None or not Path(master).is_file():
        return {}
    try:
        cells = list(_read_notebook(Path(master).read_text(encoding="utf-8")).cells)
    except Exception as error:
        log.warning("review: %s could not be read (%s); no model answers on the review sheet", master, error)
        return {}
    found: dict[str, list[str]] = {}
    question, in_solution = None, False
    for cell in cells:
        text = _cell_text(cell).strip()
        if cell.get("cell_type") == "raw":
            if text.startswith("# BEGIN QUESTION"):
                question = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                                 if line.startswith("name:")), None)
            elif text.startswith("# END QUESTION"):
                question = None
            elif text.startswith("# BEGIN SOLUTION"):
                in_solution = True
            elif text.startswith("# END SOLUTION"):
                in_solution = False
            continue
        if in_solution and question and cell.get("cell_type") == "markdown":
            found.setdefault(question, []).append(text)
    answers = {}
    for name, texts in found.items():
        text = "\n\n".join(texts)
        answer = strip_grading_guide(text).strip()
        guide = text[len(answer):].strip()
        answers[name] = (answer.removeprefix(MODEL_ANSWER_MARKER).strip(),
                         guide.removeprefix(GRADING_GUIDE_MARKER).strip())
    return answers


def load_questions(rubric, template: Path | None = TEMPLATE_NOTEBOOK,
                   master: Path | None = MASTER_NOTEBOOK) -> QuestionSet:
    """The rubric's written-answer items with their prompts from the student template (when it is there) and the
    master's model answers and grading guides (when it is there)."""
    cells = []
    if template is not None and Path(template).is_file():
        try:
            cells = list(_read_notebook(Path(template).read_text(encoding="utf-8")).cells)
        except Exception as error:     # the template is ours: say so, match by heading only
            log.warning("review: %s could not be read (%s); written answers are found by heading only",
                        template, error)
    markdown = [(c, _cell_text(c)) for c in cells if c.get("cell_type") == "markdown"]
    model = master_answers(master)
    questions, prompt_texts = [], set()
    for item in rubric.manual_items:
        label = normalise(item.heading)
        prompt = next((_MARKER.sub("", text).strip() for _, text in markdown
                       if _starts_with_label(normalise(text), label)), "")
        if not prompt and markdown:
            log.warning("review: no cell of the template starts with '%s' (%s): check the rubric's heading",
                        item.heading, item.item_id)
        prompt_texts.add(normalise(prompt))
        answer, guide = model.get(item.item_id, ("", ""))
        questions.append(Question(item.item_id, item.title, float(item.points), item.heading, prompt, answer, guide))
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


def review_students(submissions: Iterable[Any], questions: QuestionSet) -> list[tuple[str, str, dict]]:
    """(submission id, display name, answers) for every discovered submission."""
    return [(s.submission_id, s.display_name, answers_of(s, questions)) for s in submissions]
