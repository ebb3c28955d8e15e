"""Evaluation: reconstruction, sharpness and codebook metrics, Frechet distances with their protocol
(FID/KID with Inception when its weights are present, FD-digits-cnn offline), and 2-D metrics."""

from genlab.metrics.digits import digits_reconstruction_scores, digits_scores
from genlab.metrics.features import DigitsClassifier, digits_features, load_digits_classifier
from genlab.metrics.fid import find_inception_weights, inception_scores
from genlab.metrics.frechet import frechet_distance, frechet_distance_features, gaussian_stats, noise_floor, precision_recall
from genlab.metrics.protocol import Score
from genlab.metrics.reconstruction import CodebookUsage, psnr, ssim
from genlab.metrics.sharpness import high_frequency_energy, high_frequency_ratio
from genlab.metrics.toy2d import mmd_rbf, mode_coverage, sliced_wasserstein, toy2d_scores

__all__ = [
    "CodebookUsage", "DigitsClassifier", "Score", "digits_features", "digits_reconstruction_scores", "digits_scores", "find_inception_weights",
    "frechet_distance", "frechet_distance_features", "gaussian_stats", "high_frequency_energy", "high_frequency_ratio", "inception_scores", "load_digits_classifier",
    "mmd_rbf", "mode_coverage", "noise_floor", "precision_recall", "psnr", "sliced_wasserstein", "ssim",
    "toy2d_scores",
]
