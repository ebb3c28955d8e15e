"""genlab.gans."""
