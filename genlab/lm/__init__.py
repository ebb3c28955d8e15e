"""genlab.lm."""
