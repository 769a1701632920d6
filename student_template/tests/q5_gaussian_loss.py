from otter.test_files import test_case

OK_FORMAT = False

name = "q5_gaussian_loss"
points = 2

@test_case(points=None, hidden=False)
def test_gaussian_vae_loss(gaussian_vae_loss, kl_divergence, np, torch):
    assert gaussian_vae_loss is not None, 'gaussian_vae_loss is not defined: run the cell that defines it'
    assert kl_divergence is not None, 'kl_divergence is not defined: run the cell that defines it'
    rng = np.random.default_rng(5)
    images, means = (rng.random((4, 784)), rng.random((4, 784)))
    codes, log_vars = (rng.normal(size=(4, 2)), rng.normal(size=(4, 2)))
    value = gaussian_vae_loss(*(torch.tensor(a) for a in (images, means, codes, log_vars)))
    per_image = ((images - means) ** 2).sum(axis=1).mean()
    kl = kl_divergence(torch.tensor(codes), torch.tensor(log_vars)).item()
    assert torch.is_tensor(value) and value.dim() == 0, 'gaussian_vae_loss should return a scalar tensor'
    value = value.item()
    expected = per_image / (2 * 0.1) + kl
    if abs(value - (per_image / 784 / (2 * 0.1) + kl)) < 0.001:
        raise AssertionError("the squared error was averaged over pixels (F.mse_loss's default): sum it over the 784 pixels of each image, then average over the batch")
    if abs(value - (per_image + kl)) < 0.001 or abs(value - (per_image / 2 + kl)) < 0.001:
        raise AssertionError('the squared error should be divided by 2 * variance (variance = 0.1 by default)')
    assert abs(value - expected) < 0.001, f'gaussian_vae_loss gave {value:.4f}, expected the squared error summed over pixels and averaged over the batch, divided by 2 * 0.1 ({per_image / 0.2:.4f}), plus KL ({kl:.4f}) = {expected:.4f}'
    other = gaussian_vae_loss(*(torch.tensor(a) for a in (images, means, codes, log_vars)), variance=1.0).item()
    assert abs(other - (per_image / 2 + kl)) < 0.001, 'the variance argument should be used, not a hard-coded 0.1'

