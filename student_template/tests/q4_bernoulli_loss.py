from otter.test_files import test_case

OK_FORMAT = False

name = "q4_bernoulli_loss"
points = 2

@test_case(points=None, hidden=False)
def test_bernoulli_vae_loss(bernoulli_vae_loss, kl_divergence, np, torch):
    assert bernoulli_vae_loss is not None, 'bernoulli_vae_loss is not defined: run the cell that defines it'
    assert kl_divergence is not None, 'kl_divergence is not defined: run the cell that defines it'
    rng = np.random.default_rng(4)
    images = rng.random((4, 784))
    probs = rng.uniform(0.05, 0.95, size=(4, 784))
    codes, log_vars = (rng.normal(size=(4, 2)), rng.normal(size=(4, 2)))
    value = bernoulli_vae_loss(*(torch.tensor(a) for a in (images, probs, codes, log_vars)))
    cross_entropy = -(images * np.log(probs) + (1 - images) * np.log(1 - probs)).sum(axis=1).mean()
    kl = kl_divergence(torch.tensor(codes), torch.tensor(log_vars)).item()
    assert torch.is_tensor(value) and value.dim() == 0, 'bernoulli_vae_loss should return a scalar tensor'
    value = value.item()
    if abs(value - kl - cross_entropy / 784) < 0.001:
        raise AssertionError('the cross-entropy was averaged over pixels: sum it over the 784 pixels of each image, then average over the batch')
    if abs(value - kl - cross_entropy * 4) < 0.001:
        raise AssertionError('the cross-entropy was summed over the batch: average it over the batch instead')
    if abs(value - cross_entropy) < 0.001:
        raise AssertionError('the KL term is missing: add kl_divergence(mu, log_sigma_squared)')
    assert abs(value - (cross_entropy + kl)) < 0.001, f'bernoulli_vae_loss gave {value:.4f}, expected BCE summed over pixels and averaged over the batch ({cross_entropy:.4f}) plus KL ({kl:.4f}) = {cross_entropy + kl:.4f}'

