from otter.test_files import test_case

OK_FORMAT = False

name = "q4_vae_model"
points = 3

@test_case(points=None, hidden=False)
def test_encoder_shapes(VAEEncoder, torch):
    assert VAEEncoder is not None, 'VAEEncoder is not defined: run the cell that defines it'
    for dim_latent, batch in [(2, 1), (2, 7), (5, 16)]:
        encoder = VAEEncoder(784, dim_latent)
        outputs = encoder(torch.rand(batch, 784))
        assert isinstance(outputs, tuple) and len(outputs) == 2, 'VAEEncoder.forward should return a tuple (mu, log_sigma_squared)'
        got_mu, got_log_var = outputs
        expected = (batch, dim_latent)
        assert tuple(got_mu.shape) == expected, f'mu has shape {tuple(got_mu.shape)} but should be (batch, dim_latent) = {expected}'
        assert tuple(got_log_var.shape) == expected, f'log_sigma_squared has shape {tuple(got_log_var.shape)} but should be (batch, dim_latent) = {expected}'
    encoder = VAEEncoder(784, 2)
    got_mu, got_log_var = encoder(torch.rand(3, 784))
    assert not torch.allclose(got_mu, got_log_var), 'mu and log_sigma_squared are identical: use two different output layers (heads) after the shared layer'
    hidden_sizes = {p.shape for p in encoder.parameters()}
    assert (512, 784) in hidden_sizes, 'the encoder should have a hidden layer Linear(784, 512) by default (dim_hidden=512)'

@test_case(points=None, hidden=False)
def test_decoder_output(VAEDecoder, torch):
    assert VAEDecoder is not None, 'VAEDecoder is not defined: run the cell that defines it'
    for dim_latent, batch in [(2, 3), (5, 8)]:
        decoder = VAEDecoder(dim_latent, 784)
        images = decoder(torch.randn(batch, dim_latent) * 3)
        assert tuple(images.shape) == (batch, 784), f'VAEDecoder returned shape {tuple(images.shape)} but should be (batch, dim_output) = {(batch, 784)}'
        assert images.min() >= 0 and images.max() <= 1, 'VAEDecoder outputs should be in [0, 1] (pixel probabilities): end the decoder with a sigmoid'

@test_case(points=None, hidden=False)
def test_vae_forward(VAE, VAEEncoder, VAEDecoder, torch):
    assert VAE is not None, 'VAE is not defined: run the cell that defines it'
    assert VAEEncoder is not None, 'VAEEncoder is not defined: run the cell that defines it'
    assert VAEDecoder is not None, 'VAEDecoder is not defined: run the cell that defines it'
    model = VAE(784, 2)
    assert isinstance(model.encoder, VAEEncoder), 'VAE.encoder should be a VAEEncoder'
    assert isinstance(model.decoder, VAEDecoder), 'VAE.decoder should be a VAEDecoder'
    outputs = model(torch.rand(6, 784))
    assert isinstance(outputs, tuple) and len(outputs) == 3, 'VAE.forward should return (x_reconstructed, mu, log_sigma_squared)'
    shapes = [tuple(o.shape) for o in outputs]
    assert shapes == [(6, 784), (6, 2), (6, 2)], f'VAE.forward returned shapes {shapes} but should be [(6, 784), (6, 2), (6, 2)]'

