"""genlab.optim."""
