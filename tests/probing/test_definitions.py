"""Which of a notebook's statements the probe server runs: its definitions, not its work."""
from autograder.probing.definitions import constructor_source, extract

CELLS = [
    (1, "%matplotlib inline\nimport torch\nfrom torch import nn\nimport numpy as np"),
    (2, "SEED = 0\nN_TRAIN = 60000\nDEVICE = 'auto'"),
    (3, "def resolve_device(name):\n    return torch.device('cpu' if name == 'auto' else name)\n\n"
        "device = resolve_device(DEVICE)\nprint(device)"),
    (4, "def load_mnist(train):\n    import torchvision\n    return torchvision.datasets.MNIST('.', train=train)\n\n"
        "data = load_mnist(True)\nx_train = data.data[:N_TRAIN]"),
    (5, "class VAE(nn.Module):\n    def __init__(self, a, b):\n        super().__init__()\n"
        "        self.f = nn.Linear(a, b)\n\nvae = VAE(784, 2).to(device)\n"
        "def train(model, epochs):\n    for epoch in range(epochs):\n        pass\n    return [1.0]\n"
        "vae_history = train(vae, 3)\nHIDDEN = 2 * 256\nfor i in range(3):\n    HIDDEN += 1\n"),
    (6, "def broken(:\n    pass"),
    (7, "try:\n    import google.colab\n    ON_COLAB = True\nexcept ImportError:\n    ON_COLAB = False"),
]


def sources():
    return [s.source.strip() for s in extract(CELLS)]


def test_imports_definitions_and_cheap_values_are_kept():
    kept = sources()
    assert "import torch" in kept and "from torch import nn" in kept and "SEED = 0" in kept
    assert any(s.startswith("def resolve_device") for s in kept) and "device = resolve_device(DEVICE)" in kept
    assert any(s.startswith("class VAE") for s in kept) and "HIDDEN = 2 * 256" in kept
    assert any(s.startswith("try:") for s in kept)


def test_work_is_dropped():
    kept = "\n".join(sources())
    for work in ("print(device)", "data = load_mnist(True)", "vae = VAE(784, 2)", "vae_history = train(vae, 3)",
                 "for i in range(3)", "%matplotlib", "broken"):
        assert work not in kept, work


def test_a_function_that_only_calls_work_is_work():
    cells = [(1, "def epoch(model):\n    for b in range(3):\n        pass\n\ndef fit_all(m):\n    return epoch(m)\n\n"
                 "result = fit_all(1)\nvalue = abs(-3)")]
    kept = [s.source.strip() for s in extract(cells)]
    assert "result = fit_all(1)" not in kept and "value = abs(-3)" in kept


def test_statements_keep_their_cell_and_line():
    statements = extract(CELLS)
    device = next(s for s in statements if s.source.startswith("device ="))
    assert (device.cell, device.line) == (3, 4)


def test_constructor_source_finds_the_models_class_call():
    assert constructor_source(CELLS, "vae", {"VAE"}) == "VAE(784, 2)"
    assert constructor_source(CELLS, "gaussian_vae", {"VAE"}) is None
