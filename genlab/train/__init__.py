"""genlab.train."""
