"""Similarity report: near-copies rank first, the template's own code never counts, unreadable notebooks are listed."""
import base64
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from autograder.reports import similarity
from autograder.discover import discover

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "student_template" / "lab.ipynb"

# One student's own work: what a student adds to the template.
ORIGINAL_CELLS = ['''
def kl_divergence(mu, log_sigma_squared):
    per_image = -0.5 * torch.sum(1 + log_sigma_squared - mu ** 2 - torch.exp(log_sigma_squared), dim=1)
    return per_image.mean()


def bernoulli_vae_loss(x, x_reconstructed, mu, log_sigma_squared):
    reconstruction = F.binary_cross_entropy(x_reconstructed, x, reduction="sum") / x.shape[0]
    return reconstruction + kl_divergence(mu, log_sigma_squared)
''', '''
def train_vae(model, images, epochs, batch_size, learning_rate=1e-3, clip=None):
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    history = []
    for epoch in range(epochs):
        order = torch.randperm(len(images))
        total, batches = 0.0, 0
        for start in range(0, len(images), batch_size):
            batch = images[order[start:start + batch_size]]
            reconstruction, mu, log_sigma_squared = model(batch)
            loss = bernoulli_vae_loss(batch, reconstruction, mu, log_sigma_squared)
            optimizer.zero_grad()
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            total += loss.item()
            batches += 1
        history.append(total / batches)
        print(f"epoch {epoch + 1}/{epochs}: loss {history[-1]:.2f} <script>alert('x')</script>")
    return history
''', '''
grid_values = torch.linspace(-3.0, 3.0, 15)
grid_points = torch.stack(torch.meshgrid(grid_values, grid_values.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
with torch.no_grad():
    decoded_grid = vae.decoder(grid_points).cpu().numpy()
fig, ax = plt.subplots(figsize=(8, 8))
ax.imshow(stitch_images(decoded_grid, 15, 15), cmap="gray")
ax.set_title("decoded grid over z")
ax.axis("off")
plt.show()
''']

# The same work with every name, comment, string and the layout changed: a copy in disguise.
NEAR_COPY_CELLS = ['''
def train_vae(net, data, n_epochs, bs, lr=0.001, max_norm=None):
    # my own training loop!!
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for ep in range(n_epochs):
        perm = torch.randperm(len(data))
        running, count = 0.0, 0
        for i in range(0, len(data), bs):
            xb = data[perm[i:i + bs]]
            xr, m, lv = net(xb)
            l = bernoulli_vae_loss(xb, xr, m, lv)
            opt.zero_grad()
            l.backward()
            if max_norm is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
            opt.step()
            running += l.item()
            count += 1
        losses.append(running / count)
        print(f"ep {ep}: {losses[-1]}")
    return losses
''', '''
def kl_divergence(m, lv):
    kl = -0.5 * torch.sum(1 + lv - m ** 2 - torch.exp(lv), dim=1)   # closed form
    return kl.mean()


def bernoulli_vae_loss(x, xr, m, lv):
    rec = F.binary_cross_entropy(xr, x, reduction="sum") / x.shape[0]
    return rec + kl_divergence(m, lv)
''', '''
zs = torch.linspace(-3.0, 3.0, 15)
pts = torch.stack(torch.meshgrid(zs, zs.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
with torch.no_grad():
    imgs = vae.decoder(pts).cpu().numpy()
f, a = plt.subplots(figsize=(7, 7))
a.imshow(stitch_images(imgs, 15, 15), cmap="gray")
a.set_title("the grid")
a.axis("off")
plt.show()
''']

# The same tasks solved independently: other structure, other calls.
INDEPENDENT_CELLS = ['''
def kl_divergence(mu, log_sigma_squared):
    variance = log_sigma_squared.exp()
    terms = variance + mu.pow(2) - 1.0 - log_sigma_squared
    return 0.5 * terms.sum(dim=-1).mean(dim=0)


def bernoulli_vae_loss(x, x_reconstructed, mu, log_sigma_squared):
    eps = 1e-7
    log_likelihood = x * torch.log(x_reconstructed + eps) + (1 - x) * torch.log(1 - x_reconstructed + eps)
    return -log_likelihood.sum(dim=-1).mean() + kl_divergence(mu, log_sigma_squared)
''', '''
def train_vae(model, images, epochs, batch_size, learning_rate=1e-3, clip=None):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=batch_size,
                                         shuffle=True)
    optimiser = torch.optim.RMSprop(model.parameters(), lr=learning_rate)
    curve = []
    epoch = 0
    while epoch < epochs:
        sums = []
        for (batch,) in loader:
            optimiser.zero_grad(set_to_none=True)
            outputs = model(batch)
            value = bernoulli_vae_loss(batch, *outputs)
            value.backward()
            if clip:
                torch.nn.utils.clip_grad_value_(model.parameters(), clip)
            optimiser.step()
            sums.append(float(value))
        curve.append(sum(sums) / max(1, len(sums)))
        epoch = epoch + 1
    return curve
''']


def write_student(path: Path, own_cells: list[str], insert_at: int | None = None) -> None:
    notebook = nbformat.read(TEMPLATE, as_version=4)
    cells = [v4.new_code_cell(source.strip("\n")) for source in own_cells]
    position = len(notebook.cells) if insert_at is None else insert_at
    notebook.cells[position:position] = cells
    path.write_text(nbformat.writes(notebook), encoding="utf-8")


