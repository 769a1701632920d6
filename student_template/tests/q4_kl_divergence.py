from otter.test_files import test_case

OK_FORMAT = False

name = "q4_kl_divergence"
points = 2

@test_case(points=None, hidden=False)
def test_kl_divergence(kl_divergence, torch):
    assert kl_divergence is not None, 'kl_divergence is not defined: run the cell that defines it'
    zeros = torch.zeros(5, 2)
    value = kl_divergence(zeros, zeros)
    assert torch.is_tensor(value) and value.dim() == 0, 'kl_divergence should return a scalar tensor'
    assert abs(value.item()) < 1e-06, f'KL(N(0, I) || N(0, I)) should be 0, got {value.item():.4f}'
    shifted = torch.tensor([[1.0, 1.0]])
    one = kl_divergence(shifted, torch.zeros(1, 2)).item()
    assert abs(one - 1.0) < 1e-05, f'for mu = (1, 1) and sigma = 1 the KL is 0.5 + 0.5 = 1.0 (summed over the 2 latent dims), got {one:.4f}'
    torch.manual_seed(0)
    means, log_vars = (torch.randn(6, 2), torch.randn(6, 2))
    batch = kl_divergence(means, log_vars).item()
    doubled = kl_divergence(torch.cat([means, means]), torch.cat([log_vars, log_vars])).item()
    assert abs(batch - doubled) < 0.0001, f'KL should be averaged over the batch: the same batch duplicated gave a different value ({batch:.4f} vs {doubled:.4f})'
    rows = sum((kl_divergence(means[i:i + 1], log_vars[i:i + 1]).item() for i in range(6))) / 6
    assert abs(batch - rows) < 0.0001, f'KL should be summed over latent dims, then averaged over images: the mean of the per-image values is {rows:.4f}, but the batch gave {batch:.4f}'
    assert batch > 0, 'the KL divergence is never negative'

