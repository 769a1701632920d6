from otter.test_files import test_case

OK_FORMAT = False

name = "q4_reparameterize"
points = 2

@test_case(points=None, hidden=False)
def test_reparameterize(reparameterize, torch):
    assert reparameterize is not None, 'reparameterize is not defined: run the cell that defines it'
    torch.manual_seed(0)
    center = torch.tensor([[1.0, -2.0]]).expand(20000, 2).clone().requires_grad_(True)
    log_var = torch.tensor([[0.0, 1.3862943611198906]]).expand(20000, 2).clone().requires_grad_(True)
    z = reparameterize(center, log_var)
    assert tuple(z.shape) == (20000, 2), f'z has shape {tuple(z.shape)} but should be the shape of mu, (20000, 2)'
    mean, var = (z.mean(0).detach(), z.var(0).detach())
    assert torch.allclose(mean, torch.tensor([1.0, -2.0]), atol=0.1), f'the samples have mean {mean.tolist()} but should have mean mu = [1, -2]'
    assert torch.allclose(var, torch.tensor([1.0, 4.0]), rtol=0.1), f'the samples have variance {var.tolist()} but should have variance exp(log_sigma_squared) = [1, 4]: sigma = exp(0.5 * log_sigma_squared)'
    z.sum().backward()
    assert center.grad is not None and center.grad.abs().sum() > 0, 'z should be differentiable with respect to mu'
    assert log_var.grad is not None and log_var.grad.abs().sum() > 0, 'z should be differentiable with respect to log_sigma_squared (do not draw z with torch.normal(mu, sigma))'