@pytest.fixture(scope="module")
def class_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("similarity_class")
    write_student(folder / "Assignment1 Ada Original.ipynb", ORIGINAL_CELLS)
    write_student(folder / "Assignment1 Bob Copier.ipynb", NEAR_COPY_CELLS, insert_at=12)
    write_student(folder / "Assignment1 Cy Independent.ipynb", INDEPENDENT_CELLS)
    (folder / "untouched_a.ipynb").write_bytes(TEMPLATE.read_bytes())
    (folder / "untouched_b.ipynb").write_bytes(TEMPLATE.read_bytes())
    (folder / "broken.ipynb").write_text("print('a script, not a notebook')\n")
    (folder / "prose_only.ipynb").write_text(nbformat.writes(v4.new_notebook(cells=[v4.new_markdown_cell("hi")])))
    return folder


@pytest.fixture(scope="module")
def written(class_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("similarity_out") / "similarity.html"
    report = similarity.write_similarity_report(discover(class_dir), out)
    return report, out


def pair_names(pair) -> set[str]:
    return {pair.first, pair.second}


def test_near_copies_are_the_closest_pair_and_flagged(written):
    report, _ = written
    closest = report.pairs[0]
    assert pair_names(closest) == {"Ada_Original", "Bob_Copier"}
    assert closest.flagged
    assert min(closest.similarity_first, closest.similarity_second) > 0.6   # renamed, reformatted, a few edits
    assert closest.shared_chars >= 1.5 * similarity.FLAG_MIN_SHARED
    assert [pair_names(p) for p in report.flagged] == [{"Ada_Original", "Bob_Copier"}]


def test_independent_work_is_not_flagged(written):
    report, _ = written
    others = [p for p in report.pairs if "Cy_Independent" in pair_names(p)]
    assert others and all(not p.flagged and p.similarity < 0.3 for p in others)


def test_untouched_templates_share_nothing_once_the_template_is_excluded(written):
    report, _ = written
    students = {s.submission_id: s for s in report.students}
    assert students["untouched_a"].own_chars == 0 and students["untouched_b"].own_chars == 0
    assert students["Ada_Original"].own_chars > similarity.FLAG_MIN_SHARED
    assert not [p for p in report.pairs if pair_names(p) & {"untouched_a", "untouched_b"}]
    assert sum(1 for s in report.pair_similarities if s == 0) >= 1


def test_without_the_exclusion_the_templates_would_be_flagged(class_dir):
    """The control for the test above: the same two notebooks, no boilerplate, are a perfect match."""
    students = [similarity.student_code(s) for s in discover(class_dir)]
    pairs, _ = similarity.compare(students, boilerplate_code="")
    untouched = next(p for p in pairs if pair_names(p) == {"untouched_a", "untouched_b"})
    assert untouched.flagged and untouched.similarity > 0.99


def test_unreadable_notebooks_are_listed_as_skipped_with_why(written):
    report, out = written
    skipped = {s.submission_id: s.skipped for s in report.skipped}
    assert set(skipped) == {"broken", "prose_only"}
    assert "not a readable notebook" in skipped["broken"]
    assert "no code cells" in skipped["prose_only"]
    page = out.read_text(encoding="utf-8")
    skipped_section = page.split("Skipped submissions", 1)[1].split("<h2>", 1)[0]
    assert "broken" in skipped_section and "not a readable notebook" in skipped_section


def test_page_is_self_contained_escaped_and_shows_the_shared_code(written):
    report, out = written
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page.lower()                      # the student's string is shown, never run
    assert "&lt;script&gt;alert(" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert images and all(base64.b64decode(data).startswith(b"\x89PNG") for data in images)
    first = page.split('id="pair-1"', 1)[1].split('id="pair-2"', 1)[0]
    shared = " ".join(re.findall(r"<mark>(.*?)</mark>", first))
    assert "clip_grad_norm_" in shared and "kl_divergence" in shared   # both students' copies of the loop and KL
    assert "flagged" in first
    assert not list(out.parent.glob("*.tmp")), "the atomic write left a temporary file"


def test_notebook_code_reads_code_cells_only_and_never_runs_them(tmp_path):
    marker = tmp_path / "ran"
    notebook = v4.new_notebook(cells=[v4.new_markdown_cell("# prose is not code"),
                                      v4.new_code_cell(f"open({str(marker)!r}, 'w').write('x')"),
                                      v4.new_code_cell("y = 2")])
    code = similarity.notebook_code(nbformat.writes(notebook).encode())
    assert code.startswith("# In[1]\n") and "# In[2]\ny = 2" in code and "prose" not in code
    assert not marker.exists()
    old = json.loads((ROOT / "tests" / "fixtures" / "notebooks" / "nbformat3.ipynb").read_text())
    assert old["nbformat"] == 3 and similarity.notebook_code(json.dumps(old)).count("# In[") >= 1
    with pytest.raises(similarity.NotebookCodeError, match="not UTF-8"):
        similarity.notebook_code(bytes(range(256)))


def test_shared_excerpt_marks_shared_text_and_collapses_the_rest():
    code = "\n".join(f"line{n} = {n}" for n in range(1, 21))
    start = code.index("line10")
    end = code.index("\n", start)
    import numpy as np
    excerpt = similarity.shared_excerpt(code, np.array([[start], [end]]), context=1)
    assert excerpt[0] == {"gap": 8}
    assert [e["number"] for e in excerpt if "number" in e] == [9, 10, 11]
    assert excerpt[2]["fragments"] == [["line10 = 10", True]]
    assert excerpt[1]["fragments"] == [["line9 = 9", False]]
    assert excerpt[-1] == {"gap": 9}


def test_a_template_that_cannot_be_read_names_make_template(class_dir, tmp_path):
    with pytest.raises(similarity.NotebookCodeError, match="make template"):
        similarity.build_report(discover(class_dir), template_notebook=tmp_path / "missing.ipynb")
