"""genlab: one PyTorch library for generative modeling.

Tokenizers (FSQ, VQ-VAE), rectified flows, GANs, and the shared Transformer blocks and
optimizers they are built from. See README.md for the map.
"""

__version__ = "0.1.0"
