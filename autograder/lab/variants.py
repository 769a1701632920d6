"""Notebooks for checking the checks, generated from the master like the demo class (`python -m autograder.lab.variants
--out DIR` writes them):

- VARIANTS: correct work written differently (merged or reordered cells, a notebook rebuilt from scratch without the
  template's metadata, a convolutional encoder, deeper networks, losses through torch.distributions, other plotting
  styles, a history with an epoch-0 value, the Gaussian loss with its constant, training without the input
  corruption). Each must keep every automatic point the reference earns.
- SINGLE_MISTAKES: the lab's classic mistakes, one per notebook, each with the rubric items it must lose and words
  its feedback must contain.
Each is a function of the filled-in master (demo.filled_in_notebook): text edits that must apply exactly once
(demo.apply_edits, so a changed master fails loudly), or a change of one definition found by its name.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
from nbformat import v4

from autograder.lab.demo import MISTAKES as DEMO_MISTAKES, EXPECTED_LOSSES, apply_edits, filled_in_notebook, write_notebook

Transform = Callable[[nbformat.NotebookNode], nbformat.NotebookNode]


def copy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.from_dict(json.loads(json.dumps(notebook)))


def replace_definition(notebook: nbformat.NotebookNode, name: str, source: str) -> nbformat.NotebookNode:
    """The top-level `def name` or `class name` of the notebook replaced by `source` (exactly one must exist)."""
    notebook = copy(notebook)
    hits = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        hits += [(cell, node) for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                 and node.name == name]
    if len(hits) != 1:
        raise ValueError(f"variant expects one definition of {name} in the solution, found {len(hits)}")
    cell, node = hits[0]
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    lines = cell.source.splitlines()
    cell.source = "\n".join(lines[:start - 1] + source.strip("\n").splitlines() + lines[node.end_lineno:])
    return notebook


def edits(*pairs: tuple[str, str]) -> Transform:
    return lambda notebook: apply_edits(notebook, pairs)


def fresh_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Only the code, retyped into a new notebook: no markdown, no metadata, no tags, new cell ids."""
    fresh = v4.new_notebook()
    fresh.cells = [v4.new_code_cell(cell.source) for cell in notebook.cells if cell.cell_type == "code"]
    return fresh


