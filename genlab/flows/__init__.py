"""genlab.flows."""
