from otter.test_files import test_case

OK_FORMAT = False

name = "q2_pca_functions"
points = 3

@test_case(points=None, hidden=False)
def test_pca_encode(pca_encode, np, PCA):
    assert pca_encode is not None, 'pca_encode is not defined: run the cell that defines it'
    rng = np.random.default_rng(1)
    data = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6)) + 3.0
    fitted = PCA(n_components=3, svd_solver='full').fit(data)
    coords = np.asarray(pca_encode(fitted, data))
    assert coords.shape == (50, 3), f'pca_encode returned shape {coords.shape} but should be (N, K) = (50, 3)'
    assert np.allclose(coords.mean(axis=0), 0.0, atol=1e-08), 'the codes of the training data should have mean 0: did you subtract pca.mean_ before projecting?'
    assert np.allclose(coords, fitted.transform(data), atol=1e-08), 'pca_encode should equal equation (1): (x - mean_) projected on each row of components_'

@test_case(points=None, hidden=False)
def test_pca_generate(pca_generate, np, PCA):
    assert pca_generate is not None, 'pca_generate is not defined: run the cell that defines it'
    rng = np.random.default_rng(2)
    data = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6)) + 3.0
    fitted = PCA(n_components=3, svd_solver='full').fit(data)
    generated = np.asarray(pca_generate(fitted, np.zeros((4, 3))))
    assert generated.shape == (4, 6), f'pca_generate returned shape {generated.shape} but should be (N, D) = (4, 6)'
    assert np.allclose(generated, fitted.mean_), 'coordinates a = 0 should generate the mean image mean_'
    unit = np.asarray(pca_generate(fitted, np.array([[1.0, 0.0, 0.0]])))[0] - fitted.mean_
    length = np.linalg.norm(unit)
    expected = np.sqrt(fitted.explained_variance_[0])
    assert np.isclose(length, expected), f'a = (1, 0, 0) moved the image by {length:.4f} from the mean but should move it by one standard deviation sqrt(lambda_1) = {expected:.4f}: the coordinates of equation (2) are whitened'
    two = np.asarray(pca_generate(fitted, np.array([[0.5, -1.0]])))
    assert two.shape == (1, 6), 'with 2 coordinates, pca_generate should use the first 2 components'

@test_case(points=None, hidden=False)
def test_pca_reconstruct(pca_reconstruct, np, PCA):
    assert pca_reconstruct is not None, 'pca_reconstruct is not defined: run the cell that defines it'
    rng = np.random.default_rng(3)
    data = rng.normal(size=(40, 5)) @ rng.normal(size=(5, 5)) - 1.0
    fitted = PCA(n_components=2, svd_solver='full').fit(data)
    reconstructed = np.asarray(pca_reconstruct(fitted, data))
    assert reconstructed.shape == data.shape, f'pca_reconstruct returned shape {reconstructed.shape}, expected {data.shape}'
    assert np.allclose(reconstructed, fitted.inverse_transform(fitted.transform(data)), atol=1e-08), 'pca_reconstruct(pca, x) should equal pca.inverse_transform(pca.transform(x))'