def merged_cells(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every run of consecutive code cells merged into one cell."""
    merged = copy(notebook)
    cells = []
    for cell in merged.cells:
        if cell.cell_type == "code" and cells and cells[-1].cell_type == "code":
            cells[-1].source = cells[-1].source.rstrip("\n") + "\n\n" + cell.source
        else:
            cells.append(cell)
    merged.cells = cells
    return merged


def reordered_definitions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The cells defining kl_divergence and bernoulli_vae_loss moved up, before the one defining reparameterize."""
    notebook = copy(notebook)

    def defines(cell, name):
        return cell.cell_type == "code" and f"def {name}(" in cell.source

    moved = [cell for cell in notebook.cells if defines(cell, "kl_divergence") or defines(cell, "bernoulli_vae_loss")]
    rest = [cell for cell in notebook.cells if all(cell is not m for m in moved)]
    at = next(i for i, cell in enumerate(rest) if defines(cell, "reparameterize"))
    notebook.cells = rest[:at] + moved + rest[at:]
    return notebook


CONV_ENCODER = '''
class VAEEncoder(nn.Module):
    # Two strided convolutions on the 28 x 28 image, then the shared hidden layer and the two heads.
    def __init__(self, dim_input, dim_latent, dim_hidden=512):
        super().__init__()
        side = int(round(dim_input ** 0.5))
        self.features = nn.Sequential(
            nn.Unflatten(1, (1, side, side)),
            nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * ((side + 3) // 4) ** 2, dim_hidden), nn.ReLU())
        self.mu_head = nn.Linear(dim_hidden, dim_latent)
        self.log_sigma_squared_head = nn.Linear(dim_hidden, dim_latent)

    def forward(self, x):
        h = self.features(x)
        return self.mu_head(h), self.log_sigma_squared_head(h)
'''

DEEPER_DECODER = '''
class VAEDecoder(nn.Module):
    def __init__(self, dim_latent, dim_output, dim_hidden=512):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim_latent, 256), nn.Linear(256, dim_hidden),
                                     nn.Linear(dim_hidden, dim_output)])

    def forward(self, z):
        h = torch.relu(self.layers[0](z))
        h = torch.relu(self.layers[1](h))
        return torch.sigmoid(self.layers[2](h))
'''

DISTRIBUTION_FUNCTIONS = {
    "reparameterize": '''
def reparameterize(mu, log_sigma_squared):
    return torch.distributions.Normal(mu, torch.exp(0.5 * log_sigma_squared)).rsample()
''',
    "kl_divergence": '''
def kl_divergence(mu, log_sigma_squared):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * log_sigma_squared))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(dim=1).mean()
''',
    "bernoulli_vae_loss": '''
def bernoulli_vae_loss(x, x_reconstructed, mu, log_sigma_squared):
    per_pixel = F.binary_cross_entropy(x_reconstructed, x, reduction="none")
    return per_pixel.sum(dim=1).mean() + kl_divergence(mu, log_sigma_squared)
''',
    "gaussian_vae_loss": '''
def gaussian_vae_loss(x, x_mean, mu, log_sigma_squared, variance=0.1):
    # the full Gaussian negative log-likelihood, its constant included
    nll = -torch.distributions.Normal(x_mean, variance ** 0.5).log_prob(x).sum(dim=1).mean()
    return nll + kl_divergence(mu, log_sigma_squared)
''',
}


def distributions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for name, source in DISTRIBUTION_FUNCTIONS.items():
        notebook = replace_definition(notebook, name, source)
    return notebook


PLOT_STYLES = (
    # training curve: log scale, epochs counted from 0
    ('epochs = np.arange(1, len(vae_history) + 1)\nax.plot(epochs, vae_history, marker="o", label="Bernoulli VAE, '
     'training set")',
     'ax.semilogy(range(len(vae_history)), vae_history, "k.-", label="Bernoulli VAE")'),
    # scatter: one scatter per digit with a legend, mu instead of z
    ('plot_latent_scatter(ax, z_points, scatter_train_labels, f"VAE: z of {len(z_points)} random training images")',
     'for digit in range(10):\n'
     '    chosen = scatter_train_labels == digit\n'
     '    ax.scatter(z_points[chosen, 0], z_points[chosen, 1], s=2, label=str(digit))\n'
     'ax.legend(markerscale=4)\nax.set_title("latent space of the VAE")'),
    # 15 x 15 grid: 225 subplots
    ('fig, ax = plt.subplots(figsize=(8, 8))\nshow_grid(ax, stitch_images(grid_images, 15, 15),',
     'fig, grid_axes = plt.subplots(15, 15, figsize=(8, 8))\n'
     'for grid_ax, image in zip(grid_axes.flat, grid_images):\n'
     '    grid_ax.imshow(image.reshape(28, 28), cmap="gray_r")\n'
     '    grid_ax.axis("off")\n'
     'ax = grid_axes[0, 0]\nif False: show_grid(ax, stitch_images(grid_images, 15, 15),'),
)


EPOCH_ZERO = (
    ('vae = VAE(784, 2).to(device)\nvae_history = train_vae(',
     'vae = VAE(784, 2).to(device)\n'
     'with torch.no_grad():\n'
     '    first = x_train[:BATCH_SIZE]\n'
     '    initial_loss = bernoulli_vae_loss(first, *vae(first)).item()\n'
     'vae_history = [initial_loss] + train_vae('),
)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    transform: Transform


VARIANTS = (
    Variant("fresh_notebook", "only the code, retyped into a new notebook (no markdown, metadata or tags)",
            fresh_notebook),
    Variant("merged_cells", "consecutive code cells merged", merged_cells),
    Variant("reordered_definitions", "the KL and the loss defined before reparameterize", reordered_definitions),
    Variant("conv_encoder", "a convolutional VAEEncoder with the same contract",
            lambda nb: replace_definition(nb, "VAEEncoder", CONV_ENCODER)),
    Variant("deeper_decoder", "a decoder with two hidden layers, written with ModuleList",
            lambda nb: replace_definition(nb, "VAEDecoder", DEEPER_DECODER)),
    Variant("distributions", "reparameterize, the KL and both losses through torch.distributions (Gaussian "
                             "constant included)", distributions),
    Variant("plot_styles", "log-scale curve from epoch 0, one scatter per digit, a 225-subplot grid", edits(*PLOT_STYLES)),
    Variant("epoch_zero_history", "vae_history starts with the untrained model's loss", edits(*EPOCH_ZERO)),
    Variant("no_corruption", "the Bernoulli VAE trained on clean images",
            edits((", corrupt=corrupt_encoder_input)", ")"))),
)


@dataclass(frozen=True)
class Mistake:
    name: str
    description: str
    transform: Transform
    loses: frozenset          # rubric items it must lose
    words: str                # in the feedback of one of those items


SINGLE_MISTAKES = (
    *(Mistake(m.file_name.rsplit(".", 1)[0], m.description, edits(*m.edits),
              frozenset(EXPECTED_LOSSES[m.file_name.rsplit(".", 1)[0]]), "") for m in DEMO_MISTAKES
      if m.file_name.endswith(".ipynb")),
    Mistake("reseeded_reparameterize", "reparameterize reseeds torch: the same eps at every call",
            edits(("    eps = torch.randn_like(mu)", "    torch.manual_seed(0)\n    eps = torch.randn_like(mu)")),
            frozenset({"reparameterization"}), "the same z"),
    Mistake("no_optimizer_step", "the training loop never calls optimizer.step()",
            edits(("            optimizer.step()\n            scheduler.step()", "            scheduler.step()")),
            frozenset({"losses_decrease", "training_curves"}), "does not reduce the loss"),
    Mistake("kl_mean_over_latent", "the KL averaged over latent dimensions",
            edits(("torch.sum(1 + log_sigma_squared - mu.pow(2) - log_sigma_squared.exp(), dim=1)",
                   "torch.mean(1 + log_sigma_squared - mu.pow(2) - log_sigma_squared.exp(), dim=1)")),
            frozenset({"kl_latent_sum"}), "AVERAGES over the latent dimensions"),
    Mistake("one_head", "mu and log_sigma_squared from the same head",
            edits(("        log_sigma_squared = self.log_sigma_squared_head(h)", "        log_sigma_squared = self.mu_head(h)")),
            frozenset({"encoder_shapes"}), "same tensor"),
    Mistake("gaussian_variance_one", "the Gaussian loss ignores its variance (sigma^2 = 1)",
            edits(("    return squared_error / (2 * variance) + kl_divergence(mu, log_sigma_squared)",
                   "    return squared_error / 2 + kl_divergence(mu, log_sigma_squared)")),
            frozenset({"loss_proportions"}), "ignores its `variance` argument"),
    Mistake("pca_without_mean", "pca_encode does not subtract the mean",
            edits(("    return (x - pca.mean_) @ pca.components_.T", "    return x @ pca.components_.T")),
            frozenset({"pca"}), "does not subtract the mean"),
)


def build(out_dir: Path) -> dict[str, object]:
    """Every variant and mistake as `<name>.ipynb` in out_dir; returns name -> its Variant or Mistake."""
    solution = filled_in_notebook()
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for entry in (*VARIANTS, *SINGLE_MISTAKES):
        notebook = entry.transform(copy(solution))
        write_notebook(notebook, out_dir / f"{entry.name}.ipynb")
        built[entry.name] = entry
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for name in build(args.out):
        print(args.out / f"{name}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
